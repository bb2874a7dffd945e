#!/usr/bin/env bash
# The GPU table of docs/benchmarks.md: plain (reference-equivalent fp32 eager) against the fast path, one JSON
# line per run, all in OUT/gpu_bench.jsonl (env first). Usage: bash scripts/gpu_bench.sh [OUT] [PARTS]
# OUT defaults to bench_results/<date-time>; PARTS (default "translation singan stylegan2") picks the rows:
#   translation  pix2pix and CycleGAN, 256 px, batch 1, --compare, ITERS (default 200) timed steps, with the
#                nets alone (--data memory) and through the data loader (--data loader, held-out L1/PSNR)
#   singan       SinGAN's full default schedule on the 250 px bench photo with the fast path (2000 iterations
#                per scale), and the plain path at 200 per scale, extrapolated to 2000 (an iteration's cost
#                does not depend on the weights)
#   stylegan2    StyleGAN2 and SemanticStyleGAN, 256 px, batch 16, plain against --amp
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-bench_results/$(date +%Y%m%d-%H%M%S)}
PARTS=${2:-translation singan stylegan2}
ITERS=${ITERS:-200}
LOG="$OUT/gpu_bench.jsonl"
mkdir -p "$OUT"
bench() {  # a failed run is recorded and the next one still runs: a GPU lease is short
    "$PY" scripts/benchmark.py --device cuda "$@" | tee -a "$LOG" || echo "{\"failed\": \"$*\"}" | tee -a "$LOG"
}
"$PY" -c "import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,
  'gpu': torch.cuda.get_device_name()}))" | tee -a "$LOG"
for part in $PARTS; do
    case $part in
    translation)
        for model in pix2pix cycle_gan; do
            bench --model "$model" --compare --size 256 --batch_size 1 --iters "$ITERS" --warmup 20
            bench --model "$model" --compare --size 256 --batch_size 1 --iters "$ITERS" --warmup 20 --data loader
        done ;;
    singan)
        bench --model singan --mode fast --size 250 --iters 2000
        bench --model singan --mode plain --size 250 --iters 200 ;;
    stylegan2)
        bench --model stylegan2 --compare --size 256 --batch_size 16 --iters 64 --warmup 16
        bench --model semantic --compare --size 256 --batch_size 16 --iters 32 --warmup 4 ;;
    *) echo "unknown part $part (translation, singan, stylegan2)" >&2; exit 2 ;;
    esac
done
