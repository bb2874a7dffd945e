#!/usr/bin/env bash
# Download an aligned (pix2pix) dataset into ./datasets/NAME (train/ val/ test/ with A|B images).
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(night2day edges2handbags edges2shoes facades maps)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

download_dataset "$BASE/pix2pix/datasets/$NAME.tar.gz"
