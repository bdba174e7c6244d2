# The same commands CI runs (.ci/run calls `make test`). No second way.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck bench lock clean

# Install only when the project or its locked dependencies changed since the last install.
$(STAMP): pyproject.toml requirements/test.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/test.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/meetd serve

test: $(STAMP)
	$(BIN)/ruff format --check meetd tests bench
	$(BIN)/ruff check meetd tests bench
	$(BIN)/mypy
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff format meetd tests bench
	$(BIN)/ruff check --fix meetd tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Re-resolve the locked dependencies from pyproject.toml (needs network).
lock:
	$(PYTHON) -m venv /tmp/meetd-lock && /tmp/meetd-lock/bin/pip install --quiet pip-tools
	/tmp/meetd-lock/bin/pip-compile --quiet --strip-extras --extra test \
		--output-file requirements/test.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
