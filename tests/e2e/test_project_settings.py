"""End to end: a project's `.hal9000.toml` through the real parent (claudy, Docker-in-Docker,
the real worker image): env and limits reach the worker, `setup` runs once, a bad file is
refused with its line, a widening one waits for `claudy trust`, and a project Dockerfile is
built in the parent once per content.

The profiles' images (python, node, go) are not built here: each takes minutes of apt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from libtmux.test.retry import retry_until

from hal_common import labels
from hal_common.naming import session_name
from hal_testing.engine import GID, UID
from hal_testing.host import HostParent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("proj", worker='memory = "1g"\npids = 512\n')


def write(proj: Path, text: str, name: str = ".hal9000.toml") -> Path:
    path = proj / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, UID, GID)
    return path


def worker_of(env: HostParent, proj: Path) -> dict[str, object] | None:
    session = session_name(str(proj))
    found = [w for w in env.inner_workers() if w["Config"]["Labels"].get(labels.SESSION) == session]
    return found[0] if found else None


def test_env_limits_and_a_setup_that_runs_once(env: HostParent) -> None:
    proj = env.project("settings")
    write(
        proj,
        '[worker]\nmemory = "768m"\npids = 256\nsetup = "echo ran >> setup-ran.txt"\n'
        '[worker.env]\nPROJECT_FLAVOUR = "sour"\n',
    )
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    w = worker_of(env, proj)
    assert w is not None
    host = w["HostConfig"]
    assert isinstance(host, dict)
    assert host["Memory"] == 768 << 20 and host["PidsLimit"] == 256
    inside = env.in_worker(
        proj,
        "sh",
        "-c",
        'echo "$PROJECT_FLAVOUR"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes '
        "2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ).split()
    assert inside == ["sour", str(768 << 20)]
    record = json.loads(w["Config"]["Labels"][labels.PROJECT_CONFIG])  # type: ignore[index]
    assert record["limits"] == {"memory": "768m", "pids": 256} and record["trusted"] is False
    # the setup ran in the project, as the worker's user, before the agent
    ran = proj / "setup-ran.txt"
    assert retry_until(ran.exists, 30, raises=False), env.inner("logs", str(w["Id"]), check=False)
    assert (ran.stat().st_uid, ran.read_text()) == (UID, "ran\n")
    # a restart of the same worker does not run it again
    res = env.claudy("restart", session_name(str(proj)))
    assert res.returncode == 0, res.stderr
    pid = lambda: env.in_worker(proj, "hal-worker", "pid", check=False).strip().isdigit()  # noqa: E731
    assert retry_until(pid, 30, raises=False)
    assert ran.read_text() == "ran\n"


def test_a_bad_file_is_refused_with_its_line(env: HostParent) -> None:
    proj = env.project("bad")
    write(proj, '[worker]\nmemory = "1g"\ncpus = "two"\n[network]\nmode = "open"\n')
    res = env.claudy("-d", str(proj))
    assert res.returncode == 2, res.stderr + res.stdout
    assert f"{proj}/.hal9000.toml:3:8: [worker].cpus must be a number" in res.stderr
    assert f"{proj}/.hal9000.toml:5:1: [network].mode is the user's" in res.stderr
    # the parent refuses it the same way (hal-agent spawn, the prefix-N prompt)
    code, out = env.run(["hal-agent", "spawn", "--no-attach", str(proj)])
    assert code == 2 and ".hal9000.toml:3:8:" in out, out
    assert worker_of(env, proj) is None
    code, out = env.run(["hal-agent", "config", "validate", "--project", str(proj)])
    assert code == 2 and ".hal9000.toml:3:8:" in out, out


def test_a_widening_file_waits_for_trust(env: HostParent) -> None:
    proj = env.project("wide")
    write(proj, '[worker]\nmemory = "1536m"\n')
    res = env.claudy("-d", str(proj))
    assert res.returncode == 2, res.stderr
    assert "review .hal9000.toml" in res.stderr and f"claudy trust {proj}" in res.stderr
    assert ".hal9000.toml:2:10: [worker].memory '1536m' is above yours ('1g')" in res.stderr
    assert worker_of(env, proj) is None
    res = env.claudy("trust", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    assert "trusted" in res.stdout and "above yours" in res.stdout
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr + res.stdout
    w = worker_of(env, proj)
    assert w is not None and w["HostConfig"]["Memory"] == 1536 << 20  # type: ignore[index]


def test_a_project_dockerfile_builds_once_per_content(env: HostParent) -> None:
    dockerfile = "FROM hal9000/worker:minimal\nENV HAL_OWN_IMAGE=yes\nLABEL test.hal9000=1\n"
    made = []
    for name in ("own-a", "own-b"):  # the same content in two projects: one build
        proj = env.project(name)
        write(proj, dockerfile, "docker/Dockerfile")
        write(proj, '[worker]\ndockerfile = "docker/Dockerfile"\n')
        res = env.claudy("-d", str(proj))
        assert res.returncode == 2 and "not trusted" in res.stderr, res.stderr  # it widens
        assert env.claudy("trust", str(proj)).returncode == 0
        res = env.claudy("-d", str(proj))
        assert res.returncode == 0, res.stderr + res.stdout
        w = worker_of(env, proj)
        assert w is not None
        made.append(str(w["Config"]["Image"]))  # type: ignore[index]
        assert env.in_worker(proj, "sh", "-c", 'echo "$HAL_OWN_IMAGE"').strip() == "yes"
    assert made[0] == made[1] and made[0].startswith("hal9000/project:")
    tags = env.inner("images", "hal9000/project", "--format", "{{.Tag}}").split()
    assert tags == [made[0].split(":")[1]]
