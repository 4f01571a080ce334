"""git in the user's own repository, for projects that travel by git (`hal_common/gitsync.py`):
the bundle claudy sends, and the agent's bundle it takes back.

What comes from the parent is untrusted (a worker wrote it): a bundle is spooled bounded
(by the caller), checked by `git bundle verify` and `list-heads` (exactly `hal/NAME`), then
fetched into that one ref, never with force, never checked out. Every git here runs with no
hook (`core.hooksPath=/dev/null`), no fsmonitor, no pager or prompt, under a timeout; argv
only, never a shell.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from hal_common import gitsync
from hal_common.errors import HalError, UsageError

TIMEOUT_S = 300.0
SAFE = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.pager=cat",
    "-c", "credential.helper=",
    "-c", "protocol.allow=never",
)  # fmt: skip
_FILE_ONLY = ("-c", "protocol.file.allow=always")  # the spooled bundle, no other transport


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def git(top: str, args: Sequence[str], timeout: float = TIMEOUT_S) -> Done:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }
    try:
        res = subprocess.run(
            ["git", *SAFE, "-C", top, *args],
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise HalError("git is not installed", hint="install git (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise HalError(f"git {args[0]} took over {timeout:g}s and was stopped") from None
    return Done(
        res.returncode,
        res.stdout.decode(errors="replace").strip(),
        res.stderr.decode(errors="replace").strip(),
    )


def ok(top: str, args: Sequence[str], what: str) -> str:
    res = git(top, args)
    if res.code != 0:
        said = res.err.splitlines()[-1] if res.err else f"exit code {res.code}"
        raise HalError(f"{what}: {said}")
    return res.out


def toplevel(directory: str) -> str | None:
    """The repository `directory` lies in (its top level, resolved); None when none."""
    res = git(directory, ["rev-parse", "--show-toplevel"], timeout=20)
    if res.code != 0 or not res.out:
        return None
    return os.path.realpath(res.out)


def current_branch(top: str) -> str | None:
    res = git(top, ["symbolic-ref", "-q", "--short", "HEAD"], timeout=20)
    return res.out if res.code == 0 and res.out else None


def tip(top: str, ref: str) -> str:
    """The commit `ref` names, "" when none."""
    res = git(top, ["rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}"], 20)
    return res.out if res.code == 0 else ""


def is_ancestor(top: str, old: str, new: str) -> bool:
    """`old` is a commit here and lies in `new`'s history."""
    return git(top, ["merge-base", "--is-ancestor", old, new], timeout=60).code == 0


def count(top: str, spec: str) -> int:
    res = git(top, ["rev-list", "--count", spec], timeout=60)
    return int(res.out) if res.code == 0 and res.out.isdigit() else 0


def create_bundle(top: str, branch: str, path: str, have: str = "") -> None:
    """`refs/heads/BRANCH` as a bundle at `path`; only what lies past `have` (a commit the
    parent holds) when given."""
    gitsync.check_branch(branch)
    spec = [f"refs/heads/{branch}", *([f"^{have}"] if have else [])]
    ok(top, ["bundle", "create", "-q", path, *spec], f"bundling {branch}")


@dataclass(frozen=True)
class Fetched:
    ref: str
    old: str
    new: str


def fetch_bundle(top: str, path: str, ref: str) -> Fetched:
    """The bundle at `path` (from the parent: untrusted) into `ref` of the repository at
    `top`: verified, holding exactly `ref`, fast-forward only, nothing checked out."""
    verified = git(top, ["bundle", "verify", "--quiet", path])
    if verified.code != 0:
        said = verified.err.splitlines()[-1] if verified.err else "it is not a bundle"
        raise HalError(f"the parent's bundle does not verify, nothing fetched: {said}")
    heads = gitsync.parse_heads(ok(top, ["bundle", "list-heads", path], "listing the bundle"))
    head = gitsync.only_ref(heads, ref)
    old = tip(top, ref)
    res = git(
        top,
        [*_FILE_ONLY, "fetch", "--no-tags", "--no-write-fetch-head", "--", path, f"{ref}:{ref}"],
    )
    if res.code != 0:
        short = ref.removeprefix("refs/heads/")
        if "non-fast-forward" in res.err or "rejected" in res.err:
            raise UsageError(
                f"your {short} has commits the agent's does not (not a fast-forward): "
                "refused, nothing changed",
                hint=f"keep yours under another name (git branch -m {short} {short}-mine), "
                "then pull again",
            )
        if "checked out" in res.err:
            raise UsageError(
                f"{short} is checked out here: claudy never updates a checked-out branch",
                hint="switch to another branch, then pull again",
            )
        said = res.err.splitlines()[-1] if res.err else f"exit code {res.code}"
        raise HalError(f"fetching the parent's bundle: {said}")
    return Fetched(ref, old, head.commit)
