# carcolor: `make demo` installs and runs the main job; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup system-deps demo test bench clean

$(VENV)/.installed: requirements.txt requirements-train.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-train.txt -r requirements-test.txt -e .
	touch $@

setup: $(VENV)/.installed

system-deps:
	bash scripts/install-system-deps.sh

demo: setup
	rm -f out.mp4 colors.jsonl
	$(PY) -m stream run --source demo/motorway-960x540.mp4 --config demo/config.yaml --output out.mp4 --log colors.jsonl

bench: system-deps setup
	$(PY) bench/speed.py
	$(PY) bench/server_bench.py

test: system-deps setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out.mp4 colors.jsonl .pytest_cache
