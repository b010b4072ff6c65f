# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint format bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py
	@echo "The artifacts command is $(BIN)/artifacts (source $(BIN)/activate puts it on PATH)."

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two processes, then, in one, the tests timed against a 1 s lease (docs/reliability.md).
test: lint
	@command -v chromium >/dev/null || echo "no chromium: the UI's browser tests (tests/test_ui_browser.py) are skipped; apt-get install chromium runs them"
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow and not alone"
	$(BIN)/python -m pytest -q -m "not slow and alone"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@command -v restic >/dev/null || echo "no restic: the f512 cases show it missing; apt-get install -y restic (Debian's package, as issue 22 measured) adds it"
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .demo
