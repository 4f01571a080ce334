"""Config sync on real files: claudy packs the host's ~/.claude, the parent applies it, never
overwriting what changed inside."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hal_common.errors import UsageError
from hal_testing.claude_files import host_claude, tree_hash
from host_shim.adapters import config_sync
from parent_agent.adapters import config_sync as apply_sync

UID, GID = os.getuid(), os.getgid()
# the parent's lock directory (writers of .claude.json take its lock) is tmp_path/locks


def test_sync_copies_config_rewrites_plugin_paths_and_leaves_secrets(
    tmp_path: Path,
) -> None:
    host = host_claude(tmp_path)
    state = tmp_path / "host" / ".claude.json"
    state.write_text(
        json.dumps(
            {
                "theme": "light",
                "oauthAccount": {"emailAddress": "u@x"},
                "mcpServers": {"x": {}},
                "projects": {"/h": {}},
            }
        )
    )
    before = tree_hash(tmp_path / "host")
    data, count = config_sync.pack(host, state)
    assert count == 6  # settings, CLAUDE.md, agent, command, skill, known_marketplaces
    home = tmp_path / "inside"
    plan = apply_sync.apply(home, data, UID, GID, tmp_path / "locks")
    assert sorted(plan.new) == sorted(
        [
            "CLAUDE.md",
            "agents/a.md",
            "commands/c.md",
            "plugins/known_marketplaces.json",
            "settings.json",
            "skills/review/SKILL.md",
        ]
    )
    assert (home / ".credentials.json").read_text() == "{}\n"  # the placeholder, never the host's
    assert not (home / "history.jsonl").exists()
    assert not (home / "plugins" / "marketplaces" / "m" / ".git").exists()
    known = json.loads((home / "plugins" / "known_marketplaces.json").read_text())
    assert known["m"]["installLocation"] == "/home/hal/.claude/plugins/marketplaces/m"
    inside_state = json.loads((home / ".claude.json").read_text())
    assert inside_state["oauthAccount"] == {"emailAddress": "u@x"}
    assert "mcpServers" not in inside_state and "projects" not in inside_state
    assert tree_hash(tmp_path / "host") == before  # the host is only read


def test_sync_never_overwrites_a_file_changed_inside(
    tmp_path: Path,
) -> None:
    host = host_claude(tmp_path)
    state = tmp_path / "host" / ".claude.json"
    home = tmp_path / "inside"
    apply_sync.apply(home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks")
    (home / "CLAUDE.md").write_text("# edited inside\n")  # the user changed it in a worker
    (host / "CLAUDE.md").write_text("# edited on the host\n")
    (host / "agents" / "a.md").write_text("agent a v2\n")  # changed only on the host
    (host / "agents" / "b.md").write_text("agent b\n")
    plan = apply_sync.apply(home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks")
    assert plan.kept == ["CLAUDE.md"] and plan.updated == ["agents/a.md"]
    assert plan.new == ["agents/b.md"]
    assert (home / "CLAUDE.md").read_text() == "# edited inside\n"
    assert (home / "agents" / "a.md").read_text() == "agent a v2\n"
    lines = apply_sync.report(plan)
    assert "kept 1 changed inside, which differ from the host's:" in lines
    assert "  CLAUDE.md" in lines
    assert "    -# edited inside" in lines and "    +# edited on the host" in lines
    # the same sync again keeps saying so, and --force takes the host's copy
    assert apply_sync.apply(
        home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks"
    ).kept == ["CLAUDE.md"]
    forced = apply_sync.apply(
        home, config_sync.pack(host, state)[0], UID, GID, tmp_path / "locks", force=True
    )
    assert forced.forced == ["CLAUDE.md"]
    assert (home / "CLAUDE.md").read_text() == "# edited on the host\n"


def test_the_sync_archive_cannot_escape_the_home(
    tmp_path: Path,
) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UsageError, match="refusing"):
        apply_sync.apply(tmp_path / "home", buf.getvalue(), UID, GID, tmp_path / "locks")
    assert not (tmp_path / "etc").exists()


def test_sync_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """A directory symlink, a file symlink and a FIFO in the shared home (planted back when
    workers could write it): refused, reported, left alone; nothing outside is written."""
    host = host_claude(tmp_path)
    data, _count = config_sync.pack(host, tmp_path / "host" / ".claude.json")
    home = tmp_path / "inside"
    home.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "CLAUDE.md").write_text("parent's own\n")
    (home / "agents").symlink_to(outside)
    (home / "CLAUDE.md").symlink_to(outside / "CLAUDE.md")
    os.mkfifo(home / "settings.json")
    plan = apply_sync.apply(home, data, UID, GID, tmp_path / "locks")
    assert {"agents/a.md", "CLAUDE.md", "settings.json"} <= set(plan.refused)
    assert sorted(p.name for p in outside.iterdir()) == ["CLAUDE.md"]
    assert (outside / "CLAUDE.md").read_text() == "parent's own\n"
    assert "refused 3" in "\n".join(apply_sync.report(plan))
