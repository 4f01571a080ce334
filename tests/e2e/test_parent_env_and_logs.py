"""End to end, on a real parent: the host's HAL9000_* overrides reach it (both sides resolve
the same config, the workers get it); a changed one is "restart needed" until the parent is
made anew; the parent's logs live in its data volume and outlive `claudy down`."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from hal_testing import schemas
from hal_testing.host import HostParent
from hal_testing.schemas import validate

pytestmark = pytest.mark.e2e

OVERRIDES = {"HAL9000_WORKER_PIDS": "900", "HAL9000_DASHBOARD_REFRESH": "0.75"}
CHANGED = {"HAL9000_WORKER_PIDS": "800"}


@pytest.fixture(scope="module")
def env(host_parents: Callable[..., HostParent]) -> HostParent:
    return host_parents("envlogs", env=dict(OVERRIDES))


def _settings(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    validate("config-show", doc)
    settings: dict[str, Any] = doc["settings"]
    return settings


def _status(env: HostParent, pids: str | None = None) -> dict[str, Any]:
    """`claudy status --json`, with HAL9000_WORKER_PIDS=`pids` when given."""
    if pids is None:
        res = env.claudy("status", "--json")
    else:
        res = env.claudy("status", "--json", HAL9000_WORKER_PIDS=pids)
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    validate("claudy-status", doc)
    return doc


def test_the_hosts_overrides_reach_the_parent_and_its_workers(env: HostParent) -> None:
    proj = env.project("one")
    res = env.claudy("-d", str(proj))
    assert res.returncode == 0, res.stderr
    assert "restart needed" not in res.stderr
    host = _settings(env.claudy("config", "show", "--json").stdout)
    inside = _settings(env.sh("hal-agent config show --json"))
    for key in ("worker.pids", "dashboard.refresh"):
        assert inside[key] == host[key], key
    assert inside["worker.pids"] == {"value": 900, "origin": "env", "detail": "HAL9000_WORKER_PIDS"}
    (w,) = env.inner_workers()
    assert w["HostConfig"]["PidsLimit"] == 900  # what the parent made of it
    made = env.parent.attrs["Config"]["Env"]
    assert "HAL9000_WORKER_PIDS=900" in made
    assert not [e for e in made if e.startswith(("HAL9000_OFFLINE", "HAL9000_NPM_REGISTRY"))]
    assert _status(env)["parent"]["restart_needed"] == []


# the arguments of commands whose schema names them without one (a repository the parent
# does not hold answers too: `"exists": false`)
ARGUMENTS = {("repo", "info"): ["app-0123456789abcdef"]}


def test_every_json_output_of_a_real_parent_holds_to_its_schema(env: HostParent) -> None:
    """Each command line every schema names (docs/schemas, `x-commands`), run as a user runs
    it: claudy on the host (forwarded ones through the docker CLI), hal-agent in the parent."""
    assert env.claudy("-d", str(env.project("one"))).returncode == 0
    ran = 0
    for name in schemas.names():
        for line in schemas.commands(name):
            cli, *args = line.split()
            words = tuple(args[:2])
            if words in ARGUMENTS:  # a command with an argument no schema line names
                args = [*words, *ARGUMENTS[words], *args[2:]]
            if cli == "claudy":
                res = env.claudy(*args)
                code, out = res.returncode, res.stdout + res.stderr
            else:
                code, out = env.run([cli, *args])
            assert code == 0, f"{line}: {out}"
            try:
                validate(name, json.loads(out))
            except AssertionError as e:
                raise AssertionError(f"{line}: {e}\n{out}") from None
            ran += 1
    assert ran >= 17


def test_a_changed_override_says_restart_needed(env: HostParent) -> None:
    proj = env.project("one")
    assert _status(env, "800")["parent"]["restart_needed"] == ["HAL9000_WORKER_PIDS"]
    said = "restart needed: HAL9000_WORKER_PIDS changed (claudy down && claudy)"
    res = env.claudy("status", HAL9000_WORKER_PIDS="800")
    assert said in res.stdout, res.stdout
    res = env.claudy("-d", str(proj), HAL9000_WORKER_PIDS="800")
    assert res.returncode == 0 and said in res.stderr, res.stderr
    res = env.claudy("doctor", HAL9000_WORKER_PIDS="800")
    assert said in res.stderr, res.stderr
    # the running parent keeps what it was made with
    assert _settings(env.sh("hal-agent config show --json"))["worker.pids"]["value"] == 900


def _log(env: HostParent, *which: str) -> str:
    res = env.claudy("logs", *which)  # forwarded: `hal-agent logs` in the parent
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_the_logs_are_in_the_data_volume_and_doctor_says_where(env: HostParent) -> None:
    # (dashboard.log too, once `hal-agent dashboard` runs: the loop draws the pane itself)
    assert {"agent.log", "dockerd.log", "egress.jsonl"} <= set(env.sh("ls /data/logs").split())
    assert "hal-agent run: started" in _log(env, "--agent")
    assert "API listen on" in _log(env, "--dockerd")
    assert len(_log(env, "--agent", "--tail", "2").splitlines()) == 2
    res = env.claudy("doctor")
    assert "✓ logs: /data/logs (agent.log, dockerd.log, dashboard.log" in res.stderr, res.stderr


def test_claudy_logs_follows_the_agents_log(env: HostParent) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_shim", "logs", "--agent", "-f", "--tail", "1"],
        env=env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        seen = [lines.get(timeout=60)]  # the tail's line: the follow has begun
        # a config change makes the loop log a line: it arrives through the follow
        assert env.claudy("config", "set", "dashboard.max_rows", "7").returncode == 0
        while "config reloaded" not in seen[-1]:
            try:
                seen.append(lines.get(timeout=60))
            except queue.Empty:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                tail = env.sh("tail -n 5 /data/logs/agent.log")
                pytest.fail(f"followed {seen}; stderr {err!r}; the log ends:\n{tail}")
    finally:
        proc.kill()
        proc.wait(10)


def test_logs_outlive_claudy_down_and_the_new_parent_takes_the_new_overrides(
    env: HostParent,
) -> None:
    agent, dockerd = _log(env, "--agent"), _log(env, "--dockerd")
    starts = agent.count("hal-agent run: started")
    first = env.parent.id
    res = env.claudy("down")  # the container goes, its volumes stay
    assert res.returncode == 0 and "removed" in res.stdout, res.stderr
    res = env.claudy("-d", str(env.project("one")), HAL9000_WORKER_PIDS="800")
    assert res.returncode == 0, res.stderr
    assert "restart needed" not in res.stderr
    assert env.parent.id != first  # a new container ...
    after = _log(env, "--agent")
    assert after.startswith(agent.splitlines()[0])  # ... the same log, older lines first
    assert after.count("hal-agent run: started") == starts + 1
    assert _log(env, "--dockerd").startswith(dockerd.splitlines()[0])
    env.env.update(CHANGED)  # the host's environment from now on
    assert _status(env)["parent"]["restart_needed"] == []
    assert _settings(env.sh("hal-agent config show --json"))["worker.pids"]["value"] == 800
