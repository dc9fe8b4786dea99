# `make demo`: set up .venv and train BRNN on the embedded Dow Jones data.
# `make test`: set up .venv with the dev extra and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/keras-seq fit --arch brnn

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest --durations=20
	@echo "--- backend-sensitive tests again under jax ---"
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m backend --durations=20

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
