#!/usr/bin/env bash
# Download an aligned (pix2pix) dataset into ./datasets/NAME (train/ val/ test/ with A|B images).
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
set -euo pipefail

NAMES=(night2day edges2handbags edges2shoes facades maps)
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
URL="$BASE/pix2pix/datasets/$NAME.tar.gz"
TARGET="./datasets/$NAME"
if [[ -e "$TARGET" ]]; then
    echo "$TARGET already exists; remove it to download again"
    exit 0
fi

mkdir -p ./datasets
WORK="$(mktemp -d "./datasets/.$NAME.download.XXXXXX")"  # same filesystem, so the final mv is atomic
trap 'rm -rf "$WORK"' EXIT

echo "downloading $URL"
if command -v curl >/dev/null; then
    curl -fL --retry 2 -o "$WORK/$NAME.tar.gz" "$URL"
elif command -v wget >/dev/null; then
    wget -q -O "$WORK/$NAME.tar.gz" "$URL"
else
    echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
fi

mkdir "$WORK/x"
tar -xzf "$WORK/$NAME.tar.gz" -C "$WORK/x"
rm "$WORK/$NAME.tar.gz"
if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$TARGET"; else mv "$WORK/x" "$TARGET"; fi
echo "saved $TARGET"
