#!/usr/bin/env bash
# Download an unaligned (CycleGAN) dataset into ./datasets/NAME (trainA/ trainB/ testA/ testB/).
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(ae_photos apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo
       vangogh2photo maps facades iphone2dslr_flower mini mini_pix2pix mini_colorization)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

download_dataset "$BASE/cyclegan/datasets/$NAME.zip"
