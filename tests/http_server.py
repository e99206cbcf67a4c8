"""A real HTTP server on 127.0.0.1 for the download tests (fixture ``file_server`` in conftest).

It serves ``files`` by path with Range support (switchable), records every request, and can
misbehave the ways hostile or broken servers do: cut a body short once, stream an endless body,
trickle a byte at a time, or announce a huge length.
"""

from __future__ import annotations

import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.statuses: list[int] = []
        self.supports_range = True
        self.cut_next_after: int | None = None  # send only this many body bytes, once
        #: path -> "endless" (no length, never ends), "trickle" (a byte every 0.2 s),
        #: "huge" (announces 1 TB), "mirror" (3 KiB every 0.05 s of a 100 MB file: passes any
        #: stall window, never finishes in reasonable time)
        self.behaviour: dict[str, str] = {}
        self.stopping = False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address) -> None:  # a client hanging up is fine
        pass


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        wanted = self.headers.get("Range")
        server.requests.append((self.path, wanted))
        behaviour = server.behaviour.get(self.path)
        if behaviour is not None:
            self._misbehave(behaviour)
            return
        data = server.files.get(self.path)
        if data is None:
            server.statuses.append(404)
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and server.supports_range:
            start = int(match[1])
            if start >= len(data):
                server.statuses.append(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            server.statuses.append(206)
        else:
            self.send_response(200)
            server.statuses.append(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_next_after is not None:
            body, server.cut_next_after = body[: server.cut_next_after], None
        self.wfile.write(body)

    def _misbehave(self, behaviour: str) -> None:
        self.server.statuses.append(200)
        self.send_response(200)
        if behaviour == "huge":
            self.send_header("Content-Length", str(10**12))
        elif behaviour == "trickle":
            self.send_header("Content-Length", str(100_000))
        elif behaviour == "mirror":
            self.send_header("Content-Length", str(100_000_000))
        self.end_headers()
        chunk, pause = (b"x" * 65536, 0.0) if behaviour in ("endless", "huge") else (b"x", 0.2)
        if behaviour == "mirror":
            chunk, pause = b"x" * 3072, 0.05
        try:
            while not self.server.stopping:
                self.wfile.write(chunk)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:  # the client gave up: that is the point
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass
