#!/usr/bin/env bash
# Install into .venv (torch first, pinned to the local CPU wheel unless a torch is already there), then
#   demo: build the sample datasets, train pix2pix for a few epochs on CPU, test it, print the results page
#   test: run the whole test suite, a worker per core
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PY=.venv/bin/python

install() {
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
  local name="demo_pix2pix_$(date +%Y%m%d_%H%M%S)"
  "$PY" datasets/make_sample_datasets.py --only sample_edges2photo
  local common=(--dataroot datasets/sample_edges2photo --name "$name" --model pix2pix --direction AtoB
                --netG unet_128 --ngf 16 --ndf 16 --crop_size 128 --gpu_ids -1 --seed 0)
  "$PY" train.py "${common[@]}" --load_size 143 --n_epochs 4 --n_epochs_decay 2 --num_threads 0 \
        --print_freq 40 --display_freq 40 --save_epoch_freq 3
  "$PY" test.py "${common[@]}" --load_size 128 --eval
}

case "${1:-}" in
  demo) install; demo ;;
  # one process per core (tests run single-threaded); a file's tests stay together to share its fixtures
  test) install; shift; "$PY" -m pytest -n auto --dist loadfile "$@" ;;
  *) echo "usage: bash scripts/run.sh demo | test [pytest args]" >&2; exit 2 ;;
esac
