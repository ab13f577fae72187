# Baton's developer commands. Every target installs what it needs through uv.
UV ?= uv
RUN := $(UV) run --locked

.PHONY: install lint test test-unit test-integration test-browser test-counts crds controlplane dev dev-down ui ui-check clean

install:  ## Create .venv with the locked dependencies.
	$(UV) sync --locked

lint: install  ## ruff, mypy --strict, the import contract, stale-CRD check, Dockerfile lint.
	$(RUN) ruff check operator activities tests bench examples
	$(RUN) ruff format --check operator activities tests bench examples
	$(RUN) mypy
	$(RUN) lint-imports
	hack/dockerfile-lint.sh Dockerfile activities/Dockerfile

# The control plane is built before pytest starts: a cold build (about 10 min) inside the first
# integration test's setup would run into that test's time limit.
test: install controlplane  ## Unit tests, then integration tests on a local control plane.
	$(RUN) pytest

test-unit: install
	$(RUN) pytest tests/unit

test-integration: install controlplane
	$(RUN) pytest tests/integration

test-browser: install controlplane  ## The web view in headless Chromium (/usr/bin/chromium) on a local control plane.
	$(RUN) pytest tests/browser

ui:  ## Rebuild the web view's bundle (operator/baton/ui/static/app.js) from web/src with esbuild.
	cd web && npm ci --no-audit --no-fund && npm run check && npm run build

ui-check: ui  ## Fail when the committed bundle is not what web/src builds.
	@git diff --quiet -- operator/baton/ui/static/app.js || { \
		echo "error: operator/baton/ui/static/app.js is stale: run make ui and commit it" >&2; exit 1; }

test-counts: install  ## Fail if a test folder collects fewer tests than tests/collection-floors.txt.
	$(RUN) python tests/collection_floors.py

crds: install  ## Regenerate crds/ and the chart's charts/baton/crds/ from the pydantic models.
	$(RUN) baton crds --output crds
	$(RUN) baton crds --output charts/baton/crds

controlplane:  ## Build (or reuse) etcd, kube-apiserver, controller-manager, scheduler, kwok, kubectl, helm.
	hack/controlplane.sh build

dev:  ## Control plane, CRDs, operator, demo services and an example run; all keep running.
	hack/dev.sh up

dev-down:  ## Stop what make dev started.
	hack/dev.sh down

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
