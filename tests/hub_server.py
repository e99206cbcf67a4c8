"""A stand-in for the Hugging Face Hub on 127.0.0.1: the endpoints ``huggingface_hub`` calls to
create a repository, upload a folder (as "regular" files inlined in the commit) and download a
snapshot. Only the network is replaced: the library's real client code runs against it
(``HF_ENDPOINT`` points there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos: dict[str, dict[str, bytes]] = {}  # repo id -> path -> content
        self.commits: dict[str, str] = {}  # repo id -> head commit sha
        self.created: dict[str, dict] = {}  # repo id -> its create request (type, sdk, ...)
        self.calls: list[tuple[str, str]] = []  # (method, path)
        self.tokens: list[str | None] = []
        #: file name -> "endless" (GET streams without end) or "trickle" (a byte every 0.1 s);
        #: HEAD still announces the real file
        self.behaviour: dict[str, str] = {}
        self.stopping = False
        #: file name -> the ETag announced (an LFS file's is its SHA-256); default: git's SHA-1
        self.etags: dict[str, str] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: object = None,
        headers: dict | None = None,
        raw: bytes | None = None,
        head: bool = False,
    ) -> None:
        data = (
            raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        )
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if raw is None else "application/octet-stream"
        )
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _record(self, method: str) -> str:
        path = urlsplit(self.path).path
        self.server.calls.append((method, path))
        self.server.tokens.append(self.headers.get("Authorization"))
        return path

    def do_POST(self) -> None:  # noqa: N802
        path = self._record("POST")
        body = self._body()
        s = self.server
        if path == "/api/repos/create":
            request = json.loads(body)
            namespace = request.get("organization") or request.get("namespace") or "user"
            name = request["name"]
            repo = name if "/" in name else f"{namespace}/{name}"
            s.repos.setdefault(repo, {})
            s.created[repo] = request
            self._send(200, {"url": f"{s.endpoint}/{repo}", "name": repo})
            return
        if path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            front = content.split("---")[1] if content.startswith("---") else ""
            try:
                yaml.safe_load(front)
                self._send(200, {"errors": [], "warnings": []})
            except yaml.YAMLError as exc:
                self._send(400, {"error": str(exc)})
            return
        m = re.fullmatch(r"/api/(?:models|spaces)/(.+?/.+?)/preupload/(.+)", path)
        if m:
            files = json.loads(body)["files"]
            answer = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                for f in files
            ]
            self._send(200, {"files": answer, "commitOid": s.commits.get(m[1])})
            return
        m = re.fullmatch(r"/api/(?:models|spaces)/(.+?/.+?)/commit/(.+)", path)
        if m:
            repo = m[1]
            if repo not in s.repos:
                self._send(404, {"error": "Repository not found"})
                return
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    s.repos[repo][item["value"]["path"]] = base64.b64decode(
                        item["value"]["content"]
                    )
            digest = hashlib.sha1(json.dumps(sorted(s.repos[repo])).encode() + body).hexdigest()
            s.commits[repo] = digest
            self._send(
                200,
                {
                    "commitUrl": f"{s.endpoint}/{repo}/commit/{digest}",
                    "commitOid": digest,
                    "pullRequestUrl": None,
                },
            )
            return
        self._send(404, {"error": f"no such endpoint {path}"})

    def _file(self, head: bool) -> None:
        path = unquote(self._record("HEAD" if head else "GET"))
        s = self.server
        m = re.fullmatch(r"/api/models/(.+?/.+?)(?:/revision/(.+))?", path)
        if m and "/tree/" not in path:
            repo = m[1]
            if repo not in s.commits:
                self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                return
            siblings = [{"rfilename": p} for p in sorted(s.repos[repo])]
            self._send(
                200,
                {
                    "id": repo,
                    "modelId": repo,
                    "sha": s.commits[repo],
                    "siblings": siblings,
                    "private": False,
                    "tags": [],
                    "downloads": 0,
                    "likes": 0,
                },
            )
            return
        m = re.fullmatch(r"/api/models/(.+?/.+?)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            repo = m[1]
            entries = [
                {"type": "file", "path": p, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                for p, c in sorted(s.repos.get(repo, {}).items())
            ]
            self._send(200, entries)
            return
        m = re.fullmatch(r"/(.+?/.+?)/resolve/([^/]+)/(.+)", path)
        if m and m[1] not in s.repos:  # as the Hub: a missing repository, not a missing file
            self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return
        if m and m[1] in s.repos and m[3] in s.repos[m[1]]:
            content = s.repos[m[1]][m[3]]
            headers = {
                "X-Repo-Commit": s.commits[m[1]],
                "ETag": f'"{s.etags.get(m[3]) or hashlib.sha1(content).hexdigest()}"',
            }
            behaviour = s.behaviour.get(m[3])
            if behaviour is not None and not head:
                self._misbehave(behaviour, headers)
                return
            self._send(200, raw=content, headers=headers, head=head)
            return
        self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})

    def _misbehave(self, behaviour: str, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        chunk, pause = (b"x" * 65536, 0.0) if behaviour == "endless" else (b"x", 0.1)
        try:
            while not self.server.stopping:
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:  # the client gave up: that is the point
            pass
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._file(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._file(head=True)
