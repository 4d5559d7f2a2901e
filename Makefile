# Set-up and the two quick-start commands. `make demo` and `make test` each install what they
# need into .venv on first use, so they work on a fresh clone with nothing but python3.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch. On a machine that reaches PyPI's usual index, plain `torch==2.13.0` is a
# multi-GB CUDA build; pass TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test docs clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(PY) runner/run.py params/demo.yaml

test: setup
	$(PY) -m pytest

# Regenerate the params reference in README.md from the notebooks' parameters cells.
docs: setup
	$(PY) -m ai2human.runner.params --write-readme README.md

clean-venv:
	rm -rf $(VENV)
