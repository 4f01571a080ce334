"""The quick entry's hint file, its raw engine questions, its imports, its in-parent script."""

from __future__ import annotations

import json
import os
import socket as socketlib
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from host_shim.adapters.fast_hint import hint_path, load_hint, save_hint, stamps, tree
from host_shim.core.hint import FALLBACK, Hint


def _hint(env: dict[str, str], files: list[str], resolved: list[str], **kw: object) -> Hint:
    fields: dict[str, object] = {
        "env": {k: v for k, v in env.items() if k in ("HOME", "HAL9000_X")},
        "stamps": stamps(files),
        "resolved": tuple((p, os.path.realpath(p)) for p in resolved),
        "projects": {"/p/one": "one-1"},
        "parent": "hal9000-parent",
        "parent_id": "ab" * 32,
        "parent_image": "hal9000/parent:0.1.0",
        "parent_image_id": "sha256:" + "cd" * 32,
        "worker_image": "hal9000/worker:minimal",
        "worker_image_id": "sha256:" + "ef" * 32,
        "argv": ("exec",),
    }
    fields.update(kw)
    return Hint(**fields)  # type: ignore[arg-type]


def test_a_hint_holds_while_what_it_came_from_holds(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "HAL9000_X": "1", "PATH": "/bin"}
    cfg = tmp_path / "config.toml"
    cfg.write_text("[parent]\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "roots").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "roots")
    files = [str(cfg), *tree(str(tmp_path / "src"))]
    assert len(files) == 3  # the config, the directory, its file
    save_hint(env, _hint(env, files, [str(tmp_path / "link")]))
    assert Path(hint_path(env)).stat().st_mode & 0o777 == 0o600
    h = load_hint(env)
    assert h is not None and h.projects == {"/p/one": "one-1"}
    # PATH is not what the hint depends on; HAL9000_* is (another environment, another hint)
    assert load_hint({**env, "PATH": "/usr/bin"}) is not None
    assert load_hint({**env, "HAL9000_X": "2"}) is None

    # a second project decided under the same inputs joins the first
    save_hint(env, _hint(env, files, [str(tmp_path / "link")], projects={"/p/two": "two-2"}))
    h = load_hint(env)
    assert h is not None and h.projects == {"/p/one": "one-1", "/p/two": "two-2"}

    cfg.write_text("[parent]\n# edited\n")  # the config changed
    assert load_hint(env) is None
    save_hint(env, _hint(env, [str(cfg), *tree(str(tmp_path / "src"))], [str(tmp_path / "link")]))
    assert load_hint(env) is not None
    (tmp_path / "src" / "b.py").write_text("")  # a source file added
    assert load_hint(env) is None
    save_hint(env, _hint(env, [str(cfg), *tree(str(tmp_path / "src"))], [str(tmp_path / "link")]))
    assert load_hint(env) is not None
    (tmp_path / "elsewhere").mkdir()  # a root's link retargeted: the policy would resolve anew
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert load_hint(env) is None
    Path(hint_path(env)).write_bytes(b"garbage")
    assert load_hint(env) is None


def test_the_quick_entry_imports_no_third_party_module(tmp_path: Path) -> None:
    """Up to the engine's questions (none answers here), in a process of its own."""
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "DOCKER_HOST": "unix:///nonexistent"}
    proj = tmp_path / "p"
    proj.mkdir()
    save_hint(env, _hint(env, [], [], projects={str(proj): "p-1"}))
    code = (
        "import os, sys\n"
        "os.isatty = lambda fd: True\n"
        "from host_shim.commands.quick import quick_argv\n"
        f"assert quick_argv([{str(proj)!r}], os.environ, 1) is None\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded = set(res.stdout.split())
    assert "host_shim.adapters.fast_hint" in loaded
    tops = {m.split(".")[0] for m in loaded}
    assert not tops & {"click", "rich", "docker", "requests", "tomlkit", "libtmux", "urllib3"}
    assert not {"hal_common.config", "host_shim.commands.cli", "json"} & loaded
    assert {m for m in loaded if m.startswith("hal_io")} == {"hal_io", "hal_io.exec_tty"}


@pytest.mark.docker
def test_the_engine_is_asked_over_its_socket(docker_host: str) -> None:
    from host_shim.adapters.quick_exec import engine_get

    assert docker_host.startswith("unix://")
    sock = docker_host[len("unix://") :]
    assert engine_get(sock, "/_ping") == b"OK"
    assert engine_get(sock, "/containers/hal9000-no-such-container/json") is None
    assert engine_get("/nonexistent.sock", "/_ping") is None


@pytest.mark.tmux
def test_the_attach_script_checks_before_it_attaches(tmp_path: Path) -> None:
    """A real tmux server laid out as the parent's: a missing ready file or window, or a
    dead pane, exits FALLBACK; else the script gets as far as attaching (no terminal here)."""
    from hal_common.layout import ParentLayout
    from host_shim.core.fastpath import quick_attach_head

    layout = ParentLayout(run_dir=tmp_path)
    sock = str(layout.tmux_sock)
    tmux = ["tmux", "-S", sock]
    subprocess.run([*tmux, "new-session", "-d", "-s", "hal", "-n", "dashboard"], check=True)
    try:
        subprocess.run([*tmux, "new-window", "-d", "-t", "=hal:", "-n", "p-1"], check=True)
        subprocess.run([*tmux, "set-option", "-w", "-t", "=hal:=p-1", "@hal-session", "p-1"])
        head = quick_attach_head("parent", layout)
        script = head[head.index("-c") + 1 :]

        def run(session: str) -> int:
            argv = ["sh", "-c", *script, "xterm", session, "hal-h1"]
            return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL).returncode

        assert run("p-1") == FALLBACK  # not ready
        layout.ready_file.touch()
        assert run("p-9") == FALLBACK  # no such window
        code = run("p-1")
        assert code not in (0, FALLBACK)  # tmux new-session itself: "not a terminal"
        subprocess.run([*tmux, "set-option", "-w", "-t", "=hal:=p-1", "remain-on-exit", "on"])
        subprocess.run([*tmux, "respawn-pane", "-k", "-t", "=hal:=p-1", "true"], check=True)
        subprocess.run(["sleep", "0.5"], check=True)
        assert run("p-1") == FALLBACK  # its pane is dead
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def test_a_hint_others_may_write_is_no_hint(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    save_hint(env, _hint(env, [], []))
    assert load_hint(env) is not None
    path = Path(hint_path(env))
    path.chmod(0o666)
    assert load_hint(env) is None
    path.chmod(0o600)
    path.parent.chmod(0o777)
    assert load_hint(env) is None
    path.parent.chmod(0o700)
    assert load_hint(env) is not None


def test_no_hint_is_written_into_another_users_tree(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to own a directory as another user")
    home = tmp_path / "someone"
    home.mkdir()
    os.chown(home, 4321, 4321)
    env = {"HOME": str(home), "SUDO_UID": "4321"}
    save_hint(env, _hint(env, [], []))
    assert not (home / ".cache").exists()


def _stand_in_engine(sock: Path, bodies: dict[str, bytes]) -> threading.Thread:
    """An HTTP server on a unix socket answering GET PATH from `bodies` (404 otherwise): a
    stand-in for the engine's three inspects, our own seam (engine_get's HTTP/1.0)."""
    srv = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    srv.bind(str(sock))
    srv.listen(8)

    def serve() -> None:
        for _ in range(3):
            conn, _ = srv.accept()
            with conn:
                path = conn.recv(4096).split(b" ")[1].decode()
                body = bodies.get(path)
                head = b"HTTP/1.0 200 OK" if body is not None else b"HTTP/1.0 404 Not Found"
                conn.sendall(head + b"\r\n\r\n" + (body or b""))
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def _inspects(h: Hint) -> dict[str, bytes]:
    """The three inspects as the engine encodes them (compact JSON, its field order)."""
    state = {"Status": "running", "Running": True, "Paused": False}
    parent = {"Id": h.parent_id, "State": state, "Image": h.parent_image_id}

    def enc(body: Mapping[str, object]) -> bytes:
        return json.dumps(body, separators=(",", ":")).encode()

    return {
        f"/containers/{h.parent}/json": enc(parent),
        f"/images/{h.parent_image}/json": enc({"Id": h.parent_image_id}),
        f"/images/{h.worker_image}/json": enc({"Id": h.worker_image_id}),
    }


@pytest.mark.parametrize("given", [False, True])
def test_an_engine_named_on_the_command_line_is_the_one_attached_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: bool
) -> None:
    """`claudy --engine unix:///OTHER DIR` with DOCKER_HOST elsewhere: the hint of the
    environment pinned to OTHER, asked on OTHER, and the exec told OTHER (never the
    process's own DOCKER_HOST)."""
    from host_shim.commands.quick import quick_argv

    sock = tmp_path / "e.sock"
    (tmp_path / "bin").mkdir()
    docker = tmp_path / "bin" / "docker"
    docker.write_text("#!/bin/sh\nexit 0\n")
    docker.chmod(0o755)
    proj = tmp_path / "p"
    proj.mkdir()
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path / "bin")}
    env["DOCKER_HOST"] = "unix:///elsewhere.sock" if given else f"unix://{sock}"
    pinned = {**env, "DOCKER_HOST": f"unix://{sock}"}
    h = _hint(pinned, [], [], projects={str(proj): "p-1"}, engine=f"unix://{sock}")
    h.env = {k: v for k, v in pinned.items() if k in ("HOME", "DOCKER_HOST")}
    save_hint(pinned, h)
    served = _stand_in_engine(sock, _inspects(h))
    monkeypatch.setattr(os, "isatty", lambda fd: True)
    args = ["--engine", f"unix://{sock}", str(proj)] if given else [str(proj)]
    argv = quick_argv(args, env, 7)
    served.join(5)
    on = ["-H", f"unix://{sock}"] if given else []
    assert argv == [str(docker), *on, "exec", "xterm-256color", "p-1", "hal-h7"]


def test_over_ssh_one_cli_inspect_then_the_clis_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`claudy --engine ssh://… DIR`: a stand-in docker CLI (our seam; the real one over
    ssh is tests/e2e/test_remote_engine.py) answers the one inspect; the exec is its own."""
    from host_shim.commands.quick import quick_argv

    proj = tmp_path / "p"
    proj.mkdir()
    url = "ssh://me@box"
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path / "bin"), "DOCKER_HOST": "unix:///x"}
    pinned = {**env, "DOCKER_HOST": url}
    h = _hint(pinned, [], [], projects={str(proj): "p-1"}, engine=url)
    h.env = {k: v for k, v in pinned.items() if k in ("HOME", "DOCKER_HOST")}
    save_hint(pinned, h)
    lines = b"\n".join(_inspects(h).values()) + b"\n"
    (tmp_path / "bin").mkdir()
    (tmp_path / "out").write_bytes(lines)
    docker = tmp_path / "bin" / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/asked\ncat {tmp_path}/out\n')
    docker.chmod(0o755)
    monkeypatch.setattr(os, "isatty", lambda fd: True)
    argv = quick_argv(["--engine", url, str(proj)], env, 7)
    assert argv == [str(docker), "-H", url, "exec", "xterm-256color", "p-1", "hal-h7"]
    asked = (tmp_path / "asked").read_text().split()
    assert asked == ["-H", url, "inspect", "--format", "{{json", ".}}", "--", h.parent,
                     h.parent_image, h.worker_image]  # fmt: skip
    (tmp_path / "out").write_bytes(lines.split(b"\n", 1)[1])  # the parent gone: two lines
    assert quick_argv(["--engine", url, str(proj)], env, 7) is None
    assert quick_argv(["--engine", "ssh://me@other", str(proj)], env, 7) is None  # no hint
