# The two commands: `make run` serves the site, `make test` runs the suite.
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The suite runs against the scaled-out configuration's real services.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lessongraph
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test provision lint bench bench-payments bench-deployments clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $$(scripts/find-python.sh) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) scripts/serve.py --port $(PORT)

provision:
	bash scripts/provision.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: $(VENV)/.installed provision lint
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(VENV)/bin/pytest

bench: $(VENV)/.installed provision
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/lessongraph_bench $(PY) bench/lessons.py

bench-payments: $(VENV)/.installed provision
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/lessongraph_bench_pay $(PY) bench/payments.py

bench-deployments: $(VENV)/.installed provision
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/lessongraph_bench_dep $(PY) bench/deployments.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
