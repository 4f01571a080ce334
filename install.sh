#!/usr/bin/env bash
# Set up hal-9000 on Debian/Ubuntu and open a project:   ./install.sh [DIR]
#
# Installs what is missing (Docker engine, python3-venv, debootstrap), installs claudy
# into ~/.local/share/hal9000/venv with a link in ~/.local/bin, then runs `claudy DIR`,
# which builds the images (first time only, a few minutes, with progress), starts the
# parent container and lands you in Claude Code for DIR (default: the current directory).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

apt_need docker docker.io
apt_need debootstrap debootstrap   # builds the base image where no registry answers
if ! docker info >/dev/null 2>&1; then
    if ! as_root docker info >/dev/null 2>&1; then
        say "starting the Docker engine"
        as_root systemctl start docker >/dev/null 2>&1 || as_root service docker start >/dev/null 2>&1 || {
            # no init system that can (containers, some VMs): run dockerd in the background
            say "no service manager could start docker; starting dockerd (log: /var/log/dockerd.log)"
            as_root sh -c 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'
        }
        for _ in $(seq 1 150); do as_root docker info >/dev/null 2>&1 && break; sleep 0.2; done
        as_root docker info >/dev/null 2>&1 ||
            die "the Docker engine does not start: see /var/log/dockerd.log or 'sudo dockerd'"
    fi
    if [ "$(id -u)" != 0 ] && ! docker info >/dev/null 2>&1; then
        as_root usermod -aG docker "$(id -un)"
        die "added you to the docker group: log out and in (or run 'newgrp docker'), then rerun ./install.sh"
    fi
fi

VENV=${HAL9000_VENV:-$HOME/.local/share/hal9000/venv}
python_venv "$VENV" ""
mkdir -p "$HOME/.local/bin"
ln -sf "$VENV/bin/claudy" "$HOME/.local/bin/claudy"
case ":$PATH:" in
*":$HOME/.local/bin:"*) ;;
*)
    line='export PATH="$HOME/.local/bin:$PATH"  # claudy (hal-9000)'
    grep -qsF "$line" "$HOME/.profile" || printf '\n%s\n' "$line" >>"$HOME/.profile"
    say "added ~/.local/bin to PATH in ~/.profile (new shells); in this one: export PATH=\"\$HOME/.local/bin:\$PATH\""
    ;;
esac
say "claudy is installed; opening ${1:-$PWD}"
exec "$VENV/bin/claudy" "$@"
