#!/usr/bin/env bash
# The GPU table of docs/benchmarks.md: plain (reference-equivalent fp32 eager) against fast path, JSON lines
# per run in OUT. Usage: bash scripts/gpu_bench.sh [OUT]   (default bench_results/<date-time>)
# ITERS (default 200) sets the timed steps of pix2pix/CycleGAN; SinGAN's fast path runs the full default
# schedule (2000 iterations per scale on the 250 px bench photo), its plain path 200 iterations per scale,
# extrapolated to 2000 (an iteration's cost does not depend on the weights).
# Then StyleGAN2 and SemanticStyleGAN, plain against --amp.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-bench_results/$(date +%Y%m%d-%H%M%S)}
ITERS=${ITERS:-200}
mkdir -p "$OUT"
"$PY" -c "import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,
  'gpu': torch.cuda.get_device_name()}))" | tee "$OUT/env.json"
for model in pix2pix cycle_gan; do
    # the nets alone (one batch kept on the GPU), then with the data path (generated images through the loader)
    "$PY" scripts/benchmark.py --model "$model" --compare --size 256 --batch_size 1 --iters "$ITERS" --warmup 20 \
        --device cuda | tee "$OUT/${model}_memory.jsonl"
    "$PY" scripts/benchmark.py --model "$model" --compare --size 256 --batch_size 1 --iters "$ITERS" --warmup 20 \
        --device cuda --data loader | tee "$OUT/${model}_loader.jsonl"
done
"$PY" scripts/benchmark.py --model singan --mode fast --size 250 --iters 2000 --device cuda | tee "$OUT/singan_fast.jsonl"
"$PY" scripts/benchmark.py --model singan --mode plain --size 250 --iters 200 --device cuda | tee "$OUT/singan_plain.jsonl"
# the StyleGAN2 family's --amp at the reference's batch 16 (config-f widths), 256 px; 64 steps = 4 R1 rounds
"$PY" scripts/benchmark.py --model stylegan2 --compare --size 256 --batch_size 16 --iters 64 --warmup 16 \
    --device cuda | tee "$OUT/stylegan2.jsonl"
"$PY" scripts/benchmark.py --model semantic --compare --size 256 --batch_size 16 --iters 32 --warmup 4 \
    --device cuda | tee "$OUT/semantic.jsonl"
