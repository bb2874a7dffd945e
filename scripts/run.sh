#!/usr/bin/env bash
# Install into .venv (torch first, pinned to the local CPU wheel unless a torch is already there), then
#   demo: build a paired sample dataset (photo -> painting-style filter of the same crop, PNG), train pix2pix
#         on CPU (about 2-3 minutes), test it on held-out crops, write the results page and print a held-out PSNR
#         table: the model against "input unchanged" and "mean training target"; fails under a 2 dB margin
#   demo MODEL: a small run of another model on its sample data (scripts/demo_models.py: a few minutes each)
#   test: run the whole test suite, a worker per core
# PY=/path/to/python uses that interpreter as it is (no install). For a shortened demo (tests/test_demo.py):
# DEMO_ROOT (folder for datasets/, checkpoints/, results/; default .), DEMO_EPOCHS, DEMO_DECAY, DEMO_MAX_IMAGES.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
DEFAULT_PY=.venv/bin/python
PY="${PY:-$DEFAULT_PY}"

install() {
  [ "$PY" = "$DEFAULT_PY" ] || return 0
  [ -x "$PY" ] || python3 -m venv .venv
  # torch first: a requirement resolved without it would pull the newest CUDA build (several GB).
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==$TORCH_VERSION"
  local stamp=.venv/.requirements.sha
  local sum; sum=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    "$PY" -m pip install -q -r requirements.txt
    echo "$sum" > "$stamp"
  fi
}

demo() {
  local root="${DEMO_ROOT:-.}" data name
  data="$root/datasets/sample_photo2painting_aligned"
  name="demo_pix2pix_$(date +%Y%m%d_%H%M%S)"
  # The networks are tiny (0.5 M parameters, 48-64 px): one intra-op thread is about as fast as several on an
  # idle machine and many times faster on a busy one (oversubscribed threads spin). OMP_NUM_THREADS overrides.
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  "$PY" datasets/make_sample_datasets.py --out "$root/datasets" --only sample_photo2painting_aligned --size 64
  local common=(--dataroot "$data" --name "$name" --checkpoints_dir "$root/checkpoints" --model pix2pix
                --direction AtoB --netG resnet_6blocks --ngf 16 --ndf 16 --gpu_ids -1 --seed 0)
  # 400 pairs of 64 px, random 48 px crops; 16 epochs of batch 4 at lr 5e-4 (the last 8 decaying)
  "$PY" train.py "${common[@]}" --load_size 64 --crop_size 48 --batch_size 4 --lr 0.0005 \
        --n_epochs "${DEMO_EPOCHS:-8}" --n_epochs_decay "${DEMO_DECAY:-8}" --max_dataset_size "${DEMO_MAX_IMAGES:-inf}" \
        --num_threads 0 --print_freq 800 --display_freq 800 --save_epoch_freq 100
  "$PY" test.py "${common[@]}" --results_dir "$root/results" --load_size 64 --crop_size 64 --eval
  "$PY" scripts/demo_report.py --results "$root/results/$name/test_latest" --train "$data/train"
}

case "${1:-}" in
  demo)
    install
    if [ $# -gt 1 ]; then  # a small run of another model (scripts/demo_models.py); DEMO_ITERS shortens it
      export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
      "$PY" scripts/demo_models.py "$2"
    else
      demo
    fi ;;
  # one process per core (tests run single-threaded); a file's tests stay together to share its fixtures
  test) install; shift; "$PY" -m pytest -n auto --dist loadfile "$@" ;;
  *) echo "usage: bash scripts/run.sh demo [cycle_gan|colorization|singan|stylegan2|semantic|gansketch|nada]" \
          "| test [pytest args]" >&2; exit 2 ;;
esac
