# Set-up and the quick-start commands. `make demo`, `make test` and `make unit` each install what
# they need into .venv on first use, so they work on a fresh clone with nothing but python3.
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU torch, asked for by name: PyPI's torch for Linux is a multi-GB CUDA build that pulls ~20
# nvidia-*/cuda-* wheels, while PyTorch's CPU index publishes the same release as `2.13.0+cpu`. PyPI
# never holds a `+cpu` version, so that pin resolves only to a CPU build: from the CPU index when it
# answers, else from a local wheel store or mirror that has it. Where nothing has it (macOS, a
# PyPI-only mirror) the plain pin installs what the configured index offers. The index is probed
# first because pip retries an unreachable index for every package it resolves (minutes).
# TORCH_SPEC="..." replaces all of this with your own pip arguments.
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC ?=
PYTEST ?= $(PY) -m pytest -p no:cacheprovider

.PHONY: setup demo test unit docs clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(PY) -m pip install -q $(TORCH_SPEC); \
	elif $(PY) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=10)" 2>/dev/null; then \
	  echo "setup: torch==$(TORCH_VERSION)+cpu from $(TORCH_CPU_INDEX)"; \
	  $(PY) -m pip install -q "torch==$(TORCH_VERSION)+cpu" --extra-index-url $(TORCH_CPU_INDEX); \
	elif $(PY) -m pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null; then \
	  echo "setup: $(TORCH_CPU_INDEX) unreachable; torch==$(TORCH_VERSION)+cpu from the configured index"; \
	else \
	  echo "setup: no torch==$(TORCH_VERSION)+cpu reachable; torch==$(TORCH_VERSION) from the configured index (on Linux PyPI that is the CUDA build)"; \
	  $(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(PY) runner/run.py params/demo.yaml

# The whole suite: unit tests, the demo run (once) and every check that reads it, the browsers.
test: setup
	$(PYTEST)

# The fast tier: no notebook execution, no demo run, no browser.
unit: setup
	$(PYTEST) -m "not slow and not browser"

# Regenerate the params reference in README.md from the notebooks' parameters cells.
docs: setup
	$(PY) -m ai2human.runner.params --write-readme README.md

clean-venv:
	rm -rf $(VENV)
