#!/usr/bin/env bash
# Everything a GPU machine should check, in one call: the gpu-marked tests, then scripts/gpu_bench.sh PARTS
# (default "translation singan": the issue's 5x and 5-minute targets). Run from anywhere:
#   bash scripts/gpu_session.sh OUT [PARTS]
# Python packages the machine lacks can travel as wheels in .whl/ (docs/benchmarks.md: "On a lent GPU").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash scripts/gpu_session.sh OUT [PARTS]}
mkdir -p "$OUT"
if compgen -G '.whl/*.whl' > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHON=${PYTHON:-python3} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_tests.log"
"$PYTHON" -m pytest -m gpu -rs tests 2>&1 | tee -a "$OUT/gpu_tests.log"
bash scripts/gpu_bench.sh "$OUT" "${2:-translation singan}"
