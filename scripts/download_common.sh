# Shared by the download_*.sh scripts (sourced, not run): the name check, the fetch and the atomic install,
# so the four scripts differ only in their names and URLs.
# GAN_TOOLKIT_BASE_URL overrides the host (a mirror, or a local server in tests).
BASE="${GAN_TOOLKIT_BASE_URL:-http://efrosgans.eecs.berkeley.edu}"
MIRROR_VAR="${MIRROR_VAR:-GAN_TOOLKIT_BASE_URL}"  # named in the offline error

# What a failed or finished run must not leave behind: REMOVE (temp files and folders), REMOVE_IF_EMPTY (a partial
# download with nothing in it) and the folders make_dir created that stayed empty.
REMOVE=() REMOVE_IF_EMPTY=() NEW_DIRS=()
clean_up() {
    local f
    for f in ${REMOVE[@]+"${REMOVE[@]}"}; do rm -rf "$f"; done
    for f in ${REMOVE_IF_EMPTY[@]+"${REMOVE_IF_EMPTY[@]}"}; do [[ -s "$f" ]] || rm -f "$f"; done
    for f in ${NEW_DIRS[@]+"${NEW_DIRS[@]}"}; do [[ -d "$f" ]] && find "$f" -depth -type d -empty -delete; done
    return 0
}
trap clean_up EXIT

# make_dir DIR: mkdir -p, remembering the first folder it creates
make_dir() {
    local top="$1"
    [[ -d "$top" ]] && return 0
    while [[ ! -d "$(dirname "$top")" ]]; do top="$(dirname "$top")"; done
    mkdir -p "$1"
    NEW_DIRS+=("$top")
}

# require_known KIND: exit 2 with the usage and the valid names unless $NAME is one of ${NAMES[@]}
require_known() {
    local n
    for n in "${NAMES[@]}"; do [[ "$n" == "$NAME" ]] && return 0; done
    echo "usage: bash $0 NAME" >&2
    echo "NAME is one of: ${NAMES[*]}" >&2
    [[ -n "$NAME" ]] && echo "error: unknown $1 '$NAME'" >&2
    exit 2
}

# fail URL MESSAGE: the one line that says a download failed, and the exit
fail() {
    echo "error: cannot download $1${2:+ ($2)}; check the network ($MIRROR_VAR sets a mirror)" >&2
    exit 1
}

# fetch URL FILE [resume]: download with curl or wget; "resume" continues a partial FILE. A failure (offline, not
# found) ends the script with one error line; the callers remove or keep a partial FILE.
fetch() {
    echo "downloading $1"
    local err="" cont=""
    [[ -n "${3:-}" ]] && cont=1
    if command -v curl >/dev/null; then
        if [[ -t 2 ]]; then
            # in a terminal curl's messages would interleave with its progress bar: a quiet request to the host
            # first, so that being offline is one line
            local host="${1#*://}"
            err="$(curl -sS -o /dev/null -I --connect-timeout 20 --max-time 60 "${1%%://*}://${host%%/*}/" 2>&1)" \
                || fail "$1" "$err"
            curl -fL -# ${cont:+-C -} -o "$2" "$1" && return 0
        else
            err="$(curl -fsSL --connect-timeout 20 ${cont:+-C -} -o "$2" "$1" 2>&1)" && return 0
        fi
        # 33: the server cannot resume, so start again from nothing
        if [[ $? == 33 && -n "$cont" ]]; then rm -f "$2"; fetch "$1" "$2"; return 0; fi
    elif command -v wget >/dev/null; then
        err="$(wget -nv ${cont:+-c} -O "$2" "$1" 2>&1)" && return 0
    else
        echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
    fi
    fail "$1" "$(tail -n 1 <<<"$err")"
}

# download_model URL: a released generator to ./checkpoints/NAME_pretrained/latest_net_G.pth
download_model() {
    require_known model
    local target="./checkpoints/${NAME}_pretrained/latest_net_G.pth"
    make_dir ./checkpoints
    TMP="$(mktemp "./checkpoints/.$NAME.pth.XXXXXX")"  # same filesystem, so the final mv is atomic
    REMOVE+=("$TMP")
    fetch "$1" "$TMP"
    make_dir "$(dirname "$target")"
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
    make_dir ./datasets
    WORK="$(mktemp -d "./datasets/.$NAME.download.XXXXXX")"  # same filesystem, so the final mv is atomic
    REMOVE+=("$WORK")
    archive="$WORK/${1##*/}"
    fetch "$1" "$archive"
    mkdir "$WORK/x"
    if [[ "$archive" == *.zip ]]; then unzip -q "$archive" -d "$WORK/x"; else tar -xzf "$archive" -C "$WORK/x"; fi
    rm "$archive"
    if [[ -d "$WORK/x/$NAME" ]]; then mv "$WORK/x/$NAME" "$target"; else mv "$WORK/x" "$target"; fi
    echo "saved $target"
}
