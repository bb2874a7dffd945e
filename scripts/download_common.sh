# Shared by the download_*.sh scripts (sourced, not run): the name check, the fetch and the atomic install,
# so the four scripts differ only in their names and URLs.
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
BASE="${GAN_TOOLKIT_BASE_URL:-http://efrosgans.eecs.berkeley.edu}"

# require_known KIND: exit 2 with the usage and the valid names unless $NAME is one of ${NAMES[@]}
require_known() {
    local n
    for n in "${NAMES[@]}"; do [[ "$n" == "$NAME" ]] && return 0; done
    echo "usage: bash $0 NAME" >&2
    echo "NAME is one of: ${NAMES[*]}" >&2
    [[ -n "$NAME" ]] && echo "error: unknown $1 '$NAME'" >&2
    exit 2
}

# fetch URL FILE: download with curl or wget. A failure (offline, not found) ends the script with one error
# line (a terminal also sees curl's progress bar and message); the callers' traps remove a partial FILE.
fetch() {
    echo "downloading $1"
    local err=""
    if command -v curl >/dev/null; then
        if [[ -t 2 ]]; then
            curl -fL --retry 2 -# -o "$2" "$1" && return 0
        else
            err="$(curl -fsSL --retry 2 -o "$2" "$1" 2>&1)" && return 0
        fi
    elif command -v wget >/dev/null; then
        err="$(wget -nv -O "$2" "$1" 2>&1)" && return 0
    else
        echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
    fi
    err="$(tail -n 1 <<<"$err")"
    echo "error: cannot download $1${err:+ ($err)}; check the network (GAN_TOOLKIT_BASE_URL sets a mirror)" >&2
    exit 1
}

# download_model URL: a released generator to ./checkpoints/NAME_pretrained/latest_net_G.pth
download_model() {
    require_known model
    local target="./checkpoints/${NAME}_pretrained/latest_net_G.pth"
    mkdir -p ./checkpoints
    TMP="$(mktemp "./checkpoints/.$NAME.pth.XXXXXX")"  # same filesystem, so the final mv is atomic
    trap 'rm -f "$TMP"' EXIT
    fetch "$1" "$TMP"
    mkdir -p "$(dirname "$target")"
    mv "$TMP" "$target"
    echo "saved $target"
}

# download_dataset URL: a .zip or .tar.gz archive unpacked into ./datasets/NAME (kept if it exists)
download_dataset() {
    if [[ "$NAME" == cityscapes ]]; then
        echo "error: cityscapes cannot be redistributed (licence); register at https://www.cityscapes-dataset.com," \
             "download it there, then pair the images with datasets/combine_A_and_B.py" >&2
        exit 1
    fi
    require_known dataset
    local target="./datasets/$NAME" archive
    if [[ -e "$target" ]]; then
        echo "$target already exists; remove it to download again"
        exit 0
    fi
    if [[ "$1" == *.zip ]]; then
        command -v unzip >/dev/null || { echo "error: unzip not found; install it (e.g. apt install unzip)" >&2; exit 1; }
    fi
    mkdir -p ./datasets
    WORK="$(mktemp -d "./datasets/.$NAME.download.XXXXXX")"  # same filesystem, so the final mv is atomic
    trap 'rm -rf "$WORK"' EXIT
    archive="$WORK/${1##*/}"
    fetch "$1" "$archive"
    mkdir "$WORK/x"
    if [[ "$archive" == *.zip ]]; then unzip -q "$archive" -d "$WORK/x"; else tar -xzf "$archive" -C "$WORK/x"; fi
    rm "$archive"
    if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$target"; else mv "$WORK/x" "$target"; fi
    echo "saved $target"
}
