"""Connecting to the host engine: without DOCKER_HOST, the one the Docker CLI's current context
names (Docker Desktop's, a rootless engine's), as `docker` itself would. docker-py does this
from 7.2 on: the reason for pyproject's `docker>=7.2` (scripts/test-lowest runs this on 7.2)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from hal_common.errors import EngineUnavailable
from hal_io.engine import connect


class EngineStandIn(BaseHTTPRequestHandler):
    """Answers the two calls a connect makes (`/version`, `/_ping`) and records the paths:
    what matters here is which socket the client dials, not what an engine does."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = json.dumps({"ApiVersion": "1.44"}).encode() if "version" in self.path else b"OK"
        self.send_response(200)
        self.send_header("Api-Version", "1.44")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet; and a unix socket has no client address to log

    def address_string(self) -> str:
        return "unix"


@pytest.fixture
def engine_socket() -> Iterator[tuple[Path, list[str]]]:
    """A unix socket (short path) where the stand-in answers; the paths it was asked."""
    d = Path(tempfile.mkdtemp(prefix="hx", dir="/tmp"))
    seen: list[str] = []
    handler = type("Handler", (EngineStandIn,), {"seen": seen})
    server = socketserver.UnixStreamServer(str(d / "e.sock"), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield d / "e.sock", seen
    server.shutdown()
    server.server_close()
    t.join(5)
    shutil.rmtree(d)


def docker_cli_config(root: Path, context: str, host: str) -> Path:
    """A Docker CLI config whose current context is `context`, at `host` (as `docker context
    create` and `docker context use` leave it)."""
    meta = root / "contexts" / "meta" / hashlib.sha256(context.encode()).hexdigest()
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(
        json.dumps({"Name": context, "Metadata": {}, "Endpoints": {"docker": endpoint}})
    )
    (root / "config.json").write_text(json.dumps({"currentContext": context}))
    return root


def test_without_docker_host_the_current_docker_context_is_followed(
    tmp_path: Path, engine_socket: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, seen = engine_socket
    config = docker_cli_config(tmp_path / "docker", "desktop", f"unix://{sock}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    client = connect(None, "the host engine", hint="")
    assert any(p.endswith("/_ping") for p in seen), seen
    client.close()


def test_docker_host_still_wins_over_the_context(
    tmp_path: Path, engine_socket: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, seen = engine_socket
    config = docker_cli_config(tmp_path / "docker", "desktop", f"unix://{sock}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(EngineUnavailable):
        connect(None, "the host engine", hint="")
    assert seen == []
