# tfreview: `make demo` runs a whole release against the local AWS; `make test` runs the whole suite.
# Both create the virtualenv and install what they need on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The hashicorp/aws provider mirror for offline machines (a setting: override with TFREVIEW_PROVIDER_MIRROR=...).
TFREVIEW_PROVIDER_MIRROR ?= $(firstword $(wildcard /opt/tf-plugins) $(patsubst %/registry.terraform.io/hashicorp/aws,%,$(wildcard /usr/share/terraform/plugins/registry.terraform.io/hashicorp/aws)))
TFREVIEW_PLUGIN_CACHE_DIR ?= $(CURDIR)/.cache/plugins
export TFREVIEW_PROVIDER_MIRROR TFREVIEW_PLUGIN_CACHE_DIR
PYTEST_ARGS ?=

.PHONY: venv native test test-unit test-integration test-latest lock lint demo bench golden help-text clean

# Installs are pinned: every package, direct and transitive, at the exact version and hashes of requirements/dev.lock
# (`make lock` refreshes it), then tfreview itself, editable, with the locked setuptools and no other download.
# `editable_mode=compat`: a plain path in a .pth file, not setuptools' import-hook finder (about 30 ms of every
# command's start-up, docs/benchmarks.md).
LOCK := requirements/dev.lock

$(BIN)/tfreview: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	$(BIN)/pip check
	touch $@

venv: $(BIN)/tfreview native

# Optional speed: the hottest modules (tfreview/native.py's COMPILED) compiled with mypyc into .native/ (tfreview/native.py), rebuilt when a
# source they depend on changes (the script checks, a no-op otherwise); without a C compiler tfreview runs pure
# Python. Then the bytecode of the package (this machine sets PYTHONDONTWRITEBYTECODE: without it every run
# compiles tfreview's sources again).
native: $(BIN)/tfreview
	$(BIN)/python scripts/build_native.py
	$(BIN)/python -m compileall -q tfreview

# Headless Chromium for the HTML report test (Debian package); skipped with a reason when it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null 2>&1) || echo "chromium not installed: the HTML browser test will be skipped"; }

# The suite runs in TEST_WORKERS pytest-xdist processes (each with its own local AWS; TEST_WORKERS=0: one process), a
# test module whole on one worker. More workers than cores: most of the suite waits (terraform's provider, the ECS
# lifecycle), it does not compute. 4, not 6: with 6 the fresh-clone run was no faster (27 min 46 s for 1,489 tests,
# against 26 min 50 s for 1,424 with 4) and one terraform run failed to load its provider's schemas on the starved
# cores (docs/design-notes.md, "A suite twice as fast").
TEST_WORKERS ?= 4
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The virtualenv (pip, then the mypyc build) and Chromium's install (apt, on a machine without it) side by side.
test:
	@$(MAKE) --no-print-directory -j2 venv browser
	$(BIN)/pytest -q -p no:cacheprovider $(XDIST) --durations=15 $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -q -m "not integration and not browser" $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/pytest -q -m integration $(XDIST) $(PYTEST_ARGS)

# Refresh the lock from pyproject.toml's ranges and requirements/lock.in (newest allowed versions, with hashes),
# with a pinned uv in its own venv; then run `make test` and commit the lock with what changed (README, Development).
UV_VERSION := 0.13.10
lock:
	$(PYTHON) -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install --quiet uv==$(UV_VERSION)
	.cache/lock-venv/bin/uv pip compile pyproject.toml requirements/lock.in --extra test --generate-hashes \
	  --upgrade --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
	  --quiet -o $(LOCK)

# Drift seen on purpose: the suite against the newest versions pyproject.toml allows (no lock), in .venv-latest.
# Pure Python there (the compiled modules are built by the locked mypyc for .venv), so tests/test_native.py, which
# tests that build, is left out.
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade -e '.[test]'
	mkdir -p .cache && .venv-latest/bin/pip freeze --exclude-editable > .cache/latest-freeze.txt
	@echo "newest allowed versions: .cache/latest-freeze.txt"
	TFREVIEW_NATIVE=0 .venv-latest/bin/pytest -q -p no:cacheprovider $(XDIST) --ignore=tests/test_native.py $(PYTEST_ARGS)

# ruff and mypy over tfreview/ and tests/ (configured in pyproject.toml); both must be clean.
# The top-level `tfreview --help` screen saved at build time (tfreview/_help.py, printed without importing typer):
# after changing a command's name or help, or a top-level option. tests/test_quick_help.py fails while it is stale.
help-text: venv
	$(BIN)/python -m tfreview.cli.helpscreen

lint: venv
	$(BIN)/ruff check tfreview tests
	$(BIN)/mypy

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: venv
	$(BIN)/python bench/make_synthetic.py
	test -f bench/data/real1000/plan.tfplan || $(BIN)/python bench/make_real.py
	$(BIN)/python bench/run.py --render-max 50000
	$(BIN)/python bench/history.py --sizes 10000,100000
	$(BIN)/python bench/make_synthetic.py --families all --sizes 10000,50000
	$(BIN)/python bench/review_speed.py --repeat 3
	$(BIN)/python bench/audit.py --entries 100000
	$(BIN)/python bench/audit_verify.py --entries 100000 --repeat 5
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/policy.py

golden: venv
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/test_render_golden.py

clean:
	rm -rf $(VENV) .venv-latest .cache .tfreview .demo .native build *.egg-info
