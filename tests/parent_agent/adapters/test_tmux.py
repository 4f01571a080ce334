"""TmuxUI against a real tmux server (libtmux's fixture: a private socket, killed afterwards)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libtmux
import pytest
from libtmux.exc import LibTmuxException
from libtmux.test.retry import retry_until

from hal_testing.layout import short_dir
from parent_agent.adapters.tmux import AGENT_MARK, TmuxUI, TmuxWatch, server_for
from parent_agent.core.tmux import DASHBOARD

pytestmark = pytest.mark.tmux


def test_ensure_session_builds_the_dashboard_once(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    assert ui.ensure_session() is True
    assert ui.ensure_session() is False
    session = ui.session()
    assert session is not None
    assert [w.window_name for w in session.windows] == [DASHBOARD]
    assert len(session.windows[0].panes) == 2  # live list on top, a shell below


def test_windows_are_matched_exactly(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    assert ui.ensure_window("proj-1234abcd", "sleep 300") is True
    assert ui.ensure_window("proj-1234abcd", "sleep 300") is False
    assert ui.ensure_window("proj-1234abcd-x", "sleep 300") is True
    assert ui.window_names() == {"proj-1234abcd", "proj-1234abcd-x"}
    ui.kill_window("proj-1234abcd")  # must not take the longer name with it
    assert ui.window_names() == {"proj-1234abcd-x"}
    ui.kill_window("proj-1234abcd")  # gone already: nothing happens
    assert ui.window_names() == {"proj-1234abcd-x"}


def test_a_window_runs_its_command(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    ui.ensure_window("echo-00000000", "echo hal-window-marker; sleep 300")
    session = ui.session()
    assert session is not None
    window = session.windows.get(window_name="echo-00000000")
    assert window is not None
    pane = window.panes[0]
    assert retry_until(lambda: "hal-window-marker" in "\n".join(pane.capture_pane()), 5)


def test_kill_server_then_ensure_session_rebuilds(server: libtmux.Server) -> None:
    ui = TmuxUI(server)
    ui.ensure_session()
    ui.kill_server()
    assert not ui.alive()
    assert ui.window_names() == set()
    assert ui.ensure_session() is True


# -- agent marks and bells: the window list and the user's terminal ---------------------------


@pytest.fixture
def hal_server(tmp_path: Path) -> Iterator[libtmux.Server]:
    """The parent's tmux (its own tmux.conf) on a private socket; `server` is then the
    user's terminal: a client of this one runs in a pane there."""
    sock = short_dir(tmp_path / "t", "tmux.sock") / "tmux.sock"
    srv = server_for(sock)
    yield srv
    if srv.is_alive():
        srv.kill()


def _client(outer: libtmux.Server, hal: libtmux.Server) -> libtmux.Pane:
    attach = f"env -u TMUX tmux -S {hal.socket_path} attach -t =hal"
    session = outer.new_session("term", x=120, y=20, window_command=attach)
    assert retry_until(lambda: bool(hal.cmd("list-clients").stdout), 10)
    return session.windows[0].panes[0]


def _mark(hal: libtmux.Server, window: str) -> str:
    out = hal.cmd("show-options", "-wqv", "-t", f"=hal:={window}", AGENT_MARK).stdout
    return out[0] if out else ""


def _status_line(pane: libtmux.Pane) -> str:
    return pane.capture_pane()[-1]


def test_a_waiting_window_is_marked_in_the_window_list(
    server: libtmux.Server, hal_server: libtmux.Server
) -> None:
    ui = TmuxUI(hal_server)
    ui.ensure_window("alpha-1", "sleep 300")
    ui.ensure_window("beta-2", "sleep 300")
    term = _client(server, hal_server)
    calls: list[tuple[str, ...]] = []
    real = hal_server.cmd

    def counted(*args: str, **kw: Any) -> Any:
        calls.append(args)
        return real(*args, **kw)

    hal_server.cmd = counted  # type: ignore[method-assign]
    ui.set_marks({"alpha-1": "waiting", "beta-2": "working", "gone-3": "idle"})
    assert (_mark(hal_server, "alpha-1"), _mark(hal_server, "beta-2")) == ("waiting", "working")
    assert retry_until(lambda: "!alpha-1" in _status_line(term), 5), _status_line(term)
    assert "beta-2" in _status_line(term) and "!beta-2" not in _status_line(term)
    # the same states again: no tmux command at all
    calls.clear()
    ui.set_marks({"alpha-1": "waiting", "beta-2": "working", "gone-3": "idle"})
    assert calls == []
    # one change: one listing, one option set
    ui.set_marks({"alpha-1": "idle", "beta-2": "waiting"})
    sets = [c for c in calls if c[0] == "set-option"]
    assert len(sets) == 2 and _mark(hal_server, "beta-2") == "waiting"
    assert retry_until(lambda: "!beta-2" in _status_line(term), 5), _status_line(term)
    assert "!alpha-1" not in _status_line(term)
    # a session no longer in the states: its mark goes
    ui.set_marks({"beta-2": "waiting"})
    assert _mark(hal_server, "alpha-1") == ""
    # another process closes beta's window and opens it again: once this process lists
    # the windows (the loop does when TmuxWatch tells it), the new window gets its mark
    other = TmuxUI(hal_server)
    other.kill_window("beta-2")
    other.ensure_window("beta-2", "sleep 300")
    assert _mark(hal_server, "beta-2") == ""
    ui.window_names()
    ui.set_marks({"beta-2": "waiting"})
    assert _mark(hal_server, "beta-2") == "waiting"
    # the whole server remade: the marks are set anew
    ui.kill_server()
    ui.ensure_window("beta-2", "sleep 300")
    ui.set_marks({"beta-2": "waiting"})
    assert _mark(hal_server, "beta-2") == "waiting"


def test_a_bell_in_a_worker_window_reaches_the_users_terminal(
    server: libtmux.Server, hal_server: libtmux.Server
) -> None:
    """Claude's bell arrives in a worker's window (its own tmux passes it to the `docker
    exec` client); the parent's tmux passes it on to the terminal of its client: here a pane
    of another server, whose window's bell flag says it rang."""
    ui = TmuxUI(hal_server)
    ring = "read x; printf '\\a'; sleep 300"
    ui.ensure_window("quiet-1", ring)
    ui.ensure_window("loud-2", ring)
    term = _client(server, hal_server)

    def rung() -> list[str]:
        return list(term.window.cmd("display-message", "-p", "#{window_bell_flag}").stdout)

    # the control: with bells off in the parent's tmux, none reaches the terminal
    hal_server.cmd("set-option", "-g", "bell-action", "none")
    hal_server.cmd("send-keys", "-t", "=hal:=quiet-1", "Enter")
    assert retry_until(
        lambda: hal_server.cmd("display-message", "-p", "-t", "=hal:=quiet-1",
                               "#{window_bell_flag}").stdout == ["1"], 5)  # fmt: skip
    time.sleep(0.5)
    assert rung() == ["0"]
    # what ensure_session sets: the bell passes through
    ui.apply_session_options()
    shown = hal_server.cmd("show-options", "-g", "bell-action").stdout
    assert shown == ["bell-action any"]
    hal_server.cmd("send-keys", "-t", "=hal:=loud-2", "Enter")
    assert retry_until(lambda: rung() == ["1"], 5)


# -- what the loop hears of without polling ------------------------------------------------


def test_the_watch_tells_of_clients_windows_and_a_dead_server_and_viewed_follows(
    server: libtmux.Server, hal_server: libtmux.Server
) -> None:
    """TmuxWatch wakes on the hooks ensure_session sets (a client attaching, its window
    changing, a window opening or closing) and on the server's end; nothing between.
    `viewed` says whether a client shows the dashboard window."""
    ui = TmuxUI(hal_server)
    ui.ensure_session()
    woke = threading.Semaphore(0)
    watch = TmuxWatch(Path(str(hal_server.socket_path)), woke.release, retry=0.2)
    watch.start()
    try:

        def drained() -> None:  # the signals of what was done so far, however many
            while woke.acquire(timeout=0.5):
                pass

        assert not ui.viewed()  # nobody attached
        drained()
        term = _client(server, hal_server)
        assert woke.acquire(timeout=10)  # client-attached
        assert ui.viewed()  # a new client sees the session's current window: the dashboard
        ui.ensure_window("alpha-1", "sleep 300")
        drained()
        hal_server.cmd("select-window", "-t", "=hal:=alpha-1")
        assert woke.acquire(timeout=10)  # session-window-changed
        assert not ui.viewed()
        drained()
        assert not woke.acquire(timeout=1.0)  # quiet: no wake-up without a change
        hal_server.cmd("kill-window", "-t", "=hal:=alpha-1")
        assert woke.acquire(timeout=10)  # window-unlinked (and the dashboard shows again)
        assert ui.viewed()
        del term
        drained()
        ui.kill_server()
        assert woke.acquire(timeout=10)  # the server went: the loop remakes it
    finally:
        watch.stop()
    assert not watch.thread.is_alive()


def test_a_window_another_process_opens_is_known_to_the_watching_loop(
    hal_server: libtmux.Server,
) -> None:
    """`hal-agent spawn` opens a worker's window from a process of its own: the loop (which
    lists windows only when TmuxWatch wakes it) must learn of it as a worker's window. The
    window-linked hook fires before the window carries its mark, so ensure_window signals
    once more after marking it."""
    loop_ui, other = TmuxUI(hal_server), TmuxUI(hal_server)
    loop_ui.ensure_session()
    seen: list[set[str]] = []
    watch = TmuxWatch(
        Path(str(hal_server.socket_path)), lambda: seen.append(loop_ui.window_names()), retry=0.2
    )
    watch.start()
    try:
        other.ensure_window("beta-1", "sleep 300")
        assert retry_until(lambda: bool(seen) and "beta-1" in seen[-1], 10, raises=False), seen
    finally:
        watch.stop()


def test_views_are_removed_when_their_terminal_goes_and_the_server_survives(
    server: libtmux.Server, hal_server: libtmux.Server
) -> None:
    """A terminal's view (a session in the group of `hal`, as claudy and `hal-agent attach`
    make them) goes when its client goes, detached or killed, while another client asks the
    server something at that moment. With `destroy-unattached` on the view, tmux 3.3a's
    server died here within a few rounds (segfault at 0x10, tmux#5394/#5497); the
    client-detached hook (core/tmux.py `reap_views_hook`) removes views from a client of its
    own instead."""
    ui = TmuxUI(hal_server)
    ui.ensure_session()
    ui.ensure_window("proj-1234abcd", "sleep 300")
    sock = hal_server.socket_path
    server.new_session("keep", x=100, y=20)  # the user's terminal server outlives each window

    def clients() -> list[str]:
        return [c for c in hal_server.cmd("list-clients", "-F", "#{client_name}").stdout if c]

    for i in range(12):
        view = f"hal-t{i}"
        attach = f"env -u TMUX tmux -S {sock} new-session -t =hal -s {view}"
        term = server.new_session(f"term{i}", x=100, y=20, window_command=attach)
        assert retry_until(lambda: bool(clients()), 10)
        names = clients()
        lister = threading.Thread(
            target=lambda: [hal_server.cmd("list-sessions") for _ in range(5)]
        )
        lister.start()
        if i % 2:
            for name in names:  # the user detaches (prefix d, or `tmux detach-client`)
                hal_server.cmd("detach-client", "-t", name)
        with contextlib.suppress(LibTmuxException):  # a detached client's window closed
            term.kill()  # the terminal goes (its docker exec, its window)
        lister.join()
        assert ui.alive(), f"the parent's tmux died in round {i}"

    def views() -> list[str]:
        out = hal_server.cmd("list-sessions", "-F", "#{session_name}").stdout
        return [s for s in out if s.startswith("hal-")]

    assert retry_until(lambda: views() == [], 10), views()
    assert ui.window_names() == {"proj-1234abcd"}  # the session and its windows stay
