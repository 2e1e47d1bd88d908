# mmrag developer tasks. Run them inside the activated venv (. .venv/bin/activate); `make help` lists them.

PYTHON ?= python
DEMO_FOLDER ?= demo-files
DEMO_DB ?= demo-kb

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format types layers check bench demo ci

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install mmrag editable, with the dev tools (as the README says)
	$(PYTHON) -m pip install -e '.[dev]'

test: ## Run the whole test suite (no downloaded weights needed)
	$(PYTHON) -m pytest

test-fast: ## Run the fast loop: the unit tests
	$(PYTHON) -m pytest tests/unit

lint: ## Check style and formatting with ruff
	ruff check .
	ruff format --check .

format: ## Fix what ruff can, and format the code
	ruff check --fix .
	ruff format .

types: ## Type-check mmrag/ with mypy (strict)
	mypy

layers: ## Check the import layers (import-linter contracts in pyproject.toml)
	lint-imports

check: lint types layers test ## Everything CI checks, in this venv

bench: ## List the benchmark scripts in bench/ (run one with: python bench/NAME.py)
	@for f in bench/*.py; do \
	  $(PYTHON) -c "import ast, sys; d = ast.get_docstring(ast.parse(open(sys.argv[1]).read())) or \"\"; print(\"  %-28s %s\" % (sys.argv[1], d.splitlines()[0] if d else \"\"))" "$$f"; \
	done

demo: ## Build the offline toy demo knowledge base, then search it
	mmrag demo --folder $(DEMO_FOLDER) --db $(DEMO_DB)
	mmrag search "a red circle" --db $(DEMO_DB)

ci: ## Run CI as it runs there: a fresh venv, install, lint, types, layers, tests
	bash .ci/run
