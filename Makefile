# cmdcenter — the two commands: `make run` (demo at http://127.0.0.1:8050) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEBIAN_TEST_PACKAGES := chromium chromium-driver fonts-noto-cjk redis-server postgresql nginx

.PHONY: run test bench bench-load bench-stress fuzz install system-deps wheelhouse clean

run: $(STAMP)
	$(PY) -m command.cli demo

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests need (a real browser, CJK fonts, Redis and PostgreSQL binaries)
system-deps:
	@missing=""; \
	for p in $(DEBIAN_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

test: system-deps $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

# the Stress scenario: 2,000 /live screens (Node socket.io-client, npm-installed into bench/stress)
# while a feed reports 10/s, on one server process; not part of make test
bench-stress: $(STAMP)
	$(PY) -m bench.stress

# the hostile-input properties of make test, with a random seed and 20x the examples
fuzz: system-deps $(STAMP)
	CMDCENTER_FUZZ_EXAMPLES=$${CMDCENTER_FUZZ_EXAMPLES:-1200} CMDCENTER_FUZZ_RANDOM=1 \
	  $(PY) -m pytest -q tests/test_hostile.py

# a county's peak, 2,000 screens, a reconnect storm: serve --workers 2 behind nginx (TLS) on
# PostgreSQL and Redis, Node clients (bench/load); not part of `make test`
bench-load: system-deps $(STAMP)
	cd bench/load && npm ci --no-audit --no-fund --silent
	$(PY) -m bench.load

# every wheel the product needs, for servers without a package index (README: "Offline install")
wheelhouse: $(PY)
	rm -rf wheelhouse
	$(PY) -m pip wheel --quiet . -w wheelhouse/
	@ls wheelhouse | wc -l | xargs printf "wheelhouse/: %s wheels; install with: pip install --no-index --find-links wheelhouse cmdcenter\n"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache wheelhouse
