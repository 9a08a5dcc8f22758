# Everything runs from the project virtualenv (./venv, the one Pulumi.yaml names).
# `make render` and `make test` set it up themselves on a fresh machine.

PYTHON ?= python3
VENV   ?= venv
BIN    := $(VENV)/bin
# Every Pulumi.<stack>.yaml is a stack; a new stack file is rendered without editing this.
STACKS ?= $(sort $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)))
STACK  ?=
# Example projects (examples/<name>/Pulumi.yaml) and every Containerfile, found, never listed.
EXAMPLES       := $(sort $(dir $(wildcard examples/*/Pulumi.yaml)))
CONTAINERFILES := $(sort $(wildcard services/*/Containerfile database/Containerfile examples/*/*/Containerfile))
# Tools installed from PyPI (hadolint, actionlint) live in the venv's bin.
export PATH := $(abspath $(VENV))/bin:$(PATH)
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt components/pyproject.toml rules/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv render test unit lint docs image-deps image-test bench bench-render clean toolchain cluster cluster-down cluster-test

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## render: run the program offline for STACK (default: every stack) into build/<stack>/
render: venv
	$(BIN)/python -m hardened_k8s.render $(foreach s,$(or $(STACK),$(STACKS)),--stack $(s))

## test: every test tier; the image tier starts its own engine and registry, the cluster tier
## its own control plane (tools from `make toolchain`); each skips locally when its tools are
## missing, never under CI=true
test: venv
	@# Without Go or root for etcd the toolchain cannot be built: the cluster tier then skips
	@# (a failure under CI=true, where the tier must run).
	bash scripts/toolchain.sh >/dev/null || [ -z "$$CI" ] || exit 1
	$(BIN)/python -m pytest

## toolchain: build pulumi, the Kubernetes provider, the control plane and KWOK from pinned Go
## modules into ~/.cache/hardened-k8s/toolchain (seconds once cached)
toolchain:
	bash scripts/toolchain.sh >/dev/null

## cluster / cluster-down: the local cluster without a stack: control plane, the real node
## and KWOK nodes in build/cluster (KUBECONFIG=build/cluster/kubeconfig.yaml; root)
cluster: venv toolchain
	$(BIN)/python -m tests.cluster start

cluster-down: venv
	$(BIN)/python -m tests.cluster down

## cluster-test: only the cluster tier (real pulumi preview/up/destroy of every stack)
cluster-test: venv toolchain
	$(BIN)/python -m pytest -m cluster tests/cluster

## unit: the unit tier only: mock engine, policy and Containerfile checks, in this process (seconds)
unit: venv
	$(BIN)/python -m pytest -m "not image and not cluster and not install and not tools" tests/unit tests/policy

## tools-test: only the tools tier: hadolint, actionlint, git, pip, the wheel builds, fresh
## interpreters, the policy analyzer and the component package, each a process of its own
.PHONY: tools-test
tools-test: venv
	$(BIN)/python -m pytest -m tools tests/unit tests/policy

## install-test: only the install tier: the library's wheel without extras, and the policy pack
## on the rules wheel alone, each in a fresh virtualenv (other packages from PyPI)
.PHONY: install-test
install-test: venv
	$(BIN)/python -m pytest -m install tests/install

## image-deps: the Debian packages the image tier needs (root or passwordless sudo)
image-deps:
	bash scripts/ci-image-deps.sh

## image-test: only the real-build tier
image-test: venv
	$(BIN)/python -m pytest -m image tests/image

## node-deps: the Debian packages the real node needs on top of image-deps (containerd, runc,
## the CNI plugins, catatonit, conntrack, ipset, iptables, iproute2, postgresql-client), Node.js
## and the TypeScript example's npm packages in npm's cache
.PHONY: node-deps up down
node-deps: image-deps
	bash scripts/ci-node-deps.sh

## up: build the images, start the local cluster with its real node and `pulumi up` STACK
## (default dev) onto it; prints how to reach the MCP server through the Ingress (root)
up: venv toolchain
	$(BIN)/python -m tests.cluster up --stack $(or $(STACK),dev)

## down: stop the cluster, its node, the image engine and registry; remove build/cluster
down: venv
	$(BIN)/python -m tests.cluster down

## bench-render: render scale (1-100 services) and the render against `cdk8s synth` of the same
## objects (needs Node 20 and npm; `npm ci` fills bench/cdk8s/node_modules); JSON in build/bench/
bench-render: venv
	$(BIN)/python bench/render_scale.py
	$(BIN)/python bench/cdk8s_compare.py

## bench-unit: wall and CPU time of the unit tier (`make unit`), five runs
.PHONY: bench-unit
bench-unit: venv
	$(BIN)/python bench/unit_suite.py

## bench: bench-render, the unit tier, policy scale (10-200) and image builds (needs image-deps)
bench: bench-render bench-unit
	$(BIN)/python bench/policy_scale.py
	$(BIN)/python bench/images.py

## docs: the API reference of hardened_k8s and hardened_k8s_rules (pdoc) into build/docs/, and
## docs/rules.md from the rule registry
docs: venv
	$(BIN)/python scripts/docs.py build

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# Each Pulumi program is its own __main__ module: checked one at a time.
	$(BIN)/mypy policy
	set -e; for example in $(EXAMPLES); do $(BIN)/mypy $$example; done
	# Every Containerfile: the services', the database's and the examples'.
	$(BIN)/hadolint --config .hadolint.yaml --failure-threshold warning $(CONTAINERFILES)
	# Breaking changes to the library's public API need a major version bump (minor while 0.x).
	$(BIN)/python scripts/api_check.py
	# Every public name has a docstring, every cross-reference resolves, docs/rules.md is current.
	$(BIN)/python scripts/docs.py check

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
