"""Config files the tests write."""

from __future__ import annotations

# a user's config, commented and aligned by hand: `config set` must keep every other byte
SAMPLE = """\
# hal-9000 config: my laptop
[parent]
name = "hal9000-parent"
roots = ["~/src",   # work
         "~/play"]  # weekends

[worker]
# limits per worker
memory   = "4g"     # claude is hungry
cpus = 2
env = ["GH_TOKEN_FILE"]

[keys]
prefix = "C-a"   # screen habits

[services.web]
port = 8080
"""

# the built-in services belong to the end-to-end tests (they listen on the parent's localhost)
NO_BUILTIN_SERVICES = "".join(
    f"\n[services.{n}]\nenabled = false\n" for n in ("chromadb", "chroma-mcp", "memory-bank")
)
