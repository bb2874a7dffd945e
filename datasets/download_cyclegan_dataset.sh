#!/usr/bin/env bash
# Download an unaligned (CycleGAN) dataset into ./datasets/NAME (trainA/ trainB/ testA/ testB/).
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(ae_photos apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo
       vangogh2photo maps facades iphone2dslr_flower mini mini_pix2pix mini_colorization)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

if [[ "$NAME" == cityscapes ]]; then
    echo "error: cityscapes cannot be redistributed (licence); register at https://www.cityscapes-dataset.com," \
         "download it there, then pair the images with datasets/combine_A_and_B.py" >&2
    exit 1
fi
require_known dataset

URL="$BASE/cyclegan/datasets/$NAME.zip"
TARGET="./datasets/$NAME"
if [[ -e "$TARGET" ]]; then
    echo "$TARGET already exists; remove it to download again"
    exit 0
fi
command -v unzip >/dev/null || { echo "error: unzip not found; install it (e.g. apt install unzip)" >&2; exit 1; }

mkdir -p ./datasets
WORK="$(mktemp -d "./datasets/.$NAME.download.XXXXXX")"  # same filesystem, so the final mv is atomic
trap 'rm -rf "$WORK"' EXIT

fetch "$URL" "$WORK/$NAME.zip"

unzip -q "$WORK/$NAME.zip" -d "$WORK/x"
rm "$WORK/$NAME.zip"
if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$TARGET"; else mv "$WORK/x" "$TARGET"; fi
echo "saved $TARGET"
