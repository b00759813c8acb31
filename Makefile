# Two set-up commands on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test bench screenshots clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,farm]'
	touch $@

demo: $(VENV)/.installed
	$(PY) scripts/demo.py

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider

screenshots: $(VENV)/.installed
	$(PY) scripts/screenshots.py docs/screenshots

bench: $(VENV)/.installed
	$(PY) benchmarks/overhead.py

clean:
	rm -rf demo build *.egg-info
