# The two commands in the README are the contract: `make run` and `make test` work on a fresh
# machine with python3 (>= 3.10), creating their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-compiled lint format certs conformance docs image image-test bench fuzz soak clean help

help:
	@echo "make run    serve the demo app (app/) on http://127.0.0.1:8000"
	@echo "make test   run the whole test suite"
	@echo "make test-compiled  the suite again on the compiled build (mypyc; needs a C compiler)"
	@echo "make lint   ruff and mypy --strict"
	@echo "make certs  development CA and certificates in certs/ (see certs/README.md)"
	@echo "make conformance  Autobahn|Testsuite cases 1-10 over ws:// and wss:// (not in make test)"
	@echo "make image / image-test  build the container image / build and check it for real"
	@echo "make docs   regenerate the README's configuration table from the Config model"
	@echo "make bench  HTTP/1.1 benchmark side by side with uvicorn, Granian and bare uvloop"
	@echo "make fuzz   long property-based runs of the protocol core (not in make test)"
	@echo "make soak   10 minutes of mixed traffic; RSS and open files must stay flat"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(VENV)/bin/hypercorn --app-dir app --workers 0 --access-logfile - app:app

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The same suite against the compiled build (setup.py: the hot path compiled by mypyc), from
# a wheel installed in its own virtualenv, so that nothing imports the sources by mistake.
CVENV := $(VENV)-compiled
test-compiled: $(STAMP)
	rm -rf build $(CVENV)/dist  # (all of it: a stale build/lib.* would ship old modules)
	HYPERCORN_COMPILE=1 $(PY) -m pip wheel --quiet --no-build-isolation --no-deps -w $(CVENV)/dist .
	@test -x $(CVENV)/bin/python || $(PY) -m venv $(CVENV)
	$(CVENV)/bin/python -m pip install --quiet --upgrade pip
	$(CVENV)/bin/python -m pip install --quiet "$$(ls $(CVENV)/dist/hypercorn-*.whl)[dev]"
	$(CVENV)/bin/python -m pip install --quiet --force-reinstall --no-deps $(CVENV)/dist/hypercorn-*.whl
	HYPERCORN_EXPECT_COMPILED=1 $(CVENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests app certs bench setup.py
	$(VENV)/bin/ruff format --check src tests app certs bench setup.py
	$(VENV)/bin/mypy

certs: $(STAMP)
	$(PY) certs/make_certs.py

# Autobahn|Testsuite is Python 2 code: setup.sh builds a 2.7 virtualenv for it (needs root
# for apt on Debian); the run fails on any FAILED case. See tests/conformance/README.md.
conformance: $(STAMP)
	$(PY) tests/conformance/autobahn/run.py "$$(bash tests/conformance/autobahn/setup.sh)" \
		--cases "$${AUTOBAHN_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*}"

image:
	docker build -t hypercorn-appliance:latest .

# Builds and runs the image for real with the shared checker (hadolint, yamllint, compose,
# Kubernetes schemas, build, serve, non-root, SIGTERM, read-only hardened run, compose up).
# The shared checker (static checks, build, serve, non-root, SIGTERM, hardened run, compose),
# then this repository's protocol checks against the image it built (h2c, TLS/h2, Alt-Svc,
# HTTP/3, the fast-path extras).
image-test: $(STAMP)
	CTX=. K8S_DIR=deploy/kubernetes KEEP_WORK=1 \
	  SERVE_ENV="HYPERCORN_BIND=127.0.0.1:8123 HYPERCORN_ADMIN_BIND=127.0.0.1:9123" \
	  bash $${CONTAINER_CHECK:-../shared/container/ci-container-check.sh}
	PY=$(PY) CLEAN_WORK=1 bash deploy/checks/protocols.sh

# Side by side with uvicorn[standard], Granian and a bare uvloop protocol (bench/run.py).
bench: $(STAMP)
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null)
	$(PY) bench/run.py $(BENCH_ARGS)

docs: $(STAMP)
	$(PY) -m hypercorn.settings

format: $(STAMP)
	$(VENV)/bin/ruff format src tests app certs bench setup.py
	$(VENV)/bin/ruff check --fix src tests app certs bench setup.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

# Long property-based runs of the protocol core (100x the examples `make test` runs).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -p no:cacheprovider --timeout=0 -q \
		tests/unit/test_fuzz_core.py tests/unit/test_h1_differential.py tests/unit/test_h11_core.py \
		tests/unit/test_hpack_encoder.py tests/unit/test_hpack_decoder.py

# 10 minutes of mixed HTTP/1.1, HTTP/2 and WebSocket traffic with random disconnects against
# a real server; fails if its RSS or open files grow after warm-up or its log shows errors.
soak: $(STAMP)
	$(PY) tests/soak/soak.py --duration $${SOAK_SECONDS:-600}
