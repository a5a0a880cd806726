# The two commands a person needs: `make demo` (the main job) and `make test`.
# Each creates or updates the local virtual environment from requirements.txt first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Public datasets are fetched from their real URLs unless a local mirror is named;
# CI and the tests use the copy in ../shared/data.
export SIGNREC_DATA_MIRROR ?= $(abspath ../shared/data)

WEB_VENDOR := src/signrec/web/vendor

.PHONY: setup demo test test-slow lint
setup: $(VENV)/.installed $(WEB_VENDOR)/.complete

# The on-device page's browser runtime (MediaPipe Holistic wasm, ONNX Runtime Web): pinned npm tarballs,
# checked by sha256 (src/signrec/web/vendor.json), fetched once into a git-ignored folder that is package data.
$(WEB_VENDOR)/.complete: src/signrec/web/vendor.json $(VENV)/.installed
	$(BIN)/python -m signrec.web.vendor
	touch $@

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

demo: setup
	$(BIN)/signrec demo --out demo_out

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/pytest -q -m "not slow"

# The on-device page in headless Chromium against the Python pipeline, on real held-out clips (minutes).
test-slow: lint
	$(BIN)/pytest -q -m slow
