# Two entry points: `make demo` provisions local container nodes with playbooks/site.yml;
# `make test` runs every test. Each builds what it needs first (venv, Docker daemon, node image).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
# Ansible's home per checkout: ansible-lint and Molecule look in its collections before any other,
# and ~/.ansible is shared by every checkout on the machine.
export ANSIBLE_HOME := $(CURDIR)/.cache/ansible
# molecule/default is no test: Molecule only wants it to exist (see its molecule.yml).
SCENARIOS ?= $(filter-out default,$(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

.PHONY: test demo bootstrap nodes collection lint sanity unit molecule

test: lint sanity unit molecule
	@echo "make test: all passed"

demo: bootstrap nodes collection
	scripts/gate.sh .cache/logs/demo.log scripts/demo.sh

bootstrap:
	scripts/bootstrap.sh

nodes:
	scripts/docker.sh
	tests/images/build.sh

# This repository is the collection dlnode.gpu: make it resolvable by FQCN.
collection:
	@mkdir -p .cache/collections/ansible_collections/dlnode
	@ln -sfn ../../../.. .cache/collections/ansible_collections/dlnode/gpu

lint: bootstrap collection
	ansible-lint --offline

sanity: bootstrap
	scripts/sanity.sh

unit: bootstrap collection
	pytest -q tests/unit tests/collection

# scripts/gate.sh keeps each scenario's output in .cache/logs/ and fails a scenario that passed
# but printed a CRITICAL line or a deprecation warning.
molecule: bootstrap nodes collection
	@for s in $(SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); \
	  scripts/gate.sh .cache/logs/molecule-$$s.log molecule test -s $$s; \
	  echo "== $$s passed in $$(( $$(date +%s) - start )) s"; \
	done
