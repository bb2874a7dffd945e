#!/usr/bin/env bash
# Download an unaligned (CycleGAN) dataset into ./datasets/NAME (trainA/ trainB/ testA/ testB/).
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
set -euo pipefail

NAMES=(ae_photos apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo
       vangogh2photo maps facades iphone2dslr_flower mini mini_pix2pix mini_colorization)
NAME="${1:-}"
is_known() { local n; for n in "${NAMES[@]}"; do [[ "$n" == "$1" ]] && return 0; done; return 1; }

if [[ "$NAME" == cityscapes ]]; then
    echo "error: cityscapes cannot be redistributed (licence); register at https://www.cityscapes-dataset.com," \
         "download it there, then pair the images with datasets/combine_A_and_B.py" >&2
    exit 1
fi
if ! is_known "$NAME"; then
    echo "usage: bash $0 NAME" >&2
    echo "NAME is one of: ${NAMES[*]}" >&2
    [[ -n "$NAME" ]] && echo "error: unknown dataset '$NAME'" >&2
    exit 2
fi

BASE="${GAN_TOOLKIT_BASE_URL:-http://efrosgans.eecs.berkeley.edu}"
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

echo "downloading $URL"
if command -v curl >/dev/null; then
    curl -fL --retry 2 -o "$WORK/$NAME.zip" "$URL"
elif command -v wget >/dev/null; then
    wget -q -O "$WORK/$NAME.zip" "$URL"
else
    echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
fi

unzip -q "$WORK/$NAME.zip" -d "$WORK/x"
rm "$WORK/$NAME.zip"
if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$TARGET"; else mv "$WORK/x" "$TARGET"; fi
echo "saved $TARGET"
