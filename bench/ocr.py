"""OCR throughput of evidence (issue 6 item 6): images per minute on this machine's cores.

`make bench` runs `run()` and prints `table(rows)`; `python -m bench.ocr [--runs N] [--images N]` does
the same alone. A set of generated evidence images (salesloop.demo.evidence_images: contract signature
pages at A4/150 dpi, meeting minutes, phone photos of a page at 1280 px) is read the way the
`attachment_ocr` task reads an attachment — decode, OCR (rapidocr, onnxruntime), red-seal search, fact
extraction — without the database (one row write per image is noise beside ~1 s of OCR).

Configurations: 1 or 2 worker processes × onnxruntime intra-op threads per process (0 = onnxruntime's
default, one per core; 1). Each process loads the engine and reads one image before the clock starts
(a task worker is long-lived). Figures: median wall time over --runs runs → images/min.

Environment: SALESLOOP_BENCH_OCR_RUNS (3), SALESLOOP_BENCH_OCR_IMAGES (12).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import time
from typing import Any

TITLE = "ocr: evidence images read like the attachment_ocr task (OCR + seal + facts), no database"
CONFIGS = [(1, 0), (1, 1), (2, 1), (2, 2)]  # (processes, onnxruntime threads per process; 0 = default)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evidence_set(count: int) -> list[tuple[str, bytes]]:
    from salesloop.demo import evidence_images as images

    signed = images.signature_page()
    minutes = images.minutes_page()
    distinct = [
        ("signature page (A4 150 dpi)", signed),
        (
            "unsigned page (A4 150 dpi)",
            images.signature_page(signer="", seal=False, customer="北京百川医疗器械有限公司"),
        ),
        ("minutes (1240×1000)", minutes),
        ("photo of a signature page (1280 px)", images.page_photo(signed)),
        ("photo of minutes (1280 px)", images.page_photo(minutes, angle=-1.5)),
        ("minutes (JPEG)", images.page_photo(minutes, width=1240, angle=0)),
    ]
    return [distinct[i % len(distinct)] for i in range(count)]


# ---- inside a worker process --------------------------------------------------------------------


def _worker_init(threads: int) -> None:
    os.environ["SALESLOOP_OCR_THREADS"] = str(threads)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    import django

    django.setup()
    from salesloop.core.ocr import ocr_engine

    ocr_engine()


def read_one(content: bytes) -> dict[str, Any]:
    """What the task does per image, minus the database."""
    from salesloop.core.ocr import image_open_upright, ocr_image_read
    from salesloop.engagement.ocr import facts as fx
    from salesloop.engagement.ocr.seal import red_seal_find

    started = time.perf_counter()
    image = image_open_upright(content)
    lines = ocr_image_read(image)
    seal = red_seal_find(image)
    facts = fx.facts_extract(lines, reference=dt.date(2026, 11, 28))
    return {
        "seconds": time.perf_counter() - started,
        "lines": len(lines),
        "seal": seal["found"],
        "facts": sum(len(v) for v in facts.values()),
    }


def _pool_run(pool: Any, images: list[tuple[str, bytes]]) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    results = pool.map(read_one, [content for _, content in images], chunksize=1)
    return time.perf_counter() - started, results


# ---- the driver ---------------------------------------------------------------------------------


def run(runs: int | None = None, count: int | None = None) -> list[dict[str, Any]]:
    runs = runs or int(os.environ.get("SALESLOOP_BENCH_OCR_RUNS", "3"))
    count = count or int(os.environ.get("SALESLOOP_BENCH_OCR_IMAGES", "12"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    images = evidence_set(count)
    context = multiprocessing.get_context("spawn")  # a fresh onnxruntime per worker, configured first
    rows = []
    for processes, threads in CONFIGS:
        say(f"ocr: {processes} process(es) × {threads or 'default'} thread(s) …")
        load_before = os.getloadavg()[0]
        with context.Pool(processes, initializer=_worker_init, initargs=(threads,)) as pool:
            pool.map(read_one, [images[0][1]] * processes, chunksize=1)  # warm each worker
            walls, per_image = [], []
            for _ in range(runs):
                wall, results = _pool_run(pool, images)
                walls.append(wall)
                per_image += [r["seconds"] for r in results]
        wall = statistics.median(walls)
        rows.append(
            {
                "processes": processes,
                "threads": threads,
                "images": len(images),
                "runs": runs,
                "median_wall_s": round(wall, 2),
                "images_per_min": round(len(images) / wall * 60, 1),
                "median_image_s": round(statistics.median(per_image), 2),
                "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'processes':>9} {'threads/proc':>12} {'images':>6} {'runs':>4} {'median wall s':>13} "
        f"{'images/min':>10} {'s/image (median)':>16} {'load before→after':>18}"
    )
    lines = [header, "-" * len(header)]
    best = max(rows, key=lambda r: r["images_per_min"]) if rows else None
    for row in rows:
        lines.append(
            f"{row['processes']:>9} {row['threads'] or 'default':>12} {row['images']:>6} {row['runs']:>4} "
            f"{row['median_wall_s']:>13.2f} {row['images_per_min']:>10.1f} {row['median_image_s']:>16.2f} "
            f"{row['load_before']:>8.2f} → {row['load_after']:<7.2f}" + ("  ← best" if row is best else "")
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--images", type=int, default=None)
    args = parser.parse_args()
    say(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f}")
    rows = run(args.runs, args.images)
    print(TITLE)
    print(f"{os.cpu_count()} CPU cores; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
