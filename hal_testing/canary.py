"""The canary sweep: where a secret the test planted turns up, in a parent made by claudy.

A test imports a marker (a credential, a token) and asks `sweep` where it is; it then
asserts the hits are exactly the files that must hold it (the parent's private store, an
opted-in worker's copy). Looked at: the parent's inspect data and container log; inside the
parent, every container's inspect data and log, every image's history, every process's
environment and argv (the parent's pid namespace holds the workers'), every file (layers,
volumes, logs) and the tmux screens with their scrollback; on the host, every process's
environment and argv (claudy's execs, the docker CLI).
"""

from __future__ import annotations

import json
from pathlib import Path

from hal_testing.host import IMAGE, HostParent

# Each line of the script's output that starts with HIT names one place. The pattern
# matches the marker but is not it (a bracket), so that the sweep's own argv (sh -c, each
# grep) does not hold the marker it looks for.
SCRIPT = """
set -u
m='{pattern}'
for id in $({docker} ps -aq); do
  {docker} inspect $id | grep -q "$m" && echo "HIT inspect $id"
  {docker} logs $id 2>&1 | grep -q "$m" && echo "HIT logs $id"
done
for img in $({docker} images -q); do
  {docker} history --no-trunc $img | grep -q "$m" && echo "HIT history $img"
done
for p in /proc/[0-9]*; do
  grep -qa "$m" $p/environ 2>/dev/null && echo "HIT env $p $(tr '\\0' ' ' < $p/cmdline)"
  grep -qa "$m" $p/cmdline 2>/dev/null && echo "HIT argv $p"
done
grep -rlsa --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$m" / | sed 's/^/HIT file /'
for w in $(tmux -S {tmux} list-windows -t =hal -F '#I'); do
  tmux -S {tmux} capture-pane -p -S - -t =hal:$w | grep -q "$m" && echo "HIT tmux $w"
done
true
"""


def pattern(marker: str) -> str:
    """A grep pattern for `marker` that is not `marker` itself: its last character in
    brackets (markers are letters, digits and dashes)."""
    return f"{marker[:-1]}[{marker[-1]}]"


def sweep(host: HostParent, marker: str) -> list[str]:
    """Every place `marker` is: "HIT file /path", "HIT env …", "host environ of pid N", …"""
    hits: list[str] = []
    parent = host.parent
    if marker in json.dumps(parent.attrs):
        hits.append("docker inspect of the parent")
    if marker in parent.logs().decode(errors="replace"):
        hits.append("the parent's container log")
    script = SCRIPT.format(
        pattern=pattern(marker),
        docker=f"docker -H {IMAGE.inner_docker_host}",
        tmux=IMAGE.tmux_sock,
    )
    hits.extend(ln for ln in host.sh(script).splitlines() if ln.startswith("HIT"))
    for p in Path("/proc").glob("[0-9]*"):
        for part in ("environ", "cmdline"):
            try:
                if marker.encode() in (p / part).read_bytes():
                    hits.append(f"host {part} of pid {p.name}")
            except OSError:
                pass
    return hits
