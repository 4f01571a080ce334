"""Deterministic names: a project path always maps to the same session and container."""

from __future__ import annotations

import hashlib
import re

CONTAINER_PREFIX = "hal9000-w-"
_SLUG_MAX = 24
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Lowercase, runs of other characters collapsed to '-', trimmed; 'project' if empty."""
    s = _NON_SLUG.sub("-", text.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return s or "project"


def session_name(realpath: str) -> str:
    """`<slug of the last path part>-<first 8 hex of sha256(realpath)>`."""
    digest = hashlib.sha256(realpath.encode()).hexdigest()[:8]
    base = realpath.rstrip("/").rsplit("/", 1)[-1]
    return f"{slug(base)}-{digest}"


def container_name(session: str) -> str:
    return f"{CONTAINER_PREFIX}{session}"
