#!/usr/bin/env bash
# Download released weights by name: bash scripts/download_weights.sh NAME [NAME ...]   (--help lists the names)
# scripts/weights.txt holds each name's URL, destination and checksum, and where each came from. Files land where
# the models look by default: ./pretrained, ./weights and ./data (relative to the current folder, as in GAN
# Sketching's own scripts), CLIP files in ~/.cache/clip (or $CLIP_DIR), the default --clip_dir.
# An interrupted download keeps its partial file (hidden, beside the destination) and the next run resumes it; a file
# whose SHA256 differs from the published one is removed. GAN_TOOLKIT_WEIGHTS_MIRROR=URL fetches every file from
# URL/<host>/<path> instead (a mirror, or a local server in tests).
set -euo pipefail

HERE="$(dirname "$0")"
MIRROR_VAR=GAN_TOOLKIT_WEIGHTS_MIRROR
source "$HERE/download_common.sh"

NAMES=() KINDS=() DESTS=() SHAS=() URLS=() PROVIDES=() DESCRIPTIONS=()
while read -r name kind dest sha url provides description; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    NAMES+=("$name") KINDS+=("$kind") DESTS+=("$dest") SHAS+=("$sha") URLS+=("$url") PROVIDES+=("$provides")
    DESCRIPTIONS+=("$description")
done < "$HERE/weights.txt"

# group_members NAME: the names a group stands for (fails for a name that is not a group)
group_members() {
    case "$1" in
        nada) echo "stylegan2-ffhq clip-vit-b-32 clip-vit-b-16 clip-vocab" ;;
        gansketch) echo "gansketch-pretrained gansketch-weights gansketch-sketches" ;;
        semantic) echo "semantic-celebamask-hq semantic-bitmoji semantic-metfaces semantic-toonify" ;;
        *) return 1 ;;
    esac
}

usage() {
    echo "usage: bash $0 NAME [NAME ...]   (GAN_TOOLKIT_WEIGHTS_MIRROR=URL: a mirror; CLIP_DIR=DIR: CLIP's folder)"
    echo "NAME is one of:"
    local i g
    for i in "${!NAMES[@]}"; do
        printf '  %-24s %s -> %s\n' "${NAMES[i]}" "${DESCRIPTIONS[i]}" "$(where "${DESTS[i]}")"
    done
    for g in nada gansketch semantic; do printf '  %-24s all of: %s\n' "$g" "$(group_members "$g")"; done
}

index_of() {
    local i
    for i in "${!NAMES[@]}"; do [[ "${NAMES[i]}" == "$1" ]] && { echo "$i"; return 0; }; done
    return 1
}

# where DEST: the path on this machine (~/.cache/clip is $CLIP_DIR when that is set)
where() {
    local d="$1"
    if [[ -n "${CLIP_DIR:-}" && "$d" == "~/.cache/clip/"* ]]; then d="${CLIP_DIR%/}/${d#"~/.cache/clip/"}"; fi
    echo "${d/#\~/$HOME}"
}

sha256() {
    if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d ' ' -f 1
}

# verify FILE URL SHA256|-: remove FILE and stop with one line when it is a web page (e.g. a Google Drive quota
# notice) or its SHA256 is not the published one
verify() {
    if head -c 512 "$1" | LC_ALL=C grep -aqi -e '<html' -e '<!doctype html'; then
        rm -f "$1"
        echo "error: $2 sent a web page, not the file (a download quota or a moved link); fetch it in a browser" >&2
        exit 1
    fi
    [[ "$3" == - ]] && return 0
    local got
    got="$(sha256 "$1")"
    if [[ "$got" != "$3" ]]; then
        rm -f "$1"
        echo "error: $2 has SHA256 $got, not the published $3; removed it, run again (or check the proxy/mirror)" >&2
        exit 1
    fi
}

get_file() {  # NAME URL DEST SHA256
    if [[ -f "$3" ]]; then echo "$3 already exists; remove it to download again"; return 0; fi
    make_dir "$(dirname "$3")"
    local part
    part="$(dirname "$3")/.$(basename "$3").part"
    REMOVE_IF_EMPTY+=("$part")
    fetch "$2" "$part" resume
    verify "$part" "$2" "$4"
    mv "$part" "$3"
    echo "saved $3"
}

get_zip() {  # NAME URL DEST PROVIDES: the archive unpacked into the folder DEST; files already there are kept
    local items p missing="" part work f
    IFS=, read -ra items <<<"$4"
    for p in "${items[@]}"; do compgen -G "$3/$p" >/dev/null || missing=1; done
    if [[ -z "$missing" ]]; then echo "$3 already holds $1 ($4); remove them to download again"; return 0; fi
    command -v unzip >/dev/null || { echo "error: unzip not found; install it (e.g. apt install unzip)" >&2; exit 1; }
    make_dir "$3"
    part="$3/.$1.zip.part"
    REMOVE_IF_EMPTY+=("$part")
    fetch "$2" "$part" resume
    verify "$part" "$2" -
    work="$(mktemp -d "$3/.$1.unzip.XXXXXX")"  # same filesystem: each file is renamed into place, never half-written
    REMOVE+=("$work")
    if ! unzip -q "$part" -d "$work"; then
        rm -f "$part"
        echo "error: $2 gave a broken zip archive; removed it, run again" >&2
        exit 1
    fi
    (cd "$work" && find . -type f ! -path './__MACOSX/*') | while IFS= read -r f; do
        f="${f#./}"
        [[ -e "$3/$f" ]] && continue
        mkdir -p "$(dirname "$3/$f")"  # inside $3, which holds files from now on
        mv "$work/$f" "$3/$f"
    done
    rm -rf "$work" "$part"
    echo "saved $1 into $3/"
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") usage >&2; exit 2 ;;
esac
TODO=()
for arg in "$@"; do
    if members="$(group_members "$arg")"; then
        read -ra more <<<"$members"
        TODO+=("${more[@]}")
    elif index_of "$arg" >/dev/null; then
        TODO+=("$arg")
    else
        echo "error: unknown weights name '$arg'; bash $0 --help lists the names" >&2
        exit 2
    fi
done
for name in "${TODO[@]}"; do
    i="$(index_of "$name")"
    url="${URLS[i]}"
    [[ -n "${GAN_TOOLKIT_WEIGHTS_MIRROR:-}" ]] && url="${GAN_TOOLKIT_WEIGHTS_MIRROR%/}/${url#*://}"
    case "${KINDS[i]}" in
        zip) get_zip "$name" "$url" "$(where "${DESTS[i]}")" "${PROVIDES[i]}" ;;
        *) get_file "$name" "$url" "$(where "${DESTS[i]}")" "${SHAS[i]}" ;;
    esac
    if [[ "${KINDS[i]}" == tfpkl ]]; then
        echo "note: $(where "${DESTS[i]}") is NVIDIA's TensorFlow pickle: convert it to a .pt with StyleGAN-NADA's" \
             "convert_weight.py (TensorFlow 1.x + NVlabs/stylegan2-ada) before --frozen_gen_ckpt"
    fi
done
