# Shared by install.sh, scripts/test and .ci/run: system packages and a private dockerd.
# shellcheck shell=bash

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root for: $* (run as root, or install sudo)"; fi
}

# apt_need CMD PACKAGE...: install PACKAGE(s) when CMD is missing (Debian/Ubuntu).
apt_updated=""
apt_need() {
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [ ! -x "/usr/sbin/$cmd" ] || return 0 # a user's PATH on Debian lacks the sbin directories
    command -v apt-get >/dev/null || die "$cmd is missing and this is not Debian/Ubuntu: install $*"
    if [ -z "$apt_updated" ]; then say "apt-get update"; as_root apt-get update -qq; apt_updated=1; fi
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The Python the project needs (pyproject.toml's requires-python; a test holds them equal).
NEED_PYTHON=3.11
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

# python_venv DIR EXTRAS: a venv with this project installed (editable). The compat mode puts
# the checkout on sys.path with a plain .pth line: setuptools' default editable finder costs
# every start-up 10 ms of imports (half of `python -c pass`), which claudy's reattach pays.
# Where the system's python3 is older than NEED_PYTHON (Ubuntu 22.04 has 3.10), or with
# HAL9000_FORCE_UV=1, uv makes the venv: it finds a suitable Python or downloads one it
# manages (python-build-standalone, into ~/.local/share/uv/python).
python_venv() {
    local dir=$1 extras=${2:-}
    command -v python3 >/dev/null 2>&1 || apt_need python3 python3 python3-venv
    if [ -n "${HAL9000_FORCE_UV:-}" ] || ! new_enough python3; then
        uv_venv "$dir" "$extras"
        return
    fi
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_need __none__ python3-venv; fi
    [ -x "$dir/bin/python" ] && new_enough "$dir/bin/python" || python3 -m venv --clear "$dir"
    say "installing hal-9000${extras:+ [$extras]} into $dir"
    "$dir/bin/pip" install -q --disable-pip-version-check \
        --config-settings editable_mode=compat -e "$ROOT${extras:+[$extras]}" ||
        "$dir/bin/pip" install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
}

# uv_venv DIR EXTRAS: python_venv's way with uv, for a system Python that is too old.
UV_BIN=""  # the uv that uv_venv runs
uv_venv() {
    local dir=$1 extras=${2:-}
    find_uv
    export UV_NATIVE_TLS=1  # the system's CA store (a company's TLS proxy), as pip has it
    if ! { [ -x "$dir/bin/python" ] && new_enough "$dir/bin/python"; }; then
        say "python3 is $(python3 -c 'import platform; print(platform.python_version())'); uv makes $dir with Python $NEED_PYTHON (downloaded once if none is here)"
        "$UV_BIN" venv -q --clear --seed --python "$NEED_PYTHON" "$dir" ||
            die "uv could not make a Python $NEED_PYTHON venv (offline? see above)"
    fi
    say "installing hal-9000${extras:+ [$extras]} into $dir (uv)"
    "$UV_BIN" pip install -q --python "$dir/bin/python" \
        --config-setting editable_mode=compat -e "$ROOT${extras:+[$extras]}"
}

# find_uv: UV_BIN is uv on PATH, else one installed from PyPI into a venv of its own (once;
# install.sh's manifest lists it, for `claudy uninstall`).
find_uv() {
    local home=${HAL9000_UV_HOME:-$HOME/.local/share/hal9000/uv}
    if UV_BIN=$(command -v uv); then return 0; fi
    if [ ! -x "$home/bin/uv" ]; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_need __none__ python3-venv
        say "installing uv (from PyPI) into $home"
        { python3 -m venv "$home" && "$home/bin/pip" install -q --disable-pip-version-check uv; } >&2 ||
            die "could not install uv from PyPI into $home"
    fi
    UV_BIN=$home/bin/uv
}

# start_private_dockerd RUNDIR DATAROOT: a dockerd of our own; prints its DOCKER_HOST.
start_private_dockerd() {
    local run=$1 data=$2
    mkdir -p "$run" "$data"
    dockerd --host "unix://$run/d.sock" --data-root "$data" --exec-root "$run/exec" \
        --pidfile "$run/pid" >"$run/dockerd.log" 2>&1 &
    local i
    for i in $(seq 1 300); do
        if docker -H "unix://$run/d.sock" version >/dev/null 2>&1; then
            echo "unix://$run/d.sock"; return 0
        fi
        kill -0 "$(cat "$run/pid" 2>/dev/null || echo $!)" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$run/dockerd.log" >&2
    die "private dockerd did not start (log above)"
}

stop_private_dockerd() { # stop_private_dockerd RUNDIR [DATAROOT]: stop it, unmount what it left
    local pid dir
    if pid=$(cat "$1/pid" 2>/dev/null) && kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    for dir in "$@"; do
        awk -v d="$dir" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
    done
}

# fetch_claude_code VENV: the real Claude Code the tests and the benchmark mount into their
# workers, into the host cache (~/.cache/hal9000/claude, $XDG_CACHE_HOME) once: the tested
# version and a newer one (for "outdated"), ≈ 180 MB each from npm, checked against npm's
# integrity. A set-up step, like apt-get: the tests themselves never download.
fetch_claude_code() {
    local venv=$1 v
    for v in $("$venv/bin/python" -c 'from hal_common.claude_code import DEFAULT_VERSION as d; from hal_testing.claude import SECOND_VERSION as s; print(d, s)'); do
        "$venv/bin/python" -m host_shim claude fetch "$v" >/dev/null ||
            die "could not fetch Claude Code $v into the host cache (npm reachable?)"
    done
}
