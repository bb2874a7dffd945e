#!/usr/bin/env bash
# Download an aligned (pix2pix) dataset into ./datasets/NAME (train/ val/ test/ with A|B images).
# GAN_TOOLKIT_BASE_URL overrides the host (see scripts/download_common.sh).
set -euo pipefail

NAMES=(night2day edges2handbags edges2shoes facades maps)
NAME="${1:-}"
source "$(dirname "$0")/../scripts/download_common.sh"

if [[ "$NAME" == cityscapes ]]; then
    echo "error: cityscapes cannot be redistributed (licence); register at https://www.cityscapes-dataset.com," \
         "download it there, then pair the images with datasets/combine_A_and_B.py" >&2
    exit 1
fi
require_known dataset

URL="$BASE/pix2pix/datasets/$NAME.tar.gz"
TARGET="./datasets/$NAME"
if [[ -e "$TARGET" ]]; then
    echo "$TARGET already exists; remove it to download again"
    exit 0
fi

mkdir -p ./datasets
WORK="$(mktemp -d "./datasets/.$NAME.download.XXXXXX")"  # same filesystem, so the final mv is atomic
trap 'rm -rf "$WORK"' EXIT

fetch "$URL" "$WORK/$NAME.tar.gz"

mkdir "$WORK/x"
tar -xzf "$WORK/$NAME.tar.gz" -C "$WORK/x"
rm "$WORK/$NAME.tar.gz"
if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$TARGET"; else mv "$WORK/x" "$TARGET"; fi
echo "saved $TARGET"
