#!/usr/bin/env bash
# Download a released pix2pix generator (unet_256, batch norm) to ./checkpoints/NAME_pretrained/latest_net_G.pth.
# Use it with: python test.py --dataroot DIR --name NAME_pretrained --model pix2pix
# (facades_label2photo also needs --direction BtoA).
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
set -euo pipefail

NAMES=(edges2shoes sat2map map2sat facades_label2photo day2night)
NAME="${1:-}"
is_known() { local n; for n in "${NAMES[@]}"; do [[ "$n" == "$1" ]] && return 0; done; return 1; }

if ! is_known "$NAME"; then
    echo "usage: bash $0 NAME" >&2
    echo "NAME is one of: ${NAMES[*]}" >&2
    [[ -n "$NAME" ]] && echo "error: unknown model '$NAME'" >&2
    exit 2
fi

BASE="${GAN_TOOLKIT_BASE_URL:-http://efrosgans.eecs.berkeley.edu}"
URL="$BASE/pix2pix/models-pytorch/$NAME.pth"
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
