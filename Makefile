# streamdsl: `make demo` and `make test` work on a fresh clone (they create .venv first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

# Graphviz renders `streamdsl graph --format svg|png`; the tests render an svg.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
	      || echo "warning: could not install graphviz"; \
	  else echo "warning: graphviz (dot) is not installed; run: sudo apt-get install graphviz"; fi; }

demo: setup
	$(PY) topologies/fraud_detection.py

test: setup system-deps
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
