# Shared helpers for the tool installers. Source it; do not run it.
#
# Layout:
#   .tools/bin/<tool>          what the Makefile and tests put on PATH (symlinks)
#   $TOOLS_CACHE/<tool>@<ver>/ built binaries, keyed by pinned version, shared by every
#                              checkout on this machine so a fresh clone relinks in seconds
#   Go module and build caches stay at Go's defaults (GOMODCACHE, GOCACHE), also shared.
# Every function is idempotent: a pinned version that is already built is not rebuilt.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$ROOT/.tools"
TOOLS_BIN="$TOOLS_DIR/bin"
TOOLS_CACHE="${MLP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform-tools}"
# Pinned versions shared with Python (KEY=value lines).
# shellcheck source=scripts/versions.env
source "$ROOT/scripts/versions.env"
# The Prometheus release of its Go module's version: v0.316.0 -> 3.16.0.
_prom="${PROMETHEUS_MODULE_VERSION#v0.}"
PROMETHEUS_VERSION="${_prom:0:1}.$((10#${_prom:1:2})).${_prom#*.}"
unset _prom
# Prometheus's own build tags (plugins/plugin_*.go): every service discovery left out but the
# one the Prometheus Operator's configurations use (kubernetes_sd_configs; file and http SD are
# always in). The cloud SDKs of the others are most of its compile time. promtool gets the same
# tags, so it reuses the server's compiled packages.
PROMETHEUS_BUILD_TAGS="remove_all_sd,enable_kubernetes_sd"
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -mod=mod"
mkdir -p "$TOOLS_BIN" "$TOOLS_CACHE"

log() { printf 'tools: %s\n' "$*" >&2; }

# link_tool NAME PATH: expose PATH as .tools/bin/NAME.
link_tool() {
    ln -sfn "$2" "$TOOLS_BIN/$1"
}

# locked NAME COMMAND...: run COMMAND while holding the lock $TOOLS_CACHE/.lock-NAME. Every
# checkout and every engineer on this machine share the cache: two builds of one pinned thing
# wait for each other instead of deleting each other's half-built directory.
locked() {
    local lock="$TOOLS_CACHE/.lock-$1"
    shift
    (
        flock 9
        "$@"
    ) 9>"$lock"
}

# go_install NAME MODULE/PATH VERSION [LDFLAGS [TAGS]]: `go install MODULE/PATH@VERSION` into the
# cache, with build TAGS (comma-separated) when given; the tags are part of the cache entry's name.
go_install() {
    local name="$1" version="$3" tags="${5:-}"
    local dest="$TOOLS_CACHE/$name@$version${tags:++${tags//,/+}}"
    if [[ ! -x "$dest/$name" ]]; then
        locked "$name@$version${tags:++${tags//,/+}}" _go_install_build "$@"
    fi
    link_tool "$name" "$dest/$name"
}

_go_install_build() {
    local name="$1" pkg="$2" version="$3" ldflags="${4:-}" tags="${5:-}"
    local dest="$TOOLS_CACHE/$name@$version${tags:++${tags//,/+}}"
    [[ ! -x "$dest/$name" ]] || return 0 # built by another process while we waited
    log "building $name $version${tags:+ (tags $tags)} (go install $pkg@$version)"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    GOBIN="$dest.tmp" CGO_ENABLED=0 go install -trimpath ${tags:+-tags "$tags"} \
        ${ldflags:+-ldflags "$ldflags"} "$pkg@$version"
    local built
    built="$(ls "$dest.tmp")"
    [[ "$built" == "$name" ]] || mv "$dest.tmp/$built" "$dest.tmp/$name"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

# go_mod_dir MODULE VERSION [H1_SUM]: download MODULE@VERSION into the module cache, print its
# directory. With H1_SUM (the `h1:` hash go.sum would hold), the download is checked against that
# pinned hash instead of the checksum database: for tagged modules the database does not list.
go_mod_dir() {
    local module="$1" version="$2" want_sum="${3:-}"
    local json
    if [[ -n "$want_sum" ]]; then
        json="$(cd "$TOOLS_CACHE" && GOFLAGS= GONOSUMDB="$module" \
            go mod download -json "$module@$version")" || {
            printf '%s\n' "$json" >&2
            log "error: go mod download $module@$version failed"
            return 1
        }
    else
        json="$(cd "$TOOLS_CACHE" && GOFLAGS= go mod download -json "$module@$version")" || {
            printf '%s\n' "$json" >&2
            log "error: go mod download $module@$version failed"
            return 1
        }
    fi
    WANT_SUM="$want_sum" python3 -c '
import json, os, sys
d = json.loads(sys.stdin.read())
if d.get("Error") or not d.get("Dir"):
    sys.exit("go mod download: %s" % (d.get("Error") or "no Dir"))
want = os.environ["WANT_SUM"]
if want and d.get("Sum") != want:
    sys.exit("go mod download %s@%s: hash %s, pinned %s" % (d["Path"], d["Version"], d.get("Sum"), want))
print(d["Dir"])' <<<"$json"
}

# pip_tool NAME SPEC...: a private venv for a Python CLI (pipx-style), so its pins never meet ours.
pip_tool() {
    local name="$1"
    shift
    local dest
    dest="$TOOLS_CACHE/venv-$name-$(printf '%s ' "$@" | sha256sum | cut -c1-12)"
    if [[ ! -x "$dest/bin/$name" ]]; then
        locked "venv-$name" _pip_venv_build "$dest" "bin/$name" "$name" "$@"
    fi
    link_tool "$name" "$dest/bin/$name"
}

# pip_env NAME SPEC...: a private venv holding Python libraries for the repo's own helper scripts
# (never .venv, which `make tools` must not depend on). Prints the venv's python.
pip_env() {
    local name="$1"
    shift
    local dest
    dest="$TOOLS_CACHE/venv-$name-$(printf '%s ' "$@" | sha256sum | cut -c1-12)"
    if [[ ! -f "$dest/.complete" ]]; then
        locked "venv-$name" _pip_venv_build "$dest" .complete "$name" "$@" >&2
    fi
    printf '%s\n' "$dest/bin/python"
}

# _pip_venv_build DEST MARKER NAME SPEC...: (re)create the venv DEST unless DEST/MARKER exists.
# Venvs are not relocatable, so it is built in place; the marker is written last.
_pip_venv_build() {
    local dest="$1" marker="$2" name="$3"
    shift 3
    [[ ! -e "$dest/$marker" ]] || return 0 # built by another process while we waited
    log "installing $name ($*) into a private venv"
    rm -rf "$dest"
    python3 -m venv "$dest"
    "$dest/bin/pip" install --quiet --disable-pip-version-check "$@"
    touch "$dest/.complete"
}

# apt_install WHO PACKAGE...: apt-get install the Debian PACKAGEs that are not installed yet
# (as root, or through sudo), waiting for another apt's lock; WHO prefixes the messages. Our
# installers share one lock (`make test` runs them in parallel), another apt's is waited for.
apt_install() {
    locked apt _apt_install "$@"
}

_apt_install() {
    local who="$1" package
    shift
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$package")
    done
    ((${#missing[@]} > 0)) || return 0
    if ! command -v apt-get >/dev/null; then
        echo "$who: ${missing[*]} missing and no apt-get here; install them by hand" >&2
        return 1
    fi
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || {
            echo "$who: need root or sudo to apt-get install ${missing[*]}" >&2
            return 1
        }
        sudo=(sudo)
    fi
    echo "$who: apt-get install ${missing[*]}" >&2
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
        install -y --no-install-recommends)
    "${apt[@]}" "${missing[@]}" >/dev/null ||
        { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq &&
            "${apt[@]}" "${missing[@]}" >/dev/null; }
}
