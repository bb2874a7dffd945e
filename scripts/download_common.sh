# Shared by the download_*.sh scripts (sourced, not run): the name check and the fetch.
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

# fetch URL FILE: download with curl or wget (no partial FILE is left on failure by the callers' traps)
fetch() {
    echo "downloading $1"
    if command -v curl >/dev/null; then
        curl -fL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null; then
        wget -q -O "$2" "$1"
    else
        echo "error: neither curl nor wget is installed; install one of them" >&2; exit 1
    fi
}
