"""Pieces shared by the host shim (`claudy`) and the parent agent (`hal-agent`).

Everything here is pure (no Docker, no tmux): names, labels, paths, config, errors.
"""

from __future__ import annotations

__version__ = "0.1.0"
