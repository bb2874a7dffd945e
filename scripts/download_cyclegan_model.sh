#!/usr/bin/env bash
# Download a released CycleGAN generator to ./checkpoints/NAME_pretrained/latest_net_G.pth.
# Use it with: python test.py --dataroot DIR --name NAME_pretrained --model test --no_dropout
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse
       monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat
       cityscapes_photo2label cityscapes_label2photo facades_photo2label facades_label2photo iphone2dslr_flower)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

download_model "$BASE/cyclegan/pretrained_models/$NAME.pth"
