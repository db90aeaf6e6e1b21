# Quai — `make help` lists the targets.
PY := .venv/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run demo test test-pg lint fmt bench lock messages screenshots prod-smoke

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## create .venv from the hashed lock and install Debian's Chromium if missing
	@bash scripts/bootstrap.sh

run: install ## migrate, load the demo if the database is empty, serve on http://127.0.0.1:8000 with a worker and beat
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo --if-empty
	$(PY) manage.py serve 127.0.0.1:8000

demo: install ## load (or refresh) the demo data
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo

test: install ## run the whole test suite (DATABASE_URL picks the database; SQLite by default)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-pg: ## the same tests on the local PostgreSQL
	DATABASE_URL=$(PG_URL) $(MAKE) test

lint: install ## ruff, mypy, import contracts, migrations up to date
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy quai bench
	.venv/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

fmt: install ## format the code
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

prod-smoke: install ## start Quai as in production (granian, DEBUG off) on a free port and check it
	bash scripts/prod_smoke.sh

bench: install ## benchmarks: each figure printed against its target
	$(PY) -m bench

lock: ## re-lock requirements/lock.txt from pyproject.toml (hashes, no index host)
	.venv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--no-emit-index-url --no-emit-find-links -o requirements/lock.txt

messages: install ## refresh and compile the French translations (one catalogue per app)
	for app in quai/*/; do [ -d $$app/locale ] || mkdir -p $$app/locale; (cd $$app && ../../$(PY) ../../manage.py makemessages -l fr -v 0); done
	$(PY) manage.py compilemessages --ignore=.venv -v 0

screenshots: install ## run the browser tests; each saves screenshots of its screens under var/screenshots/
	$(PY) -m pytest -m browser -n 0
