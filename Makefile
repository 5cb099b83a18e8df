# WhaleFall — `make run` starts everything locally; `make test` is what CI runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ADDR   ?= 127.0.0.1:8000

.PHONY: run test venv system-packages migrate bootstrap lint secret-scan secret-scan-baseline format lock check-deploy clean

$(VENV)/.installed: requirements/dev.txt | system-packages
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed

## system-packages: what pip needs to build the MariaDB driver (client headers, pkg-config, a
# C compiler, Python's headers and venv). Installed with apt-get when run as root on
# Debian/Ubuntu; otherwise make stops before pip and prints the command to run.
system-packages:
	@missing=""; \
	pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null \
	  || missing="$$missing libmariadb-dev pkg-config"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" 2>/dev/null \
	  || missing="$$missing python3-dev"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	[ -z "$$missing" ] && exit 0; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" -eq 0 ]; then \
	  echo "Installing system packages with apt-get (as root):$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "WhaleFall needs system packages to build its database drivers. Run:"; \
	  echo "    sudo apt-get install -y$$missing"; \
	  echo "then run make again."; exit 1; \
	else \
	  echo "WhaleFall needs, from your system's package manager:$$missing"; \
	  echo "(the MariaDB client headers with pkg-config, a C compiler, Python headers and venv); then run make again."; exit 1; \
	fi

migrate: venv
	$(PY) manage.py migrate --noinput

bootstrap: migrate
	$(PY) manage.py bootstrap --admin

## run: install, migrate, bootstrap, then web + worker + beat on the embedded default; the
# administrator's new password is shown last, once everything answers.
run: venv
	WHALEFALL_EMBEDDED_NOTICE=0 $(PY) manage.py migrate --noinput --verbosity 0
	$(PY) manage.py run_local --addr $(ADDR) --bootstrap

## test: the whole suite, migration drift and the linters (PostgreSQL + Redis on localhost).
test: venv
	DJANGO_ENV=test WHALEFALL_ENV_FILE= $(PY) -m pytest --durations=15
	DJANGO_ENV=test WHALEFALL_ENV_FILE= DATABASE_URL=sqlite://:memory: $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(MAKE) --no-print-directory secret-scan

lint: venv secret-scan
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

BASELINE := .secrets.baseline

## secret-scan: fail on any secret in a tracked file that the baseline does not list.
# The hook fails once when it only moves known findings' line numbers: it runs on a copy of
# the baseline, and a second run fails only for a finding the baseline does not list.
secret-scan: venv
	@copy=$$(mktemp); cp $(BASELINE) $$copy; \
	git ls-files -z -- ':!$(BASELINE)' | xargs -0 $(VENV)/bin/detect-secrets-hook --baseline $$copy >/dev/null 2>&1; \
	git ls-files -z -- ':!$(BASELINE)' | xargs -0 $(VENV)/bin/detect-secrets-hook --baseline $$copy; \
	status=$$?; rm -f $$copy; exit $$status

## secret-scan-baseline: re-scan once every new finding is reviewed (test data, placeholders).
secret-scan-baseline: venv
	$(VENV)/bin/detect-secrets scan --baseline $(BASELINE)

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## lock: re-pin requirements/*.txt from the .in files.
lock: venv
	cd requirements && for f in base prod dev; do \
	  ../$(PY) -m piptools compile --quiet --strip-extras --no-emit-index-url \
	    --no-emit-find-links --output-file $$f.txt $$f.in; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
