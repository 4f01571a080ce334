"""The quick entry's captured run: a real fork and exec (no subprocess module)."""

from __future__ import annotations

from pathlib import Path

from host_shim.adapters.quick_exec import run_captured


def test_a_captured_run_gives_its_stdout_and_only_on_success(tmp_path: Path) -> None:
    script = tmp_path / "s"
    script.write_text("#!/bin/sh\necho out; echo said >&2; read x || echo eof\nexit ${1:-0}\n")
    script.chmod(0o755)
    assert run_captured([str(script)]) == b"out\neof\n"  # stdin is /dev/null, stderr dropped
    assert run_captured([str(script), "3"]) is None
    assert run_captured([str(tmp_path / "missing")]) is None
