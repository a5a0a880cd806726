# The two commands a person needs: `make demo` (the main job) and `make test`.
# Each creates or updates the local virtual environment from requirements.txt first; `make test` also installs
# what the browser tests need (Chromium and its driver) when they are missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Public datasets are fetched from their real URLs unless a local mirror is named;
# CI and the tests use the copy in ../shared/data.
export SIGNREC_DATA_MIRROR ?= $(abspath ../shared/data)

.PHONY: setup browser demo test test-fast lint
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# The web page's end-to-end tests drive real headless Chromium (Debian's chromium and chromium-driver).
browser:
	@scripts/ensure-browser

demo: setup
	$(BIN)/signrec demo --out demo_out

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: lint browser
	$(BIN)/pytest -q

# The edit-test loop: the tests that need no real video, MediaPipe, training or browser (under a minute).
test-fast: lint
	$(BIN)/pytest -q -m "not slow"
