# The two commands a person needs: `make demo` (the main job) and `make test`.
# Each creates or updates the local virtual environment from requirements.txt first; `make test` also installs
# what the browser tests need (Chromium and its driver) when they are missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Public datasets are fetched from their real URLs unless a local mirror is named;
# CI and the tests use the copy in ../shared/data.
export SIGNREC_DATA_MIRROR ?= $(abspath ../shared/data)

WEB_VENDOR := src/signrec/serve/web/vendor

.PHONY: setup browser demo test test-fast lint reliability
setup: $(VENV)/.installed $(WEB_VENDOR)/.complete

# The on-device page's browser runtime (MediaPipe Holistic wasm, ONNX Runtime Web): pinned npm tarballs,
# checked by sha256 (src/signrec/serve/web/vendor.json), fetched once into a git-ignored folder that is package data.
$(WEB_VENDOR)/.complete: src/signrec/serve/web/vendor.json $(VENV)/.installed
	$(BIN)/python -m signrec.serve.web.vendor
	touch $@

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

# The slow half of RELIABILITY.md, outside `make test`: the property and fuzz tests with many examples, the crash
# matrix (SIGKILL at random moments, 10 trials a command) and the load test (50 clients for 5 minutes, then 10
# uploading videos). The model under load is trained on the landmarks the tests extract (.pytest_cache).
RELIABILITY_MODEL ?= $(CURDIR)/.cache/reliability-model
reliability: setup
	$(BIN)/pytest -q --hypothesis-profile=reliability tests/landmarks/test_properties.py \
		tests/model/test_properties.py tests/recognize/test_properties.py tests/serve/test_fuzz.py
	$(BIN)/python benchmarks/crash.py --trials 10
	test -f $(RELIABILITY_MODEL)/model/model.json || $(BIN)/signrec train \
		.pytest_cache/d/signrec-mlr511-tiny/labels.csv --out $(RELIABILITY_MODEL) --test-signers user07 \
		--val-signers user06 --max-epochs 20 --patience 8
	$(BIN)/python benchmarks/load.py $(RELIABILITY_MODEL)/model --json $(RELIABILITY_MODEL)/load.json
