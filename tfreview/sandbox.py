"""The local AWS: moto served in-process on loopback, for demos (`tfreview sandbox`) and tests.

moto's backends are process-global: every Sandbox started in one process shares the same fake AWS account.
Only loopback addresses are accepted, so nothing here ever listens beyond this machine.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from tfreview.errors import BadInput

FAKE_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Sandbox:
    """A running moto server. `endpoint` is "http://HOST:PORT"; `port` the TCP port it listens on."""

    host: str
    port: int
    _server: Any = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point terraform and boto3 at this sandbox (fake credentials included)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **FAKE_CREDENTIALS}

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(host: str = "127.0.0.1", port: int = 0) -> Sandbox:
    """Start moto on `host`:`port` (port 0 = any free port) in a background thread; returns at once when it listens."""
    if host not in _LOOPBACK:
        raise BadInput(f"sandbox host {host!r} is not a loopback address", "use 127.0.0.1")
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    import logging

    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per API call drowns the output

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    try:
        server.start()
    except OSError as exc:  # port in use
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}", "choose another --port") from exc
    bound_host, bound_port = server.get_host_and_port()
    return Sandbox(host=host, port=bound_port, _server=server)


def run_sandbox(port: int = 5000, host: str = "127.0.0.1") -> None:
    """Serve the sandbox until Ctrl-C, after printing the `export` lines that point terraform and boto3 at it."""
    sandbox = start_sandbox(host=host, port=port)
    try:
        for key, value in sandbox.env().items():
            print(f"export {key}={value}")
        print(f"# sandbox listening on {sandbox.endpoint}; Ctrl-C to stop", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
