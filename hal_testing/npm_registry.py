"""A stand-in for npm's registry on 127.0.0.1 (real HTTP, a thread): serves the version
records and tarballs of Claude Code's platform package that a test hands it, so that
`claudy claude update`'s download path runs for real without the internet."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import tarfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(version: str, binary: bytes) -> bytes:
    """A platform package's tarball: package/package.json and package/claude."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, mode in (
            ("package/package.json", json.dumps({"version": version}).encode(), 0o644),
            ("package/claude", binary, 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Registry:
    """`add(package, version, tarball_bytes)`; `url` is what HAL9000_NPM_REGISTRY takes.
    `integrity` overrides what the record claims (to test a mismatch); `hits` counts the
    tarball downloads."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}  # "pkg/version" → record
        self.files: dict[str, bytes | Path] = {}  # path → tarball
        self.latest: dict[str, str] = {}
        self.hits = 0
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path)
                if path in registry.files:
                    registry.hits += 1
                    body = registry.files[path]
                    data = body.read_bytes() if isinstance(body, Path) else body
                    self._send(200, data, "application/octet-stream")
                    return
                pkg, _, version = path.lstrip("/").rpartition("/")
                version = registry.latest.get(pkg, "") if version == "latest" else version
                record = registry.records.get(f"{pkg}/{version}")
                if record is None:
                    self._send(404, b'{"error":"not found"}', "application/json")
                    return
                self._send(200, json.dumps(record).encode(), "application/json")

            def _send(self, code: int, data: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(
        self, package: str, version: str, data: bytes | Path, integrity: str | None = None
    ) -> None:
        name = package.rsplit("/", 1)[-1]
        path = f"/{package}/-/{name}-{version}.tgz"
        self.files[path] = data
        raw = data.read_bytes() if isinstance(data, Path) else data
        self.records[f"{package}/{version}"] = {
            "name": package,
            "version": version,
            "dist": {"tarball": self.url + path, "integrity": integrity or sri(raw)},
        }
        self.latest[package] = version

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
