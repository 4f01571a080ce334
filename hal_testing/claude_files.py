"""A host's Claude files, made up: credentials documents and a `~/.claude` to sync."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path


def oauth_doc(token: str, expires_ms: int, refresh: str | None = "rt-1") -> str:
    """`.credentials.json` as Claude Code writes it after a login."""
    return json.dumps(
        {
            "claudeAiOauth": {
                "accessToken": token,
                "refreshToken": refresh,
                "expiresAt": expires_ms,
                "scopes": ["user:inference"],
                "subscriptionType": "max",
            }
        }
    )


def future_ms(hours: float) -> int:
    return int((time.time() + hours * 3600) * 1000)


def tree_hash(root: Path) -> str:
    """Names, modes, times and bytes of everything under `root`."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}|{stat.S_IMODE(st.st_mode)}|{st.st_mtime_ns}".encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def host_claude(tmp_path: Path) -> Path:
    """`tmp_path/host/.claude`: config to sync, plugins with a git checkout, and what must never
    be synced (the credential, the history)."""
    d = tmp_path / "host" / ".claude"
    (d / "agents").mkdir(parents=True)
    (d / "commands").mkdir()
    (d / "skills" / "review").mkdir(parents=True)
    (d / "plugins" / "marketplaces" / "m" / ".git").mkdir(parents=True)
    (d / "settings.json").write_text('{"theme": "dark"}\n')
    (d / "CLAUDE.md").write_text("# house rules\n")
    (d / "agents" / "a.md").write_text("agent a\n")
    (d / "commands" / "c.md").write_text("command c\n")
    (d / "skills" / "review" / "SKILL.md").write_text("skill\n")
    (d / "plugins" / "marketplaces" / "m" / ".git" / "HEAD").write_text("ref\n")
    (d / "plugins" / "known_marketplaces.json").write_text(
        json.dumps({"m": {"installLocation": f"{d}/plugins/marketplaces/m"}})
    )
    (d / ".credentials.json").write_text(oauth_doc("sk-ant-oat01-never-synced", 1))
    (d / "history.jsonl").write_text("private\n")
    return d
