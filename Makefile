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
# pip byte-compiles the installed modules one at a time; compileall does it on every core (the install took
# 1:52 with pip's compile, 0:51 + 0:33 this way). Like pip, it leaves a file that does not compile as it is
# (torch ships a Python 3.12 test helper). It is needed: where PYTHONDONTWRITEBYTECODE is set (as on the CI
# machines), nothing imported is cached, and every process compiled TensorFlow, jax and Keras again (the main
# pass took 12:06 instead of 8:47 without it). The packages' own test folders (4,088 of 17,710 files) are left out:
# nothing imports them.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --no-compile -e '.[dev,torch]'
	$(BIN)/python -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null || true
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/keras-seq fit --arch brnn

# Two pytest workers, each test file on one worker (its module fixtures built once): on 2 cores the
# suite ran in 9:44 instead of 14:08. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --durations=20 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The backend passes collect only the files that mark a test `backend` (collecting all of them took each worker
# 10 s instead of 4).
BACKEND_FILES = $(shell grep -lE "mark.backend|on_other_backends" tests/test_*.py)

# One JAX compilation cache for the three passes and every process they start (a folder removed at the end).
test: $(VENV)/.installed-test
	@export JAX_COMPILATION_CACHE_DIR="$$(mktemp -d)" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0; \
	trap 'rm -rf "$$JAX_COMPILATION_CACHE_DIR"' EXIT; \
	$(PYTEST) && \
	echo "--- backend-sensitive tests again under jax ---" && \
	KERAS_BACKEND=jax $(PYTEST) -m backend $(BACKEND_FILES) && \
	echo "--- backend-sensitive tests again under torch ---" && \
	KERAS_BACKEND=torch $(PYTEST) -m backend $(BACKEND_FILES)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
