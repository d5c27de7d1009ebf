# Two entry points: `make demo` provisions local container nodes with playbooks/site.yml;
# `make test` runs every test. Each builds what it needs first (venv, Docker daemon, node image).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: test demo bootstrap nodes collection lint sanity unit molecule

test: lint sanity unit molecule
	@echo "make test: all passed"

demo: bootstrap nodes collection
	scripts/demo.sh

bootstrap:
	scripts/bootstrap.sh

nodes:
	scripts/docker.sh
	tests/images/build.sh

# This repository is the collection dlnode.gpu: make it resolvable by FQCN.
collection:
	@mkdir -p .cache/collections/ansible_collections/dlnode
	@ln -sfn ../../../.. .cache/collections/ansible_collections/dlnode/gpu

# ansible-lint installs the collection it lints under ANSIBLE_HOME: keep that copy in this
# checkout, so another checkout's lint on the same machine cannot swap it under this one.
lint: bootstrap collection
	ANSIBLE_HOME=$(CURDIR)/.cache/ansible-home ansible-lint --offline

sanity: bootstrap
	scripts/sanity.sh

unit: bootstrap collection
	pytest -q tests/unit tests/collection

# Each scenario's output is kept in .cache/logs/. A deprecation warning fails the scenario: what
# ansible-core deprecates today stops working in a later release (e.g. top-level ansible_* facts).
molecule: bootstrap nodes collection
	@mkdir -p .cache/logs
	@for s in $(SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); log=.cache/logs/molecule-$$s.log; \
	  ANSIBLE_DEPRECATION_WARNINGS=True molecule test -s $$s 2>&1 | tee $$log; \
	  if grep -n -A7 '\[DEPRECATION WARNING\]' $$log; then \
	    echo "== $$s printed deprecation warnings (above; whole output in $$log)"; exit 1; \
	  fi; \
	  echo "== $$s passed in $$(( $$(date +%s) - start )) s"; \
	done
