#!/usr/bin/env bash
# Download a released CycleGAN generator to ./checkpoints/NAME_pretrained/latest_net_G.pth.
# Use it with: python test.py --dataroot DIR --name NAME_pretrained --model test --no_dropout
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
set -euo pipefail

NAMES=(apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse
       monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat
       cityscapes_photo2label cityscapes_label2photo facades_photo2label facades_label2photo iphone2dslr_flower)
NAME="${1:-}"
is_known() { local n; for n in "${NAMES[@]}"; do [[ "$n" == "$1" ]] && return 0; done; return 1; }

if ! is_known "$NAME"; then
    echo "usage: bash $0 NAME" >&2
    echo "NAME is one of: ${NAMES[*]}" >&2
    [[ -n "$NAME" ]] && echo "error: unknown model '$NAME'" >&2
    exit 2
fi

BASE="${GAN_TOOLKIT_BASE_URL:-http://efrosgans.eecs.berkeley.edu}"
URL="$BASE/cyclegan/pretrained_models/$NAME.pth"
TARGET="./checkpoints/${NAME}_pretrained/latest_net_G.pth"

mkdir -p ./checkpoints
TMP="$(mktemp "./checkpoints/.$NAME.pth.XXXXXX")"  # same filesystem, so the final mv is atomic
trap 'rm -f "$TMP"' EXIT

echo "downloading $URL"
if command -v curl >/dev/null; then
    curl -fL --retry 2 -o "$TMP" "$URL"
elif command -v wget >/dev/null; then
    wget -q -O "$TMP" "$URL"
else
    echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
fi

mkdir -p "$(dirname "$TARGET")"
mv "$TMP" "$TARGET"
echo "saved $TARGET"
