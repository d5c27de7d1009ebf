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
# Scenarios too large for CI's time run with `make test-large` (LARGE), not `make test`:
# storage_vm boots a VM under software emulation (12 min here), cuda_toolkit_debian installs 1.6 GB.
LARGE := cuda_toolkit_debian storage_vm
SCENARIOS ?= $(filter-out default $(LARGE),$(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

.PHONY: test test-large demo bootstrap nodes collection lint sanity unit molecule

test: lint sanity unit molecule
	@echo "make test: all passed"

# What CI's time cannot hold: a VM under emulation, Debian's nvidia-cuda-toolkit (1.6 GB).
test-large:
	$(MAKE) molecule SCENARIOS="$(LARGE)"

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

# scripts/browser.sh: Debian's chromium, for the test that opens the HTML fleet report.
unit: bootstrap collection
	scripts/browser.sh
	pytest -q -rs tests/unit tests/collection

# scripts/gate.sh keeps each scenario's output in .cache/logs/ and fails a scenario that passed
# but printed a CRITICAL line or a deprecation warning.
molecule: bootstrap nodes collection
	@for s in $(SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); \
	  scripts/gate.sh .cache/logs/molecule-$$s.log molecule test -s $$s; \
	  echo "== $$s passed in $$(( $$(date +%s) - start )) s"; \
	done
