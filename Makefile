# The command contract (DESIGN.md): make demo · make test · make bench · make lint
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint format browser fonts messages clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "salesloop needs Python >= 3.11 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded one). As root we install it;
# otherwise we stop and say so: the suite skips nothing silently.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			(apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 || \
			 (apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-noto-cjk >/dev/null)) \
			 || { echo "could not install chromium" >&2; exit 1; }; \
		else echo "chromium is missing: run 'sudo apt-get install chromium fonts-noto-cjk'" >&2; exit 1; fi; \
	fi

# The OCR tests render Chinese text (issue 6 item 5): the Noto CJK font must be there even when
# chromium already is (the browser target installs it only alongside chromium).
fonts:
	@if [ ! -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			(apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1 || \
			 (apt-get update -q >/dev/null && apt-get install -y -q fonts-noto-cjk >/dev/null)) \
			 || { echo "could not install fonts-noto-cjk" >&2; exit 1; }; \
		else echo "the CJK font is missing: run 'sudo apt-get install fonts-noto-cjk'" >&2; exit 1; fi; \
	fi

demo: install
	$(BIN)/salesloop demo

test: install browser fonts
	$(BIN)/pytest

# Our modules compiled ahead: where PYTHONDONTWRITEBYTECODE is set (these machines), every process
# the benchmarks start would otherwise compile them again (~0.3 s each, measured).
bench: install fonts
	$(BIN)/python -m compileall -q src bench
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: install
	$(BIN)/python -m salesloop.core.i18n

clean:
	rm -rf $(VENV) var .pytest_cache
