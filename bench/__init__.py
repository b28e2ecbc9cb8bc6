"""salesloop benchmarks: `make bench` (= `python -m bench`) prints one table of figures.

Each database × size runs in a fresh database: `salesloop migrate`, `salesloop seed --leads N`
(timed), then the production server (`salesloop serve`) answers lead-list requests over real HTTP.
Environment: SALESLOOP_BENCH_SIZES (default 100000,1000000), SALESLOOP_BENCH_DATABASES (default
sqlite,postgresql), SALESLOOP_BENCH_REQUESTS (default 200 per case), SALESLOOP_BENCH_PG_URL
(default postgresql://postgres@127.0.0.1:5432/test, the server to create `salesloop_bench` on).
"""
