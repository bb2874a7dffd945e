#!/usr/bin/env bash
# What a GPU machine should check, in one call: the gpu-marked tests, then scripts/gpu_bench.sh PARTS.
#   bash scripts/gpu_session.sh OUT [PARTS]
# PARTS defaults to "translation" (the issue's 5x target; ITERS defaults to 100 here) so that one call stays
# within a 10-minute limit; "singan" (its full schedule, the 5-minute target) and "stylegan2" are a call each.
# Python packages the machine lacks can travel as wheels in .whl/ (docs/benchmarks.md: "GPU (pending)").
set -uo pipefail
OUT=$(realpath -m "${1:?usage: bash scripts/gpu_session.sh OUT [PARTS]}")
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
if compgen -G '.whl/*.whl' > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHON=${PYTHON:-python3} PYTHONUNBUFFERED=1 ITERS=${ITERS:-100}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu_tests.log"
# only the files that hold gpu tests: an import problem elsewhere must not stop them
"$PYTHON" -m pytest -m gpu -rs tests/test_gpu_speed.py tests/test_data.py tests/test_networks.py tests/test_clip.py \
    2>&1 | tee -a "$OUT/gpu_tests.log"
bash scripts/gpu_bench.sh "$OUT" "${2:-translation}"
