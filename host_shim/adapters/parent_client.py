"""What claudy asks the parent: `hal-agent …` (and two cheap shell probes) over exec.

Each method runs one command in the parent container and returns its reply as a typed
value (`hal_common.protocol`). A command that exits non-zero raises `ParentCommandFailed`,
which carries its exit code and output; engine trouble is an EngineUnavailable or a
HalError from the façade, as anywhere else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import IO, Any

from hal_common.errors import EXIT_USAGE, HalError
from hal_common.layout import ParentLayout
from hal_common.protocol import AuthStatus, Health, LsReply, Ready, SyncStatus, WorkerRow
from host_shim.adapters.engine import ContainerHandle, ExecResult
from host_shim.core import handover
from host_shim.core.fastpath import Probe, parse_probe, probe_script
from host_shim.core.parent_spec import PARENT_LAYOUT

AGENT = "hal-agent"
log = logging.getLogger(__name__)
PREFIX_AUTH = "the parent could not say what is imported: "


class ParentCommandFailed(HalError):
    """A command in the parent exited non-zero (some callers carry on without its answer)."""

    def __init__(self, message: str, result: ExecResult) -> None:
        super().__init__(message)
        self.code = result.code
        self.output = result.output
        if result.code == EXIT_USAGE:  # the parent refused the input (a bad .hal9000.toml…)
            self.exit_code = EXIT_USAGE


class ParentClient:
    """`hal-agent` in one running parent container."""

    def __init__(self, parent: ContainerHandle, layout: ParentLayout = PARENT_LAYOUT) -> None:
        self.parent = parent
        self.layout = layout

    def _ask(self, argv: list[str], what: str) -> ExecResult:
        return self.parent.exec([AGENT, *argv], what)

    def _ok(self, res: ExecResult, name: str, prefix: str = "") -> str:
        """The output of a command that succeeded; else ParentCommandFailed saying so."""
        if res.code == 0:
            return res.output
        out = res.output.strip()
        message = f"{prefix}{out}" if prefix else out or f"{name} failed with code {res.code}"
        raise ParentCommandFailed(message, res)

    def _send(self, argv: list[str], data: Iterable[bytes], name: str, prefix: str = "") -> str:
        res = self.parent.exec_with_stdin([AGENT, *argv], data)
        return self._ok(res, name, prefix).strip()

    # --- readiness and probes -------------------------------------------------------------

    def ready_now(self) -> bool:
        """The loop has written its ready file (no Python start-up: a `test -e`)."""
        return self.parent.exec(["test", "-e", str(self.layout.ready_file)]).code == 0

    def ready(self, timeout: float) -> Ready:
        """Wait, at most `timeout` seconds, for the loop to have its engine and tmux up."""
        res = self.parent.exec([AGENT, "ready", "--timeout", str(timeout)])
        return Ready.from_exit(res.code, res.output)

    def probe(self, image: str, container: str) -> Probe:
        """The fast path's one exec: readiness, the inner image, the worker, its windows."""
        argv = ["sh", "-c", probe_script(self.layout), "probe", image, container]
        res = self.parent.exec(argv, "probing")
        return parse_probe(res.code, res.output)

    def inner_image_id(self, image: str) -> str | None:
        """`image`'s id in the inner engine (the docker CLI there: no Python start-up)."""
        argv = ["docker", "image", "inspect", "-f", "{{.Id}}", image]
        res = self.parent.exec(argv, "asking for the worker image")
        return res.output.strip() if res.code == 0 else None

    # --- what the parent says -------------------------------------------------------------

    def ls(self, include_stopped: bool = True) -> tuple[WorkerRow, ...]:
        argv = ["ls", "--json", *(["--all"] if include_stopped else [])]
        out = self._ok(self._ask(argv, "listing workers"), "ls")
        return LsReply.loads(out or "[]").rows

    def health(self) -> Health:
        return Health.loads(
            self._ok(self._ask(["health", "--json"], "asking the parent"), "health")
        )

    def auth_status(self) -> AuthStatus:
        res = self._ask(["auth", "status", "--json"], "asking the parent")
        return AuthStatus.loads(self._ok(res, "auth status", PREFIX_AUTH))

    def auth_status_text(self) -> str:
        """`hal-agent auth status` for people (whatever its exit code)."""
        return self._ask(["auth", "status"], "asking the parent").output.strip()

    def sync_status(self) -> SyncStatus:
        res = self._ask(["sync", "--status"], "asking the parent")
        return SyncStatus.loads(self._ok(res, "sync --status"))

    def doctor(self) -> ExecResult:
        """`hal-agent doctor`: its exit code and its report."""
        return self._ask(["doctor"], "asking the parent")

    # --- what the parent is told ----------------------------------------------------------

    def spawn(
        self, project: str, image_id: str, task: str | None = None, from_ref: str | None = None
    ) -> str:
        """Start (or reuse) `project`'s worker and its window (`task`: that task's, on a
        worktree of `project`'s repository, from `from_ref`); its session name."""
        argv = ["spawn", project, "--no-attach", "--image-id", image_id]
        argv += handover.task_args(task, from_ref)
        res = self.parent.exec_split([AGENT, *argv], "spawning the worker")
        self._ok(res, "spawn")
        for line in (res.stderr or "").splitlines():
            if line.strip():  # what the parent warned about
                log.warning("%s", line)
        out = (res.stdout or "").strip().splitlines()
        return out[-1].strip() if out else ""

    def import_credential(self, wire: bytes) -> str:
        """Store a credential: its wire form goes on stdin, never in argv or env."""
        return self._send(["auth", "import"], [wire], "auth import")

    def import_identity(self, wire: bytes) -> str:
        """The host's git name and email (`GitIdentity.wire`), on stdin."""
        return self._send(["identity", "import"], [wire], "identity import")

    def import_github_token(self, token: str) -> str:
        """A GitHub token, on stdin: never in argv or env."""
        return self._send(["identity", "github-token"], [token.encode()], "identity github-token")

    def remove_github_token(self) -> str:
        return self._ok(
            self._ask(["identity", "github-token", "--remove"], "removing the GitHub token"),
            "identity github-token --remove",
        ).strip()

    def identity_status(self) -> dict[str, Any]:
        """`hal-agent identity status --json`."""
        res = self._ask(["identity", "status", "--json"], "asking the parent")
        doc = json.loads(self._ok(res, "identity status"))
        if not isinstance(doc, dict):
            raise HalError("hal-agent identity status --json did not answer an object")
        return doc

    def sync(self, archive: bytes, force: bool = False, dry_run: bool = False) -> str:
        """Apply the host's Claude config (a tar, on stdin); the parent's report."""
        argv = ["sync", *(["--force"] if force else []), *(["--dry-run"] if dry_run else [])]
        return self._send(argv, [archive], "sync")

    def send(self, name: str, text: str, enter: bool = True, keys: Iterable[str] = ()) -> str:
        """Type `text` into worker `name`'s Claude (then Enter unless not `enter`), then press
        `keys` (tmux key names): `hal-agent send`. TEXT goes after `--`, so a text that
        starts with a dash is typed, never taken for an option."""
        argv = ["send", name, *(["--no-enter"] if not enter else [])]
        argv += [a for key in keys for a in ("--key", key)]
        argv += ["--", text] if text else []
        return self._ok(self._ask(argv, f"sending to {name}"), "send").strip()

    def claude_versions(self) -> list[str]:
        """The names in the parent's Claude Code store (a cheap `ls`, no Python start-up;
        `hal-agent claude ls` and each spawn check them for real)."""
        res = self.parent.exec(
            ["ls", "-1A", str(self.layout.claude_store)], "listing the Claude Code store"
        )
        return res.output.split() if res.code == 0 else []

    def claude_ls(self) -> dict[str, Any]:
        """`hal-agent claude ls --json`."""
        out = self._ok(self._ask(["claude", "ls", "--json"], "listing Claude Code"), "claude ls")
        doc = json.loads(out)
        if not isinstance(doc, dict):
            raise HalError("hal-agent claude ls --json did not answer an object")
        return doc

    def claude_install(self, version: str, chunks: Iterable[bytes]) -> str:
        """Install Claude Code `version` from its binary (streamed on stdin)."""
        return self._send(
            ["claude", "install", version],
            chunks,
            "claude install",
            f"installing Claude Code {version} in the parent failed: ",
        )

    def load_image(self, image: str, chunks: Iterable[bytes]) -> str:
        """Load a `docker save` stream of `image` into the inner engine."""
        return self._send(
            ["load-image"], chunks, "load-image", f"loading {image} into the parent failed: "
        )

    # --- the config, for a parent that does not see the host's directory -------------------

    def config_text(self) -> str | None:
        """The parent's config file as it reads it (None: there is none)."""
        res = self.parent.exec(["cat", "--", str(self.layout.config_file)], "reading its config")
        return res.output if res.code == 0 else None

    def put_config(self, text: bytes) -> None:
        """Write the parent's config file (over an exec's stdin; replaced whole, so that its
        watcher reloads one complete file)."""
        path = str(self.layout.config_file)
        script = 'umask 022; cat > "$1.hal-new" && mv -f -- "$1.hal-new" "$1"'
        res = self.parent.exec_with_stdin(["sh", "-c", script, "put-config", path], [text])
        self._ok(res, "writing the config", "cannot write the parent's config: ")

    # --- projects that travel by git (hal_common/gitsync.py) ------------------------------

    def sees(self, path: str, token: str) -> bool:
        """The parent reads `token` in the file at `path`: it sees the host's folder there
        (the roots' bind mount), not an empty one on another host."""
        res = self.parent.exec(["cat", "--", path], "probing the project's folder")
        return res.code == 0 and res.output.strip() == token

    def repo_info(self, key: str) -> dict[str, Any]:
        """`hal-agent repo info KEY --json`."""
        res = self._ask(["repo", "info", key, "--json"], "asking for the repository")
        doc = json.loads(self._ok(res, "repo info"))
        if not isinstance(doc, dict):
            raise HalError("hal-agent repo info --json did not answer an object")
        return doc

    def repo_receive(self, key: str, branch: str, chunks: Iterable[bytes]) -> str:
        """A bundle of `branch` (streamed on stdin) into the parent's repository `key`."""
        return self._send(
            ["repo", "receive", key, "--branch", branch],
            chunks,
            "repo receive",
            "sending the repository to the parent failed: ",
        )

    def repo_bundle(
        self, key: str, name: str, out: IO[bytes], limit: int, have: Iterable[str] = ()
    ) -> None:
        """Task `name`'s branch as a bundle, written to `out` (at most `limit` bytes); the
        commits `have` left out (nothing at all when its tip is one of them)."""
        argv = [AGENT, "repo", "bundle", key, name, *(a for h in have for a in ("--have", h))]
        code, err, cut = self.parent.exec_to_file(argv, out, limit, timeout=600)
        if cut:
            raise HalError(
                f"the parent's bundle of task {name} is bigger than {limit >> 20} MiB: "
                "refused, nothing fetched"
            )
        if code != 0:
            raise ParentCommandFailed(
                err.strip() or f"repo bundle failed with code {code}", ExecResult(code, err)
            )
