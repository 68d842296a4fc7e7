"""FAKE GitHub and GitLab APIs on loopback, for `tfreview comment` tests: no real forge can run here.

Only the documented endpoints tfreview uses, with the documented shapes (the fields the clients read):
- GitHub REST (docs.github.com/rest/issues/comments): `GET/POST /repos/{owner}/{repo}/issues/{n}/comments`,
  `PATCH /repos/{owner}/{repo}/issues/comments/{id}`; auth `Authorization: token T` or `Bearer T`.
- GitLab REST v4 (docs.gitlab.com/api/notes): `GET/POST /api/v4/projects/:id/merge_requests/:iid/notes`,
  `PUT /api/v4/projects/:id/merge_requests/:iid/notes/:note_id`; auth `PRIVATE-TOKEN` or `JOB-TOKEN`.
A wrong token gets 401, an unknown repository or request number 404, anything else 404 too.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass
class FakeForge:
    """One fake forge: `kind` github|gitlab, the repository/project and request number it knows, its token."""

    kind: str
    project: str
    number: int
    token: str
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, headers)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        root = f"http://127.0.0.1:{self.server.server_address[1]}"
        return root + ("/api/v4" if self.kind == "gitlab" else "")

    def start(self) -> "FakeForge":
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def authorised(self, headers: dict[str, str]) -> bool:
        if self.kind == "github":
            return headers.get("authorization", "") in (f"token {self.token}", f"Bearer {self.token}")
        return self.token in (headers.get("private-token"), headers.get("job-token"))

    def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.kind == "github":
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
            if m and m.group(1) == self.project and int(m.group(2)) == self.number:
                if method == "GET":
                    return 200, list(self.comments.values())
                if method == "POST":
                    return 201, self._add(body["body"], f"/repos/{self.project}/issues/comments")
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
            if m and m.group(1) == self.project and method == "PATCH" and int(m.group(2)) in self.comments:
                self.comments[int(m.group(2))]["body"] = body["body"]
                return 200, self.comments[int(m.group(2))]
            return 404, {"message": "Not Found"}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", path)
        if not m or unquote(m.group(1)) != self.project or int(m.group(2)) != self.number:
            return 404, {"message": "404 Not found"}
        if m.group(3) is None and method == "GET":
            return 200, list(self.comments.values())
        if m.group(3) is None and method == "POST":
            return 201, self._add(body["body"], "")
        if m.group(3) and method == "PUT" and int(m.group(3)) in self.comments:
            self.comments[int(m.group(3))]["body"] = body["body"]
            return 200, self.comments[int(m.group(3))]
        return 404, {"message": "404 Not found"}

    def _add(self, text: str, url_path: str) -> dict[str, Any]:
        cid = 1000 + len(self.comments) + 1
        doc: dict[str, Any] = {"id": cid, "body": text}
        if self.kind == "github":
            root = self.url
            doc |= {"url": f"{root}{url_path}/{cid}", "html_url": f"https://github.example/{self.project}/pull/"
                    f"{self.number}#issuecomment-{cid}", "user": {"login": "github-actions[bot]", "id": 41898282}}
        else:
            doc |= {"noteable_iid": self.number, "noteable_type": "MergeRequest", "system": False,
                    "author": {"username": "project_bot"}}
        self.comments[cid] = doc
        return doc


def _handler(forge: FakeForge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            forge.requests.append((self.command, path, headers))
            length = int(headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not forge.authorised(headers):
                status, doc = 401, {"message": "Bad credentials" if forge.kind == "github" else "401 Unauthorized"}
            else:
                status, doc = forge.route(self.command, path, json.loads(raw) if raw else {})
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    return Handler
