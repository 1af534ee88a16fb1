# Every target installs what it needs from scratch: a fresh machine needs only Python 3.10+ and the
# package registries.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench package deploy remove install clean

run: $(STAMP)            ## the main job on the embedded local stack: a real end-to-end demo
	$(PY) -m outpaint demo

test: $(STAMP)           ## lint, then the whole suite (unit, integration, conformance, reliability, deployment)
	$(VENV)/bin/ruff check src tests handler.py
	$(VENV)/bin/ruff format --check src tests handler.py
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests handler.py
	$(VENV)/bin/ruff format --check src tests handler.py

bench: $(STAMP)          ## benchmarks against the naive approach; prints a table, writes bench/results.json
	$(PY) -m tests.bench

install: $(STAMP)

package: $(STAMP)        ## build/outpaint-fc.zip (s.yaml) + build/outpaint-fc-custom.zip (template.yaml, + shim)
	$(PY) deploy/package.py --flavour all

# deploy.sh runs every check and prints the plan before it builds the package (DEPLOY_DRY_RUN=1: stop there).
deploy: $(STAMP)         ## roles, log store, functions and triggers: s deploy -y, credentials from the environment
	PYTHON=$(PY) deploy/deploy.sh deploy

remove: $(STAMP)         ## s remove -y: the functions, triggers and roles make deploy created; never the bucket
	PYTHON=$(PY) deploy/deploy.sh remove

# The gallery's browser test drives Debian's chromium (a test tool's own browser download cannot be
# fetched here); CI runs as root with Debian's packages reachable.
# crcmod (oss2) and crcmod-plus (alibabacloud-oss-v2) install the same import package; crcmod-plus is
# API-compatible and ships a compiled wheel, so it is reinstalled last to leave one intact copy.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local,test]'
	$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps crcmod-plus==2.3.6
	$(PY) -c "import crcmod, oss2, alibabacloud_oss_v2; crcmod.Crc" 
	test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache demo-output
