# Set-up and checks for viztracer. Two entry points (see README.md):
#   make demo   build, trace examples/demo.py and write a report
#   make test   build and run every test: cargo test, pytest on each Python of
#               TEST_PYTHONS, the documentation build, and the wheels and sdist of
#               `make dist` installed and tried as a user would (`make dist-test`)
#
# Interpreters come from pyenv (`pyenv prefix 3.11`), or from python3.X on PATH.
# Each version gets its own virtualenv under .venv/ and its own cargo target dir.

SHELL := /bin/bash
# 3.14 and 3.15 (and 3.14d, Debian's debug build of 3.14) run inside a Debian sid root
# that `tools/debian-root.sh sid` makes and reuses: see "Python 3.14 and 3.15" below.
SID_PYTHONS := 3.14 3.15 3.14d
TEST_PYTHONS ?= 3.11 3.13 3.9 3.10 3.12 $(SID_PYTHONS)
DEMO_PYTHON ?= 3.11
PYTEST_ARGS ?=
VENV ?= .venv
PIP_PACKAGES := maturin>=1.9.4,<2 pytest objprint trio loky joblib

# --- viewer / browser tests (owned by the viewer work) ---------------------------
# Extra pip packages installed into every test virtualenv, and a target run before
# pytest that makes sure the headless browser is present.
# Playwright only where the browser tests run (Python 3.11, see tests/browser/conftest.py);
# IPython everywhere, for the %%viztracer cell magic tests.
VIEWER_PIP_PACKAGES := playwright;python_version=='3.11' ipython ipywidgets nbclient;python_version=='3.11' nbconvert;python_version=='3.11' nbformat;python_version=='3.11' ipykernel;python_version=='3.11'
browser-deps:
	@bash tools/install_browser.sh

# gdb: `viztracer --attach` from Python 3.13 and earlier (tests/test_attach.py). Debian's
# package, installed when missing and we are root; else those tests are skipped (not
# under CI=true, where they fail).
gdb-deps:
	@command -v gdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then echo "== installing gdb"; \
	    apt-get install -y -q gdb >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q gdb >/dev/null; }; \
	  else echo "== gdb is missing (apt-get install gdb): attach tests before Python 3.14 are skipped"; fi; }
# --- end of viewer block -----------------------------------------------------------

python_bin = $(shell (pyenv prefix $(1) 2>/dev/null | head -n1 | sed 's|$$|/bin/python|') || command -v python$(1))

.PHONY: demo test build-% pytest-% cargo-test docs clean bench bench-collect browser-deps gdb-deps lint lint-rust lint-python options \
	dist dist-test sdist wheel-%
# The virtualenvs are made once: without this, make deletes the pattern rule's
# `.ready` marker after every run and the next run installs everything again.
.PRECIOUS: $(VENV)/%/.ready

$(VENV)/%/.ready: Makefile
	@py="$(call python_bin,$*)"; \
	if [ ! -x "$$py" ]; then py="$$(command -v python$*)"; fi; \
	if [ -z "$$py" ] || [ ! -x "$$py" ]; then echo "Python $* not found (pyenv or python$* on PATH)"; exit 1; fi; \
	echo "== creating $(VENV)/$* with $$py"; \
	"$$py" -m venv $(VENV)/$* && \
	$(VENV)/$*/bin/python -m pip install -q --upgrade pip && \
	$(VENV)/$*/bin/python -m pip install -q $(foreach p,$(PIP_PACKAGES) $(VIEWER_PIP_PACKAGES),"$(p)") && \
	touch $@

# Build the extension (release profile: overhead numbers mean nothing on a debug build)
# and install the package in editable mode into the version's virtualenv.
build-%: $(VENV)/%/.ready
	@echo "== building for Python $*"
	@CARGO_TARGET_DIR=target/py$* VIRTUAL_ENV=$(abspath $(VENV)/$*) PATH=$(abspath $(VENV)/$*/bin):$$PATH \
		$(VENV)/$*/bin/maturin develop --release -q

pytest-%: build-%
	@echo "== pytest on Python $*"
	@cd tests && $(abspath $(VENV))/$*/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) $(PYTEST_FILES)

# --- Python 3.14 and 3.15 ------------------------------------------------------------
# Outside the root, pytest-3.14 & co. run `make pytest-3.14` inside it (the script sets
# VIZTRACER_IN_SID there). Without root or debootstrap they say so in one line and pass,
# except under CI=true. The debug interpreter runs the core tests: hot path, threads,
# processes, asyncio, saving; its assertions and refcount checks find what a release
# build hides.
DEBUG_TESTS := test_methods.py test_threads.py test_multiprocess.py test_async.py \
	test_trace_format.py test_robustness.py test_call_sites.py
pytest-3.14d: PYTEST_FILES := $(DEBUG_TESTS)
ifndef VIZTRACER_IN_SID
$(foreach v,$(SID_PYTHONS),$(eval pytest-$(v): ; @PYTEST_ARGS='$(PYTEST_ARGS)' tools/debian-root.sh sid test $(v)))
endif
# --- end of 3.14/3.15 block ---------------------------------------------------------

# --- lint -----------------------------------------------------------------------------
# `make lint` runs the gates alone; `make test` runs them first. Configuration lives in
# rustfmt.toml, clippy.toml and Cargo.toml's [lints] (Rust), pyproject.toml's
# [tool.ruff] and [tool.mypy] (Python). Clippy and stubtest run once per hook path:
# LINT_PYTHONS holds a profile-hook version (<= 3.11) and a sys.monitoring one.
LINT_PIP_PACKAGES := ruff==0.17.5 mypy==2.4.1
LINT_PYTHONS := $(DEMO_PYTHON) 3.13

lint: lint-rust lint-python

lint-rust: $(foreach v,$(LINT_PYTHONS),$(VENV)/$(v)/.ready)
	@echo "== cargo fmt --check"
	@cargo fmt --all -- --check
	@set -e; for v in $(LINT_PYTHONS); do \
		echo "== cargo clippy -D warnings (Python $$v)"; \
		PYO3_PYTHON=$(abspath $(VENV))/$$v/bin/python CARGO_TARGET_DIR=target/clippy$$v \
			cargo clippy -q --all-targets -- -D warnings; \
	done

lint-python: $(foreach v,$(LINT_PYTHONS),build-$(v))
	@set -e; for v in $(LINT_PYTHONS); do \
		$(VENV)/$$v/bin/python -m pip install -q $(LINT_PIP_PACKAGES); done
	@echo "== ruff"
	@$(VENV)/$(DEMO_PYTHON)/bin/ruff check -q viztracer tests benchmarks tools
	@echo "== mypy"
	@$(VENV)/$(DEMO_PYTHON)/bin/mypy
	@set -e; for v in $(LINT_PYTHONS); do \
		echo "== stubtest viztracer._snaptrace (Python $$v)"; \
		(cd tests && $(abspath $(VENV))/$$v/bin/python -m mypy.stubtest viztracer._snaptrace); \
	done
# --- end of lint block ---------------------------------------------------------------

# After an edit of the option table (viztracer/options.py): rewrite the blocks made from
# it (VizTracer's parameters and attributes, _snaptrace.pyi's options, the docs' option
# tables). tests/test_option_table.py fails while one is out of date.
options: $(VENV)/$(DEMO_PYTHON)/.ready
	@$(VENV)/$(DEMO_PYTHON)/bin/python tools/options_gen.py

cargo-test: $(VENV)/$(DEMO_PYTHON)/.ready
	@echo "== cargo test"
	@py=$(abspath $(VENV)/$(DEMO_PYTHON)/bin/python); \
	libdir=$$($$py -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))'); \
	CARGO_TARGET_DIR=target/cargo-test PYO3_PYTHON=$$py LD_LIBRARY_PATH=$$libdir cargo test -q --lib

docs: $(VENV)/docs/.ready
	@echo "== docs (mkdocs --strict)"
	@# (-q would hide the warnings *and* turn --strict's failure into exit status 0)
	@$(VENV)/docs/bin/mkdocs build --strict -d site 2>&1 | grep -v "^INFO" ; exit $${PIPESTATUS[0]}

$(VENV)/docs/.ready:
	@py="$(call python_bin,$(DEMO_PYTHON))"; "$$py" -m venv $(VENV)/docs && \
	$(VENV)/docs/bin/python -m pip install -q "mkdocs>=1.6,<2" && touch $@

# --- distribution: make dist, make dist-test ----------------------------------------
# One manylinux2014 (manylinux_2_17) wheel per supported CPython, linked by zig (the
# ziglang package) against glibc 2.17's symbols, and an sdist, in dist/; then
# tools/check_dist.py checks them (auditwheel, twine, contents, version) and prints their
# sizes. The wheels of SID_PYTHONS are built inside the Debian sid root, with the same
# maturin and zig (static binaries, reached through the mounted checkout).
DIST_DIR := dist
DIST_PYTHONS := $(filter-out %d,$(TEST_PYTHONS))
DIST_PIP_PACKAGES := maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2 twine==7.0.0
DIST_TOOLS := $(abspath $(VENV)/dist/tools)

$(VENV)/dist/.ready: Makefile
	@py="$(call python_bin,$(DEMO_PYTHON))"; echo "== creating $(VENV)/dist (maturin, zig, auditwheel, twine)"; \
	"$$py" -m venv $(VENV)/dist && \
	$(VENV)/dist/bin/python -m pip install -q $(foreach p,$(DIST_PIP_PACKAGES),"$(p)") && \
	mkdir -p $(DIST_TOOLS) && ln -sf $(abspath $(VENV)/dist/bin/maturin) $(DIST_TOOLS)/maturin && \
	ln -sf "$$($(VENV)/dist/bin/python -c 'import ziglang, os; print(os.path.dirname(ziglang.__file__))')/zig" \
		$(DIST_TOOLS)/zig && touch $@

wheel-%: $(VENV)/dist/.ready
	@py="$(call python_bin,$*)"; if [ ! -x "$$py" ]; then py="$$(command -v python$*)"; fi; \
	echo "== wheel for Python $* ($$py)"; \
	PATH=$(DIST_TOOLS):$$PATH CARGO_TARGET_DIR=target/wheel$* maturin build -q --release --strip --zig \
		--compatibility manylinux2014 -i "$$py" --out $(DIST_DIR)
ifndef VIZTRACER_IN_SID
$(foreach v,$(filter-out %d,$(SID_PYTHONS)),$(eval wheel-$(v): $(VENV)/dist/.ready ; @tools/debian-root.sh sid run make wheel-$(v)))
endif

sdist: $(VENV)/dist/.ready
	@echo "== sdist"
	@$(VENV)/dist/bin/maturin sdist --out $(DIST_DIR)

dist: $(VENV)/dist/.ready
	@mkdir -p $(DIST_DIR) && rm -f $(DIST_DIR)/viztracer-*
	@$(MAKE) --no-print-directory $(foreach v,$(DIST_PYTHONS),wheel-$(v)) sdist
	@$(VENV)/dist/bin/python tools/check_dist.py $(DIST_DIR) $(DIST_PYTHONS)

# Each wheel installed into a fresh virtualenv of its own interpreter (3.9-3.13 here,
# SID_PYTHONS in the sid root, 3.9 again in a Debian 11 root), with no compiler, no Rust
# and no checkout reachable, and the sdist built once; tests/installed/ runs a smoke
# suite against each (the browser part in Chromium from here).
dist-test: dist browser-deps build-$(DEMO_PYTHON)
	@echo "== the wheels and the sdist, installed as a user would"
	@cd tests && VIZTRACER_DIST=$(abspath $(DIST_DIR)) \
		VIZTRACER_DIST_PYTHONS="$(foreach v,$(filter-out $(SID_PYTHONS),$(DIST_PYTHONS)),$(v)=$(call python_bin,$(v))) $(foreach v,$(filter $(SID_PYTHONS),$(DIST_PYTHONS)),$(v)=sid)" \
		VIZTRACER_SDIST_PYTHON=$(call python_bin,$(DEMO_PYTHON)) \
		$(abspath $(VENV))/$(DEMO_PYTHON)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) installed
# --- end of distribution block ------------------------------------------------------

test: lint cargo-test browser-deps gdb-deps $(foreach v,$(TEST_PYTHONS),pytest-$(v)) docs dist-test
	@echo "== all tests passed on Python $(TEST_PYTHONS)"

demo: build-$(DEMO_PYTHON)
	@$(VENV)/$(DEMO_PYTHON)/bin/python examples/demo.py

# The versions `make bench` measures against upstream VizTracer 1.1.1: two of this
# machine's, and the release interpreters of the Debian sid root (SID_PYTHONS without
# debug builds), which benchmarks/run.py measures inside the root. BENCH_ARGS goes last,
# so `BENCH_ARGS="--pythons 3.12 --quick"` still picks the versions.
BENCH_PYTHONS ?= 3.11 3.12 $(filter-out %d,$(SID_PYTHONS))
bench: build-$(DEMO_PYTHON)
	@$(VENV)/$(DEMO_PYTHON)/bin/python benchmarks/run.py --pythons $(BENCH_PYTHONS) $(BENCH_ARGS)

# 64 independently started processes of 200,000 events each into one collector, ours
# and upstream's (built from its repository's newest source, in .bench/): the collector's
# peak memory and the time from the last sender's end to the written trace. Minutes, and
# about 12 GB of memory for upstream's collector. COLLECT_BENCH_ARGS: e.g. "--senders 8".
bench-collect: build-$(DEMO_PYTHON)
	@$(VENV)/$(DEMO_PYTHON)/bin/python benchmarks/collect_bench.py --python $(DEMO_PYTHON) $(COLLECT_BENCH_ARGS)

clean:
	rm -rf target $(VENV) site viztracer/*.so $(DIST_DIR)
