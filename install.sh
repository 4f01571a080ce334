#!/usr/bin/env bash
# Set up hal-9000 on Debian/Ubuntu and open a project:   ./install.sh [DIR]
#
# Installs what is missing (Docker engine, python3-venv, debootstrap), installs claudy
# into ~/.local/share/hal9000/venv with a link in ~/.local/bin and bash completion, then runs
# `claudy DIR`, which builds the images (first time only, a few minutes, with progress),
# starts the parent container and lands you in Claude Code for DIR (default: the current
# directory). As root or as a user with sudo; a user it adds to the engine's group goes on
# in this same run (no new login). `claudy uninstall` removes what it made: the manifest
# $VENV/hal9000-install.txt lists it. The engine is DOCKER_HOST's, else the system's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

VENV=${HAL9000_VENV:-$HOME/.local/share/hal9000/venv}
MANIFEST=$VENV/hal9000-install.txt
made=()           # manifest lines: KIND<TAB>PATH[<TAB>TEXT]
made_line() { local IFS=$'\t'; made+=("$*"); }

# as_root with the engine this run uses (sudo drops DOCKER_HOST)
as_root_docker() { as_root env ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} docker "$@"; }

# engine_socket: the path of the engine's unix socket (empty: not a unix socket)
engine_socket() {
    local host=${DOCKER_HOST:-unix:///var/run/docker.sock}
    case $host in unix://*) echo "${host#unix://}" ;; *) echo "" ;; esac
}

# use_engine ARGS: the user may use the engine, in this very run. A user just added to the
# engine's group has it only in new logins: the rest of this run is run again with it
# (`sudo -u $USER` sets a user's groups afresh, as a login does), not ended with "log in
# again". Where the engine does not run, it is started (the system's only).
use_engine() {
    docker info >/dev/null 2>&1 && return 0
    if ! as_root_docker info >/dev/null 2>&1; then
        [ -z "${DOCKER_HOST:-}" ] ||
            die "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer: start it, or unset DOCKER_HOST to use the system's"
        say "starting the Docker engine"
        as_root systemctl start docker >/dev/null 2>&1 || as_root service docker start >/dev/null 2>&1 || {
            # no init system that can (containers, some VMs): run dockerd in the background
            say "no service manager could start docker; starting dockerd (log: /var/log/dockerd.log)"
            as_root sh -c 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'
        }
        for _ in $(seq 1 150); do as_root_docker info >/dev/null 2>&1 && break; sleep 0.2; done
        as_root_docker info >/dev/null 2>&1 ||
            die "the Docker engine does not start: see /var/log/dockerd.log or 'sudo dockerd'"
    fi
    [ "$(id -u)" != 0 ] || return 0
    docker info >/dev/null 2>&1 && return 0
    local sock group user
    sock=$(engine_socket)
    user=$(id -un)
    [ -n "$sock" ] || die "the engine at DOCKER_HOST=$DOCKER_HOST refuses you and is not a unix socket: give yourself access to it"
    [ -e "$sock" ] || as_root test -S "$sock" ||
        die "no Docker engine socket at $sock: start the engine, or set DOCKER_HOST to the one you use"
    group=$(as_root stat -c %G "$sock")  # root's look: a folder on the way may be closed to you
    case $group in
    root | UNKNOWN) die "the engine's socket $sock belongs to group $group: make it a group's of its own (docker), or run ./install.sh as root" ;;
    esac
    [ -z "${HAL9000_INSTALL_REGROUPED:-}" ] ||
        die "in group $group and still refused by the engine at $sock: see 'ls -ld $sock' and its folders (each must let you through)"
    if ! id -nG "$user" | tr ' ' '\n' | grep -qxF "$group"; then
        as_root usermod -aG "$group" "$user"
        say "added you to group $group (the Docker engine's); new logins have it"
    fi
    say "going on with group $group in this run (no new login needed)"
    export HAL9000_INSTALL_REGROUPED="$group"
    # sudo would put its own PATH and SUDO_* (which claudy's hint keys on) in the environment
    exec sudo -E -u "$user" -- env -u SUDO_USER -u SUDO_UID -u SUDO_GID -u SUDO_COMMAND \
        PATH="$PATH" "$ROOT/install.sh" "$@"
}

apt_need docker docker.io
apt_need debootstrap debootstrap # builds the base image where no registry answers
use_engine "$@"
[ -z "${HAL9000_INSTALL_REGROUPED:-}" ] || made_line group "$HAL9000_INSTALL_REGROUPED"

python_venv "$VENV" ""
made_line venv "$VENV"
uv_home=${HAL9000_UV_HOME:-$HOME/.local/share/hal9000/uv}
[ ! -x "$uv_home/bin/uv" ] || made_line uv "$uv_home"

mkdir -p "$HOME/.local/bin"
ln -sf "$VENV/bin/claudy" "$HOME/.local/bin/claudy"
made_line link "$HOME/.local/bin/claudy"
line='export PATH="$HOME/.local/bin:$PATH"  # claudy (hal-9000)'
case ":$PATH:" in
*":$HOME/.local/bin:"*) ;;
*)
    grep -qsF "$line" "$HOME/.profile" || printf '\n%s\n' "$line" >>"$HOME/.profile"
    say "added ~/.local/bin to PATH in ~/.profile (new shells); in this one: export PATH=\"\$HOME/.local/bin:\$PATH\""
    ;;
esac
! grep -qsxF "$line" "$HOME/.profile" || made_line profile "$HOME/.profile" "$line"

# bash completion, where bash-completion looks for it on demand (no ~/.bashrc edit)
completions=${XDG_DATA_HOME:-$HOME/.local/share}/bash-completion/completions
tmp=$(mktemp)
if "$VENV/bin/claudy" completion bash >"$tmp" 2>/dev/null </dev/null && [ -s "$tmp" ]; then
    mkdir -p "$completions"
    mv "$tmp" "$completions/claudy"
    made_line completion "$completions/claudy"
    say "bash completion for claudy: $completions/claudy (new shells)"
else
    rm -f "$tmp"
fi

# the manifest: what this and earlier runs made, once each
{
    [ ! -f "$MANIFEST" ] || grep -v '^#' "$MANIFEST" || true
    printf '%s\n' "${made[@]}"
} | awk '!seen[$0]++' >"$MANIFEST.new"
{
    echo "# made by hal-9000's install.sh; \`claudy uninstall\` removes these (KIND<TAB>PATH[<TAB>TEXT])"
    cat "$MANIFEST.new"
} >"$MANIFEST"
rm -f "$MANIFEST.new"

unset HAL9000_INSTALL_REGROUPED
say "claudy is installed (\`claudy uninstall\` removes it); opening ${1:-$PWD}"
exec "$VENV/bin/claudy" "$@"
