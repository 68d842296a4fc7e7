"""A local webhook receiver on loopback for notification tests and the demo (no outside network).

Real HTTP: apprise posts to it as it would to Slack, Mattermost or any JSON webhook. The first path segment
chooses how it answers: `/slow/...` waits `slow_s` before answering, `/fail/...` answers 500, anything else 200.
It is also an HTTP proxy for HTTPS (CONNECT, TLS with a throw-away self-signed certificate): with
`HTTPS_PROXY=http://127.0.0.1:PORT`, apprise's own `slack://` plugin (with `?verify=no`) posts here what it would
post to hooks.slack.com. `python tests/notify_receiver.py LOG PORTFILE` serves until killed, appending one JSON
line per request to LOG (the demo uses it).
"""
from __future__ import annotations

import json
import socket
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    host: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _tls_context() -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate (cryptography), for the CONNECT tunnel."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notify-receiver.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    folder = Path(tempfile.mkdtemp(prefix="notify-receiver-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return ctx


class Receiver:
    """Serves on 127.0.0.1 (a free port) in a thread; `received` lists what arrived, in order."""

    def __init__(self, slow_s: float = 30.0, log: Path | None = None) -> None:
        self.received: list[Received] = []
        self.slow_s = slow_s
        self.log = log
        self._tls: ssl.SSLContext | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel_host = ""

            def do_CONNECT(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self.tunnel_host = self.path.split(":")[0]
                tls = receiver.tls().wrap_socket(self.connection, server_side=True)
                self.connection = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")
                self.close_connection = False

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                host = self.tunnel_host or self.headers.get("Host", "")
                got = Received(host, self.path, dict(self.headers), body)
                receiver.received.append(got)
                if receiver.log is not None:
                    with receiver.log.open("a") as f:
                        f.write(json.dumps({"host": host, "path": self.path, "body": body.decode("utf-8", "replace")})
                                + "\n")
                kind = self.path.strip("/").split("/")[0]
                if "/slow/" in f"/{self.path.lstrip('/')}" or kind == "slow":
                    time.sleep(receiver.slow_s)
                status = 500 if kind == "fail" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = _tls_context()
        return self._tls

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    log, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    with Receiver(slow_s=30.0, log=log) as r:
        port_file.write_text(str(r.port))
        threading.Event().wait()
