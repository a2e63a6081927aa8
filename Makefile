# Tooling of the template itself. `make demo` and `make test` are the two commands at the top of README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv from PATH, else pip installs the pinned version, checked against the sha256s of
# tools/requirements-uv.txt, into a folder of its own (--target works where the system Python is
# externally managed, PEP 668); commands the recipes start find it too.
UV_VERSION ?= 0.13.9
UV_HOME ?= $(HOME)/.local/share/uv-$(UV_VERSION)
UV ?= $(shell command -v uv 2>/dev/null || echo "$(UV_HOME)/bin/uv")
export PATH := $(dir $(UV)):$(PATH)
RUN := $(UV) run --no-sync
DEMO_DIR ?= $(CURDIR)/.demo/credit-risk-model
PYTEST_ARGS ?=
# The template's suite runs on this many processes (pytest-xdist); a module's tests share one,
# so a module renders its projects once. PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 2
RUNTIME_PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	@grep -q '^uv==$(UV_VERSION) ' tools/requirements-uv.txt || { echo "tools/requirements-uv.txt does not pin uv $(UV_VERSION) (UV_VERSION)" >&2; exit 2; }
	@python3 -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: --no-deps --target "$(UV_HOME)" --requirement tools/requirements-uv.txt

.PHONY: setup
setup: $(UV) ## Create .venv with the template's tooling (copier, pytest, pytest-copie, ruff)
	$(UV) sync --locked --quiet

.PHONY: demo
demo: setup ## Render a project from all defaults into .demo/ and run its pipeline
	rm -rf "$(DEMO_DIR)"
	$(RUN) copier copy --trust --defaults --vcs-ref HEAD . "$(DEMO_DIR)"
	$(MAKE) -C "$(DEMO_DIR)" setup pipeline
	@echo "--- metrics of the demo project ($(DEMO_DIR))"
	@$(MAKE) --no-print-directory -s -C "$(DEMO_DIR)" metrics

.PHONY: test
test: test-runtime setup ## Run the runtime's tests, then the template's suite (renders projects and runs their checks)
	$(RUN) pytest --numprocesses=$(PYTEST_WORKERS) --dist=loadscope $(PYTEST_ARGS)

# The runtime (runtime/: the platform package generated repositories depend on) in an environment
# of its own with every extra: mypy, then its tests with the coverage floor of runtime/pyproject.toml
# (they render nothing), on PYTEST_WORKERS processes. A subset: RUNTIME_PYTEST_ARGS=tests/serving RUNTIME_COVERAGE=
RUNTIME_COVERAGE ?= --cov
.PHONY: test-runtime
test-runtime: $(UV) ## Type-check the runtime and run its own tests (runtime/tests), fast enough for every edit
	cd runtime && $(UV) sync --locked --all-extras --quiet
	cd runtime && $(UV) run --no-sync mypy
	cd runtime && $(UV) run --no-sync pytest --numprocesses=$(PYTEST_WORKERS) --dist=loadscope $(RUNTIME_COVERAGE) $(RUNTIME_PYTEST_ARGS)

# Mutation testing of the runtime's critical modules (runtime/pyproject.toml, [tool.mutmut]): mutmut
# changes one thing at a time and runs the tests that cover it; tools/mutation_report.py prints the
# killed share per module and fails below MUTATION_FLOOR or on a survivor that
# runtime/mutation-equivalents.toml does not explain. About 5,500 mutants, hours on two cores: a
# release step, not `make test`. A subset: MUTANTS='mlops_stack_runtime.gates*' (the report still reads every module's last
# results). Both reach the commands as data, never shell. mutmut copies a file it does not mutate
# (and the tests) into runtime/mutants/ only when no copy is there yet: the recipe drops those
# copies first, so a run imports today's code and runs today's tests (the mutated modules, a .meta
# beside each, mutmut renews itself when their source changed).
MUTANTS ?=
MUTATION_FLOOR ?= 0.85
export MUTANTS MUTATION_FLOOR PYTEST_WORKERS
.PHONY: mutation
mutation: $(UV) ## Mutation-test the runtime's critical modules; print the killed share per module
	cd runtime && $(UV) sync --locked --all-extras --group mutation --quiet
	if [ -d runtime/mutants ]; then rm -rf runtime/mutants/tests; find runtime/mutants/src -type f ! -name '*.meta' -exec sh -c 'for f; do [ -e "$$f.meta" ] || rm -f -- "$$f"; done' sh {} +; fi
	cd runtime && $(UV) run --no-sync mutmut run --max-children "$$PYTEST_WORKERS" $${MUTANTS:+"$$MUTANTS"}
	$(UV) run --no-project --quiet python tools/mutation_report.py --runtime runtime --floor "$$MUTATION_FLOOR"

# The runtime's distributions for a team's package index (README.md, "Releasing the template"):
# built from this checkout into dist/, published with uv (credentials from UV_PUBLISH_TOKEN or
# UV_PUBLISH_USERNAME/UV_PUBLISH_PASSWORD). PUBLISH_URL reaches the command as data, never shell.
RUNTIME_DIST ?= $(CURDIR)/dist
PUBLISH_URL ?=
export PUBLISH_URL
.PHONY: runtime-dist
runtime-dist: $(UV) ## Build the runtime's wheel and sdist into dist/ (refused unless its version is the template's)
	@$(UV) run --no-project --quiet python tools/release_check.py
	rm -rf "$(RUNTIME_DIST)"
	$(UV) build --quiet --out-dir "$(RUNTIME_DIST)" runtime

.PHONY: runtime-publish
runtime-publish: $(UV) ## Build, then upload dist/ to the index PUBLISH_URL=<upload URL> (uv publish)
	@test -n "$$PUBLISH_URL" || { echo "make runtime-publish needs PUBLISH_URL=<the index's upload URL>" >&2; exit 2; }
	@$(MAKE) --no-print-directory runtime-dist
	$(UV) publish --publish-url "$$PUBLISH_URL" "$(RUNTIME_DIST)"/*

# A platform team's repositories: REPOS="<folders or globs>" (tools/fleet.py says what happens).
REPOS ?=
FORMAT ?= text
JOBS ?=
FLEET = $(if $(REPOS),,$(error REPOS="<folders or globs>" names the repositories))$(RUN) python tools/fleet.py

.PHONY: fleet-check
fleet-check: setup ## Where each repository of REPOS="<folders or globs>" stands (FORMAT=json, JOBS=n)
	@$(FLEET) check $(REPOS) --format $(FORMAT) $(if $(JOBS),--jobs $(JOBS))

.PHONY: fleet-update
fleet-update: setup ## Update each repository of REPOS behind the template on branch template-update
	@$(FLEET) update $(REPOS) --format $(FORMAT) $(if $(JOBS),--jobs $(JOBS))

.PHONY: lint
lint: setup ## Lint the template's own code (hooks, tests, benchmarks) and the runtime
	$(RUN) ruff check hooks includes tests benchmarks tools runtime
	$(RUN) ruff format --check hooks includes tests benchmarks tools runtime

.PHONY: bench
bench: setup ## Render benchmark: defaults of startup and enterprise next to `copier --version`
	$(RUN) python benchmarks/render.py

.PHONY: bench-all
bench-all: bench ## Every benchmark (minutes): render, first run of a project, serving, drift, fleet, scoring, kfp-local
	$(RUN) python benchmarks/generated_repo.py
	$(RUN) python benchmarks/serving.py
	$(RUN) python benchmarks/drift.py
	$(RUN) python benchmarks/fleet.py
	$(RUN) python benchmarks/scoring.py
	$(RUN) python benchmarks/kfp_local.py

.PHONY: pin-images
pin-images: ## Refresh the base-image digests that rendered repos start with (includes/images.jinja)
	python3 runtime/src/mlops_stack_runtime/tools/pin_images.py includes/images.jinja $(if $(MIRROR),--mirror $(MIRROR))
