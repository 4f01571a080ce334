"""claudy's manners as a user meets them, where no engine is needed: a mistyped command, help
on the forwarded commands, Tab completion (click's protocol and a real bash), NO_COLOR and
--no-color, -q. Each runs claudy as a process (`python -m host_shim`, the quick entry first)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_testing.npm_registry import Registry, tarball

ESC = "\x1b["


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """A user whose home (and so the default root) is `home`, with no engine at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    env.update(extra)
    return env


def claudy(
    home: Path, *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host_shim", *args],
        env=env_for(home, **extra),
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    return tmp_path


def test_a_mistyped_command_is_named_with_the_nearest(home: Path) -> None:
    res = claudy(home, "lss")
    assert res.returncode == 2, res.stderr
    assert "No such command 'lss'. Did you mean 'ls'?" in res.stderr
    res = claudy(home, "-q", "stauts")  # past the global flags too
    assert res.returncode == 2
    assert "No such command 'stauts'. Did you mean 'stats', 'status' or 'start'?" in res.stderr
    res = claudy(home, "config", "shwo")  # every level
    assert res.returncode == 2 and "No such command 'shwo'. Did you mean 'show'?" in res.stderr
    res = claudy(home, "claude", "fech")  # `claude fetch` is hidden: never suggested
    assert res.returncode == 2 and "fetch" not in res.stderr


def test_a_word_that_is_neither_says_so_and_never_names_open(home: Path) -> None:
    for words in (["nothing-like-it"], ["open"], ["opne"], ["--bogus"]):
        res = claudy(home, *words)
        assert res.returncode == 2, (words, res.stderr)
        assert "open" not in res.stderr.replace(words[0], ""), res.stderr
        assert "no such directory" not in res.stderr
    assert (
        "No such command or directory 'nothing-like-it'." in claudy(home, "nothing-like-it").stderr
    )


def test_a_path_stays_a_directory_and_a_missing_one_says_so(home: Path) -> None:
    for word in ("./nonexistent-dir", "src/nonexistent", "~/nonexistent"):
        res = claudy(home, "-d", word) if word.startswith("~") else claudy(home, word)
        assert res.returncode == 2, res.stderr
        assert "no such directory" in res.stderr and "No such command" not in res.stderr


def test_forwarded_commands_show_hal_agents_help(home: Path) -> None:
    res = claudy(home, "ls", "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Usage: claudy ls [OPTIONS]")
    assert "--json" in res.stdout and "--all" in res.stdout and "forward" not in res.stdout
    logs = claudy(home, "logs", "-h").stdout
    assert "Usage: claudy logs [OPTIONS] [NAME]" in logs and "--follow" in logs
    top = claudy(home, "--help").stdout
    for name in ("ls", "logs", "services", "health", "completion"):
        assert f"\n  {name} " in top, name
    assert "forward" not in top and "\n  open " not in top


def complete(home: Path, line: str, cwd: Path | None = None) -> list[str]:
    """click's bash protocol, as the completion script asks: `type,value` lines."""
    words = line.split(" ")
    res = claudy(
        home,
        cwd=cwd,
        _CLAUDY_COMPLETE="bash_complete",
        COMP_WORDS=line,
        COMP_CWORD=str(len(words) - 1),
    )
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]


def test_completion_offers_commands_directories_and_options(home: Path) -> None:
    first = complete(home, "claudy s")
    assert {"plain,send", "plain,services", "plain,status", "plain,sync"} <= set(first)
    assert "dir,s" in first  # the script adds the directories (src/, sub/)
    assert not [c for c in first if "open" in c or "forward" in c]
    assert {"plain,--json", "plain,--all"} <= set(complete(home, "claudy ls -"))
    assert {"plain,--quiet", "plain,--no-color"} <= set(complete(home, "claudy -"))
    assert complete(home, "claudy -d s") == ["dir,s"]
    assert complete(home, "claudy completion ") == ["plain,bash", "plain,zsh", "plain,fish"]
    assert complete(home, "claudy logs ") == []  # no parent answers: nothing, and quickly


def test_worker_names_complete_from_the_root_groups_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forwarded command completes with hal-agent's own parameters; its NAME asks
    claudy's group for the workers (in use: the parent; here a stand-in list, the seam)."""
    from click.shell_completion import BashComplete

    from host_shim.commands import cli

    names = ["alpha-1a2b3c4d", "beta-5e6f7a8b"]
    monkeypatch.setattr(cli._Group, "list_workers", staticmethod(lambda: names))
    comp = BashComplete(cli.main, {}, "claudy", "_CLAUDY_COMPLETE")
    assert [c.value for c in comp.get_completions(["logs"], "")] == names
    assert [c.value for c in comp.get_completions(["stop"], "b")] == ["beta-5e6f7a8b"]
    flags = comp.get_completions(["logs", "alpha-1a2b3c4d"], "--")
    assert [c.value for c in flags] == [
        "--agent",
        "--dockerd",
        "--dashboard",
        "--follow",
        "--tail",
        "--help",
    ]
    found = comp.get_completions(["attach"], "./s")
    assert [(c.type, c.value) for c in found] == [("dir", "./s")]


def test_no_color_and_dash_dash_no_color_leave_no_escape_codes(home: Path) -> None:
    coloured = claudy(home, "-d", "./nonexistent-dir", FORCE_COLOR="1")
    assert ESC in coloured.stderr and "no such directory" in coloured.stderr
    for res in (
        claudy(home, "-d", "./nonexistent-dir", FORCE_COLOR="1", NO_COLOR="1"),
        claudy(home, "--no-color", "-d", "./nonexistent-dir", FORCE_COLOR="1"),
    ):
        assert "no such directory" in res.stderr and ESC not in res.stderr, res.stderr


@pytest.fixture
def registry() -> Iterator[Registry]:
    with Registry() as r:
        yield r


def test_quiet_drops_the_progress_lines_only(home: Path, registry: Registry) -> None:
    """A download's meter (a line per tenth off a terminal) shows; with -q it does not, and
    the command's own output (the cached path) is the same."""
    import platform

    if platform.machine() not in ("x86_64", "aarch64", "arm64"):
        pytest.skip("no Claude Code platform for this machine")
    arch = "x64" if platform.machine() == "x86_64" else "arm64"
    registry.add(
        f"@anthropic-ai/claude-code-linux-{arch}", "9.9.9", tarball("9.9.9", b"#!/bin/sh\n")
    )
    loud = claudy(home, "claude", "fetch", "9.9.9", HAL9000_NPM_REGISTRY=registry.url)
    assert loud.returncode == 0, loud.stderr
    assert "downloading: " in loud.stderr
    quiet = claudy(home, "-q", "claude", "fetch", "9.9.9", HAL9000_NPM_REGISTRY=registry.url)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout == loud.stdout


def test_verbose_shows_debug_lines(home: Path) -> None:
    res = claudy(home, "-v", "status")
    assert res.returncode == 3 and "DEBUG " in res.stderr
    assert "DEBUG " not in claudy(home, "status").stderr
    both = claudy(home, "-v", "-q", "status")
    assert both.returncode == 2 and "-v and -q" in both.stderr


def test_the_quick_entry_hands_completion_to_the_full_cli(home: Path) -> None:
    """`claudy` is the quick entry: with `_CLAUDY_COMPLETE` set it must not try to attach
    `claudy DIR` (a directory named like the incomplete word), but answer."""
    assert "plain,status" in complete(home, "claudy src", cwd=home) + complete(home, "claudy st")


@pytest.mark.tmux
def test_bash_completes_commands_and_directories_together(home: Path) -> None:
    """`claudy completion bash` sourced in a real bash on a private tmux server: Tab Tab after
    `claudy s` lists the commands and the directories; `claudy su` Tab becomes `sub/`."""
    import libtmux
    from libtmux.test.retry import retry_until

    if shutil.which("bash") is None or shutil.which("tmux") is None:
        pytest.skip("no bash or no tmux")
    script = claudy(home, "completion", "bash")
    assert script.returncode == 0 and "_CLAUDY_COMPLETE=bash_complete" in script.stdout
    rc = home / "rc"
    shim = home / "bin" / "claudy"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m host_shim "$@"\n')
    shim.chmod(0o755)
    env = env_for(home)
    exports = "".join(
        f"export {k}={shlex.quote(v)}\n"
        for k, v in env.items()
        if k in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "DOCKER_HOST", "PYTHONPATH")
    )
    rc.write_text(
        f"{exports}export PATH={shim.parent}:{os.environ['PATH']}\ncd {home}\nPS1='ready> '\n"
        + script.stdout
    )
    server = libtmux.Server(socket_path=str(home / "t.sock"), config_file="/dev/null")
    try:
        session = server.new_session(
            "c", window_command=f"env -i TERM=xterm bash --noprofile --rcfile {rc}", x=200, y=20
        )
        pane = session.active_window.active_pane
        assert pane is not None

        def screen() -> str:
            return "\n".join(pane.capture_pane())

        retry_until(lambda: "ready>" in screen(), 10)

        def keys(text: str) -> None:
            pane.send_keys(text, enter=False, suppress_history=False)

        keys("claudy s")
        keys("Tab")
        keys("Tab")
        retry_until(lambda: "services" in screen() and "src/" in screen(), 30)
        assert "sub/" in screen() and "status" in screen()
        keys("C-u")
        keys("claudy su")
        keys("Tab")
        retry_until(lambda: "claudy sub/" in screen(), 30)
    finally:
        server.kill()


@pytest.mark.docker
def test_verbose_shows_the_engines_calls(home: Path, docker_host: str) -> None:
    """With a real engine: -v logs each call claudy makes to it (docker-py's requests)."""
    loud = claudy(home, "-v", "status", DOCKER_HOST=docker_host)
    assert loud.returncode == 0, loud.stderr
    assert '"GET /v' in loud.stderr and "/containers/" in loud.stderr
    plain = claudy(home, "status", DOCKER_HOST=docker_host)
    assert plain.returncode == 0 and plain.stderr == "" and plain.stdout == loud.stdout
