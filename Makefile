# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need (Python venv, Debian packages, Go builds) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install lint test test-unit test-unit-fast test-e2e demo testbed-up testbed-down testbed-status bench dist image deploy

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check debugcap testbed tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py

test-unit: install
	$(BIN)/pytest tests/unit -q -ra

# The inner loop: unit tests that neither build nor run Go programs (under 30 s on 2 cores).
test-unit-fast: install
	$(BIN)/pytest tests/unit -q -ra -m "not slow" -p no:cacheprovider

test-e2e: install
	$(BIN)/pytest tests/e2e -q -ra

# Lint, unit and end-to-end tests; the e2e tests bring the local testbed up
# (the first run builds Kubernetes, etcd and MinIO: many minutes on 2 cores).
test: lint
	$(BIN)/pytest tests -q -ra

demo: install
	$(BIN)/python -m testbed up
	bash scripts/demo.sh

testbed-up: install
	$(BIN)/python -m testbed up

testbed-down: install
	$(BIN)/python -m testbed down

testbed-status: install
	$(BIN)/python -m testbed status

# The operator's image from the Dockerfile (buildah; Debian base made by mmdebstrap), pushed to the
# running testbed's registry as 10.250.0.1:15000/debugcap/operator:<version>; cached in
# ~/.cache/debugcap-testbed/image-build. `make deploy` helm-installs the chart from it into debugcap-system,
# the pods annotated with the pushed digest: a deploy after a rebuild (same tag) rolls them.
image: install
	$(BIN)/python -m testbed image

deploy: install
	$(BIN)/python -m testbed deploy

bench: install
	$(BIN)/python benchmarks/run_all.py

# The single-file kubectl-debugcap (a zipapp needing python3 3.11-3.14) and its krew archive,
# dist/kubectl-debugcap-<version>-<os>-<arch>.tar.gz, for this machine's platform (or
# PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"), and the krew manifest
# deploy/krew/debugcap.yaml with their sha256s. Both are build outputs, not committed (docs/install.md).
PLATFORMS ?=
DIST_DIR ?= dist
KREW_MANIFEST ?= deploy/krew/debugcap.yaml
dist: install
	$(BIN)/python scripts/build_dist.py --out $(DIST_DIR) --manifest $(KREW_MANIFEST) $(foreach p,$(PLATFORMS),--platform $(p))
