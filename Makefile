# Two commands on a fresh machine:  make demo   (install + run the whole study on the sample data)
#                                   make test   (install + run the test suite)
# DATA=/path/to/data make demo points the demo at another data folder (same layout as ../shared/data).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data
PARAMS ?= params/demo.yaml

.PHONY: install system-deps models demo smoke test test-fast browser-deps lock notebooks lab clean-outputs

install: system-deps $(VENV)/.installed models

# Libraries MediaPipe's native code needs (present on most desktops; installed where missing).
system-deps:
	@missing=""; for p in libegl1 libgles2 libgl1 libglib2.0-0; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; fi

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# BlazePose model files, unpacked from the pinned mediapipe wheel (PyPI) and @mediapipe/pose (npm).
models: $(VENV)/.installed
	$(PY) -m deadlift_utils models

demo: install
	@test -d "$(DATA)" || { echo "data folder not found: $(DATA). Run: DATA=/path/to/your/data make demo"; exit 2; }
	$(PY) -m deadlift_utils run --params $(PARAMS) --data-dir "$(DATA)"

smoke: install
	$(PY) -m deadlift_utils run --params $(PARAMS) --data-dir "$(DATA)" --smoke

# Debian's chromium for the browser test (Playwright drives it; it never downloads a browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

test: install browser-deps
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not browser and not slow"

# Each notebook is a pair, notebooks/NN_name.ipynb + NN_name.py (percent format, notebooks/jupytext.toml).
# JupyterLab keeps a pair in sync on save; after editing a .py elsewhere, or before a commit, run
# this: it syncs every pair (the newer file wins), strips outputs from the .ipynb and syncs again
# so the .py stays the newer file (JupyterLab then opens the pair without a timestamp warning).
notebooks:
	$(VENV)/bin/jupytext --sync notebooks/*.ipynb
	$(VENV)/bin/jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/*.ipynb
	$(VENV)/bin/jupytext --quiet --sync notebooks/*.ipynb

lab: install
	$(VENV)/bin/jupyter lab notebooks/

lock:
	$(PY) -m pip install -q -r requirements.in
	$(PY) -m pip freeze --exclude-editable | grep -v '^deadlift' > requirements.txt
