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

# The test venv gets the `dev` and `torch` extras in one install (torch==2.13.0, a CPU build pip finds on this
# disk) for the third pass; the default and `dev` installs stay without torch.
# Nothing is byte-compiled at install: pip does it one file at a time (the install took 1:52 that way), and
# compiling every file on every core still took 0:33, mostly for modules no test imports (TensorFlow's and
# torch's thousands). Python compiles what is imported, once, on first import, and keeps it in __pycache__.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --no-compile -e '.[dev,torch]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/keras-seq fit --arch brnn

# Two pytest workers, each test file on one worker (its module fixtures built once): on 2 cores the
# suite ran in 9:44 instead of 14:08. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --durations=20 -n $(TEST_WORKERS) --dist loadfile

# One JAX compilation cache for the three passes and every process they start (a folder removed at the end).
test: $(VENV)/.installed-test
	@export JAX_COMPILATION_CACHE_DIR="$$(mktemp -d)" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0; \
	trap 'rm -rf "$$JAX_COMPILATION_CACHE_DIR"' EXIT; \
	$(PYTEST) && \
	echo "--- backend-sensitive tests again under jax ---" && \
	KERAS_BACKEND=jax $(PYTEST) -m backend && \
	echo "--- backend-sensitive tests again under torch ---" && \
	KERAS_BACKEND=torch $(PYTEST) -m backend

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
