#!/usr/bin/env bash
# The GPU figures of issue 30 in one run (under 5 minutes on an H100/H200), for the device
# tool: carry `.whl` (open-clip-torch, ftfy, wcwidth, faiss-cpu and what `pip show` says is
# missing there: pydantic-settings, safetensors, huggingface-hub, timm, ...), as
# /work/.library/device/README.md says. Everything lands in $OUT (or ./gpu-check).
set -u
out="${OUT:-gpu-check}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:.
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-.}"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
nproc | tee -a "$out/gpu.txt"
# CUDA tests: GPU decode against the CPU path, device search against FAISS.
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_input_pipeline.py \
  tests/test_device_search.py tests/test_cuda.py 2>&1 | tail -15 | tee "$out/tests.txt"
workers=$(nproc)
timeout 150 python3 bench/encode.py --device cuda --model ViT-B-32 -n 2048 --batch-size 256 \
  --workers "$workers" 2>"$out/encode_b32.err" | tee "$out/encode_b32.json"
timeout 120 python3 bench/encode.py --device cuda --model ViT-L-14 -n 1024 --batch-size 128 \
  --workers "$workers" 2>"$out/encode_l14.err" | tee "$out/encode_l14.json"
timeout 90 python3 bench/gpu_search.py -n 10000000 --dim 512 2>"$out/search.err" \
  | tee "$out/search.json"
