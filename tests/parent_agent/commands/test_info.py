"""hal-agent's other commands (stats, keys, version, doctor) and its prefix keys, pressed in a
real tmux client (send-keys into a pane that runs one).

`hal-agent` runs as a subprocess, as a user types it, its paths pointed (HAL_* variables) at a
temporary ParentLayout: the test engine for the inner one, a private tmux server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import libtmux
import pytest
from libtmux.test.retry import retry_until

from hal_common.naming import session_name
from hal_testing.agent import AgentCommands
from hal_testing.engine import UID
from hal_testing.schemas import validate

pytestmark = [pytest.mark.docker, pytest.mark.tmux]


def test_logs_and_stats(hal_agent: AgentCommands) -> None:
    proj = hal_agent.project("epsilon")
    name = hal_agent.ok("spawn", str(proj), "--no-attach").strip()
    assert hal_agent.run("logs", name, "--tail", "5").returncode == 0
    assert hal_agent.run("logs", name, "--tail", "x").returncode == 2
    data = json.loads(hal_agent.ok("stats", "--json", "--interval", "0.2"))
    validate("stats", data)
    u = data[name]
    assert set(u) == {
        "cpu_pct",
        "mem_used",
        "mem_limit",
        "pids",
        "net_rx",
        "net_tx",
        "blk_read",
        "blk_write",
    }
    assert u["mem_limit"] == 512 << 20 and 0 < u["mem_used"] < u["mem_limit"]
    assert u["pids"] >= 2 and u["cpu_pct"] is not None
    table = hal_agent.ok("stats", "--no-stream", "--interval", "0.2")
    assert name in table and "mem used/limit" in table


def test_keys_version_and_doctor(hal_agent: AgentCommands) -> None:
    data = json.loads(hal_agent.ok("keys", "--json"))
    validate("keys", data)
    assert data["prefix"] == "C-b"
    assert {b["action"] for b in data["bindings"]} >= {"stop", "restart", "shell", "choose"}
    bound = "\n".join(hal_agent.tmux("list-keys", "-T", "prefix"))
    for b in data["bindings"]:
        assert f" {b['key']} " in bound, b
    assert "hal-9000" in hal_agent.ok("version")
    res = hal_agent.run("doctor")
    assert "✓ inner engine" in res.stdout and "✓ tmux" in res.stdout


@pytest.fixture
def client(hal_agent: AgentCommands, server: libtmux.Server) -> Iterator[libtmux.Pane]:
    """A pane of another tmux server running a client attached to the hal session."""
    hal_agent.view = f"kc{uuid.uuid4().hex[:6]}"
    attach = f"env -u TMUX tmux -S {hal_agent.sock} new-session -t =hal -s {hal_agent.view}"
    session = server.new_session("keys", x=100, y=30, window_command=attach)
    pane = session.windows[0].panes[0]
    assert retry_until(lambda: bool(hal_agent.tmux("list-clients")), 10)
    yield pane


def _client_window(hal_agent: AgentCommands) -> str:
    out = hal_agent.tmux("list-clients", "-F", "#{window_name}")
    return out[0] if out else ""


def _press(pane: libtmux.Pane, key: str) -> None:
    pane.send_keys("C-b", enter=False, suppress_history=False)
    pane.send_keys(key, enter=False, suppress_history=False)


def _screen(pane: libtmux.Pane) -> str:
    return "\n".join(pane.capture_pane())


def _stats_row(pane: libtmux.Pane, name: str) -> bool:
    """The stats table shows `name`'s row: its name and its memory used/limit."""
    return any(name in line and "iB/" in line for line in pane.capture_pane())


def test_keys_choose_shell_dashboard_stop_restart(
    hal_agent: AgentCommands, client: libtmux.Pane
) -> None:
    proj = hal_agent.project("keys")
    name = hal_agent.ok("spawn", str(proj), "--no-attach").strip()
    # choose: a menu of workers; its entry is picked with its digit, once the menu is drawn
    # (its entries, not the word "workers": the dashboard behind it says "no workers yet"
    # while no loop publishes, and a digit sent before the menu goes to the shell pane)
    _press(client, "W")
    assert retry_until(lambda: f"{name}  (running)" in _screen(client), 10), _screen(client)
    names = sorted(w for w in hal_agent.windows())
    client.send_keys(str(names.index(name) + 1), enter=False)
    assert retry_until(lambda: _client_window(hal_agent) == name, 10)
    # dashboard
    _press(client, "D")
    assert retry_until(lambda: _client_window(hal_agent) == "dashboard", 5)
    hal_agent.tmux("select-window", "-t", f"={hal_agent.view}:={name}")
    # shell: a new window with a shell inside the worker
    _press(client, "S")
    assert retry_until(lambda: _client_window(hal_agent) == f"{name}/sh", 10)
    client.send_keys("id -u", enter=True)
    assert retry_until(lambda: str(UID) in _screen(client), 10), _screen(client)
    client.send_keys("exit", enter=True)
    assert retry_until(lambda: _client_window(hal_agent) != f"{name}/sh", 10)
    hal_agent.tmux("select-window", "-t", f"={hal_agent.view}:={name}")
    # restart: a new hal_agent process
    assert retry_until(lambda: hal_agent.agent_pid(name) != "", 10)
    before = hal_agent.agent_pid(name)
    _press(client, "R")
    assert retry_until(lambda: hal_agent.agent_pid(name) not in ("", before), 15)
    assert retry_until(lambda: name in hal_agent.windows(), 10)
    hal_agent.tmux("select-window", "-t", f"={hal_agent.view}:={name}")
    # stop: asks first; 'n' keeps it, 'y' stops it
    _press(client, "X")
    assert retry_until(lambda: f"stop worker {name}?" in _screen(client), 10), _screen(client)
    client.send_keys("n", enter=False)
    assert hal_agent.state(name) == "running"
    _press(client, "X")
    assert retry_until(lambda: f"stop worker {name}?" in _screen(client), 10)
    client.send_keys("y", enter=False)
    assert retry_until(lambda: hal_agent.state(name) == "exited", 20)
    assert retry_until(lambda: name not in hal_agent.windows(), 10)


def test_keys_new_session_and_stats_popup(hal_agent: AgentCommands, client: libtmux.Pane) -> None:
    proj = hal_agent.project("fresh")
    _press(client, "N")
    assert retry_until(lambda: "another directory" in _screen(client), 10), _screen(client)
    client.send_keys("o", enter=False)
    assert retry_until(lambda: "project directory" in _screen(client), 10)
    client.send_keys(str(proj), enter=True)
    name = session_name(str(proj))
    assert retry_until(lambda: _client_window(hal_agent) == name, 20), _screen(client)
    assert hal_agent.state(name) == "running"
    _press(client, "T")
    assert retry_until(lambda: "worker stats" in _screen(client), 10), _screen(client)
    # the table's row of the worker, drawn by `hal-agent stats` in the popup (the name alone is
    # in the window list from the start, and a ctrl-c sent before the command runs is lost)
    assert retry_until(lambda: _stats_row(client, name), 10), _screen(client)
    client.send_keys("C-c", enter=False)
    closed = retry_until(lambda: "worker stats" not in _screen(client), 10, raises=False)
    assert closed, _screen(client)
