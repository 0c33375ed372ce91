"""What the store says when the S3 server is down, and when it is up but failing."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genaug.services.store import S3Config, Store, StoreError


class _Failing(BaseHTTPRequestHandler):
    """Answers every request 500, as SeaweedFS does when it has no volume left to write."""

    def _fail(self):
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_HEAD = do_POST = _fail

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def failing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_that_answers_500_is_named_failing_not_unreachable(failing_server):
    store = Store(S3Config(failing_server, "k", "s", False), retries=1)
    with pytest.raises(StoreError) as err:
        store.put_bytes("genaug-datasets", "a.bin", b"x")
    assert "kept failing" in str(err.value) and "s3.log" in str(err.value)
    assert "make up" not in str(err.value)


def test_a_server_that_is_down_is_named_unreachable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = Store(S3Config(f"127.0.0.1:{port}", "k", "s", False), timeout_s=2, retries=0)
    with pytest.raises(StoreError, match="cannot reach .*make up"):
        store.put_bytes("genaug-datasets", "a.bin", b"x")
