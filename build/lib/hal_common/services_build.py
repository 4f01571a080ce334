"""The services image's background build, as a record both sides read (pure).

On a first run claudy does not wait for the services image (the heaviest one): a detached
process builds it and loads it into the parent while the user is already in Claude Code.
That process keeps a small record in hal-9000's config directory, which the parent sees
(mounted at /config/hal9000): claudy's `status` and `doctor` and the next `claudy` read it,
and the parent's services line says "waiting for image" (building) or why it failed. The
record is written by claudy on the host (trusted); it is read with a size limit all the
same, and a record that does not parse is no record.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

RECORD_NAME = "services-build.json"  # in hal-9000's config directory (the parent's /config/hal9000)
RECORD_LIMIT = 16 * 1024
BUILDING, FAILED, DONE = "building", "failed", "done"


@dataclass(frozen=True)
class BuildRecord:
    state: str  # building, failed or done
    image: str
    log: str  # the host's path of the build's log
    pid: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: str = ""

    def dumps(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def loads(cls, text: str) -> BuildRecord | None:
        """The record in `text`; None when it is not one (too long, not JSON, wrong keys)."""
        if len(text) > RECORD_LIMIT:
            return None
        try:
            raw = json.loads(text)
            rec = cls(
                state=str(raw["state"]),
                image=_printable(str(raw["image"])),
                log=_printable(str(raw["log"])),
                pid=int(raw.get("pid", 0)),
                started=float(raw.get("started", 0.0)),
                finished=float(raw.get("finished", 0.0)),
                error=_printable(str(raw.get("error", "")))[:2000],
            )
        except (ValueError, KeyError, TypeError):
            return None
        return rec if rec.state in (BUILDING, FAILED, DONE) else None


def _printable(text: str) -> str:
    """Without control characters (an escape sequence from a build's output never reaches
    a terminal); line breaks stay."""
    return "".join(c for c in text if c == "\n" or c.isprintable())


def waiting_detail(rec: BuildRecord | None, image: str) -> tuple[str, str]:
    """(state, detail) of a service whose image `image` the parent does not have yet."""
    if rec is not None and rec.image == image and rec.state == BUILDING:
        since = time.strftime("%H:%M", time.localtime(rec.started)) if rec.started else "?"
        return "waiting", f"waiting for image {image}: building on the host since {since}"
    if rec is not None and rec.image == image and rec.state == FAILED:
        first = rec.error.splitlines()[0] if rec.error else "failed"
        return "no image", f"building {image} on the host failed: {first} (log: {rec.log})"
    return "waiting", f"waiting for image {image} (claudy on the host loads it)"


def loaded_detail(rec: BuildRecord | None, image: str) -> tuple[str, str] | None:
    """(state, detail) of a service without a container whose image is there: `starting`
    while the background build that loaded it still runs (its load waits for the parent to
    create the containers); else None (the container is missing: an error says why)."""
    if rec is not None and rec.image == image and rec.state == BUILDING:
        return "starting", f"image {image} loaded, the container is being created"
    return None


def host_line(rec: BuildRecord | None, running: bool) -> str | None:
    """What claudy says about the background build (status, doctor, the next run); None when
    there is nothing to say (no build, or the last one finished)."""
    if rec is None:
        return None
    if running:
        since = time.strftime("%H:%M:%S", time.localtime(rec.started)) if rec.started else "?"
        return f"{rec.image} is building in the background since {since} (log: {rec.log})"
    if rec.state == FAILED:
        first = rec.error.splitlines()[0] if rec.error else "failed"
        return f"the background build of {rec.image} failed: {first} (log: {rec.log})"
    if rec.state == BUILDING:
        return f"the background build of {rec.image} was interrupted (log: {rec.log})"
    return None
