# launchready.core — the two set-up commands are `make demo` and `make test`; both build .venv themselves.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
ANSIBLE_CORE ?= 2.19.14
VENV ?= .venv
# A second toolchain for the newest ansible-core, which needs Python >= 3.12 (units and e2e only).
PYTHON_NEXT ?= /root/.pyenv/versions/3.12.1/bin/python
ANSIBLE_CORE_NEXT ?= 2.21.5
VENV_NEXT ?= .venv-2.21

# Tools that start other tools (ansible-lint, ansible-test) find them in the venv first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

COLLECTION_LINK := .collections/ansible_collections/launchready/core
# ansible-test only runs inside ansible_collections/<namespace>/<name>; it gets a copy there.
TEST_TREE := build/test/ansible_collections/launchready/core
# Three workers on two cores: much of an end-to-end test is waiting (DNS propagation, rate-limit
# windows, health checks). One file per worker, each worker with its own lab.
PYTEST_E2E := -p no:cacheprovider -q -n 3 --dist loadfile --durations=10

.PHONY: help venv venv-next link demo test sanity units lint docs-lint changelog-lint e2e test-next units-next e2e-next build clean lab-up lab-down FORCE

help:
	@echo "make demo   - start the lab, run the whole launch against it (twice), stop the lab"
	@echo "make test   - the whole test suite: sanity, units, ansible-lint, docs and changelog lint, e2e against the lab"
	@echo "make build  - build the collection tarball (launchready-core-<version>.tar.gz)"

$(VENV)/.installed: tests/requirements.txt tests/requirements-lint.txt requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "ansible-core==$(ANSIBLE_CORE)" -r tests/requirements.txt -r tests/requirements-lint.txt
	touch $@

venv: $(VENV)/.installed

$(VENV_NEXT)/.installed: tests/requirements.txt requirements.txt
	$(PYTHON_NEXT) -m venv $(VENV_NEXT)
	$(VENV_NEXT)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_NEXT)/bin/python -m pip install --quiet --disable-pip-version-check "ansible-core==$(ANSIBLE_CORE_NEXT)" -r tests/requirements.txt
	touch $@

venv-next: $(VENV_NEXT)/.installed

link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn ../../.. $(COLLECTION_LINK)

# A copy of the tracked and not-ignored files, where ansible-test can run.
$(TEST_TREE): FORCE
	@rm -rf $(TEST_TREE) && mkdir -p $(TEST_TREE)
	@git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(TEST_TREE)
	@# its own git index, or ansible-test would ask this checkout's git, which ignores build/
	@cd $(TEST_TREE) && git init -q && git add -A

FORCE:

demo: venv link
	$(VENV)/bin/python -m tests.demo

test: sanity units lint docs-lint changelog-lint e2e test-next

sanity: venv $(TEST_TREE)
	$(VENV)/bin/python tests/tools/seed_ansible_test_pip.py
	cd $(TEST_TREE) && $(CURDIR)/$(VENV)/bin/ansible-test sanity --venv --python 3.11 --color no

units: venv $(TEST_TREE)
	cd $(TEST_TREE) && $(CURDIR)/$(VENV)/bin/ansible-test units --local --python 3.11 --color no

lint: venv link
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/ruff check plugins tests benchmarks
	$(VENV)/bin/mypy

docs-lint: venv link
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections $(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs .

changelog-lint: venv
	$(VENV)/bin/antsibull-changelog lint

e2e: venv link
	$(VENV)/bin/python -m pytest $(PYTEST_E2E) tests/e2e

# Units and e2e again on the newest ansible-core, when its Python is on this machine.
test-next:
	@if [ -x "$(PYTHON_NEXT)" ]; then \
	  $(MAKE) --no-print-directory units-next e2e-next; \
	else \
	  echo "test-next: skipped, $(PYTHON_NEXT) not found (ansible-core $(ANSIBLE_CORE_NEXT) needs Python >= 3.12)"; \
	fi

units-next: venv-next $(TEST_TREE)
	cd $(TEST_TREE) && $(CURDIR)/$(VENV_NEXT)/bin/ansible-test units --local --python 3.12 --color no

# The lab's self-tests (tests/e2e/test_lab*.py) run no Ansible: once, in `e2e`, is enough.
e2e-next: venv-next link
	$(VENV_NEXT)/bin/python -m pytest $(PYTEST_E2E) --ignore-glob='tests/e2e/test_lab*' tests/e2e

build: venv
	$(VENV)/bin/ansible-galaxy collection build --force --output-path build/

lab-up: venv
	$(VENV)/bin/python -m tests.lab up

lab-down: venv
	$(VENV)/bin/python -m tests.lab down

clean:
	rm -rf build .collections tests/output
