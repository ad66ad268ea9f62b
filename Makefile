# carcolor: `make demo` installs and runs the main job; `make test` installs and runs the tests.
# Each target installs what it uses: the demo the base package, the tests every extra.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup system-deps demo test bench model clean

$(VENV)/.base: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.all: $(VENV)/.base
	$(PY) -m pip install -q -e ".[server,service,report,train,bench,test,batch]"
	touch $@

setup: $(VENV)/.all

system-deps:
	bash scripts/install-system-deps.sh

demo: $(VENV)/.base
	rm -f out.mp4 colors.jsonl
	$(PY) -m stream run --source demo/motorway-960x540.mp4 --config demo/config.yaml --output out.mp4 --log colors.jsonl

# Rebuild the shipped colour model: renders (resumable; 2,880 took 53 min on 2 shared cores), training, model card.
# RENDER_COUNT=8000 extends the same set (the first 2,880 stay the same).
RENDERS ?= build/renders
RENDER_COUNT ?= 2880
model: system-deps $(VENV)/.all
	$(PY) -m stream synth --out $(RENDERS) --count $(RENDER_COUNT) --seed 0
	$(PY) -m stream train --data ../shared/datasets/traffic-colors --out models/default --renders $(RENDERS) \
		--other-cameras ../shared/datasets/other-cameras \
		--another-camera demo/motorway-960x540.mp4 demo/motorway-cars.csv --seeds 3 --compare-real

bench: system-deps $(VENV)/.all
	$(PY) bench/speed.py
	$(PY) bench/detector.py
	$(PY) bench/server_bench.py

test: system-deps $(VENV)/.all
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out.mp4 colors.jsonl .pytest_cache
