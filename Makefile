# Ferry: `make test` sets everything up on a fresh Debian machine and runs the suite;
# `make demo` starts the bot on a demo Flux repository and a local registry.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench docs system-deps venv clean

test: venv system-deps docs
	$(PY) -m pytest -q

demo: venv system-deps
	$(PY) -m devtools.demo

bench: venv system-deps
	$(PY) -m bench.run

venv: $(STAMP)

# docs/ as a site; --strict: a broken link or a page missing from the nav fails the build.
DOCS_VENV ?= .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --quiet --site-dir site

$(DOCS_STAMP): requirements-docs.txt
	test -x $(DOCS_VENV)/bin/python || python3 -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $(DOCS_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# The registry the tests and the demo run: Debian's CNCF distribution, and htpasswd for its auth;
# Prometheus, whose queries the verification tests evaluate.
system-deps:
	@if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null || ! test -x /usr/sbin/sshd || ! command -v gpg >/dev/null || ! command -v prometheus >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-registry apache2-utils git openssh-server openssh-client gnupg prometheus >/dev/null; \
	fi
	@command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && test -x /usr/sbin/sshd && command -v gpg >/dev/null && command -v prometheus >/dev/null

clean:
	rm -rf $(VENV) $(DOCS_VENV) site data demo-data .pytest_cache
