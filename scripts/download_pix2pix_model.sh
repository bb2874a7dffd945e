#!/usr/bin/env bash
# Download a released pix2pix generator (unet_256, batch norm) to ./checkpoints/NAME_pretrained/latest_net_G.pth.
# Use it with: python test.py --dataroot DIR --name NAME_pretrained --model pix2pix
# (facades_label2photo also needs --direction BtoA).
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(edges2shoes sat2map map2sat facades_label2photo day2night)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

download_model "$BASE/pix2pix/models-pytorch/$NAME.pth"
