"""The uploader honours the standard proxy variables (HTTP(S)_PROXY / http(s)_proxy, NO_PROXY) as botocore users
expect.

A minimal forwarding HTTP proxy runs in this process on 127.0.0.1, recording (method, target) for each request. To
a plain-http endpoint the uploader sends absolute-form requests (``PUT http://127.0.0.1:PORT/bucket/key HTTP/1.1``),
which it forwards unchanged (SigV4 signs the Host header) to the origin they name. To an https endpoint it opens a
``CONNECT 127.0.0.1:PORT`` tunnel, which the proxy relays byte for byte: TLS runs end to end through it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from datagen import write_movies, write_series
from faultproxy import FaultProxy
from seaweed import SeaweedServer, free_port
from test_cli import DATE, MOVIES, SERIES, body, keys_in, run_uploader, uploader_env

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Per connection, not end to end: never forwarded (RFC 9110 section 7.6.1). Transfer-Encoding is dropped because
# both bodies are relayed whole with a Content-Length; Expect because the proxy has already read the request body.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_SECONDS = 30.0
IDLE_SECONDS = 30.0


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _ProxyHandler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" answered to "Expect: 100-continue"
    timeout = IDLE_SECONDS

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self) -> None:
        server = self.server
        assert isinstance(server, _ProxyServer)
        with server.lock:
            server.seen.append((self.command, self.path))

    def _refuse(self, status: int, reason: str) -> None:
        payload = reason.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def _request_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers["Content-Length"]))

    def _tunnel(self) -> None:
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=UPSTREAM_SECONDS)
        except (OSError, ValueError) as error:
            self._refuse(502, f"cannot connect to {self.path}: {error!r}")
            return
        self.send_response_only(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            relay = threading.Thread(target=_relay, args=(upstream, self.connection), daemon=True)
            relay.start()
            _relay(self.connection, upstream)
            relay.join(UPSTREAM_SECONDS)

    def _forward(self) -> None:
        self._record()
        if self.command == "CONNECT":
            self._tunnel()
            return
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self._refuse(400, f"not a proxy request (absolute-form http URI expected): {self.path}")
            return
        has_body = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        payload = self._request_body() if has_body else None
        skipped = HOP_BY_HOP | {"content-length"}
        headers = {name: value for name, value in self.headers.items() if name.lower() not in skipped}
        if payload is not None:
            headers["Content-Length"] = str(len(payload))
        origin_path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=UPSTREAM_SECONDS)
        try:
            # The client's Host header is kept (http.client adds none when one is given): SigV4 signed it.
            upstream.request(self.command, origin_path, body=payload, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            status, reason, answer_headers = response.status, response.reason, response.getheaders()
        except (OSError, http.client.HTTPException) as error:
            self._refuse(502, f"upstream {target.netloc} failed: {error!r}")
            return
        finally:
            upstream.close()
        self.send_response_only(status, reason)  # the origin's own Date and Server follow
        for name, value in answer_headers:
            lowered = name.lower()
            if lowered in HOP_BY_HOP or (lowered == "content-length" and self.command != "HEAD"):
                continue
            self.send_header(name, value)
        if self.command != "HEAD" and status not in (204, 304) and not 100 <= status < 200:
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_CONNECT = do_OPTIONS = do_PATCH = _forward


def _relay(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until either side closes; then end the other direction too."""
    try:
        for data in iter(lambda: source.recv(65536), b""):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_RDWR)


class ForwardProxy:
    """A forwarding HTTP proxy on ``127.0.0.1:port`` (a free port below 32768); a context manager.

    ``requests()``: (method, absolute target) of every request received so far, in arrival order.
    """

    def __init__(self) -> None:
        self.server = _ProxyServer(free_port())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="forward-proxy", daemon=True)

    def requests(self) -> list[tuple[str, str]]:
        with self.server.lock:
            return list(self.server.seen)

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_movies(folder / "movies.csv", 30_000, seed=11)
    write_series(folder / "series.csv", 20_000, seed=12)
    return folder


EXPECTED = {f"{MOVIES}/movies.csv": "movies.csv", f"{SERIES}/series.csv": "series.csv"}


def upload(s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, **proxy_env: str) -> None:
    """Run the uploader with these proxy variables; it must succeed and leave exactly the expected objects."""
    env = uploader_env(s3_server, BUCKET_NAME=bucket, **proxy_env)
    run = run_uploader(s3_server, ["--source", str(source), "--date", DATE], env)
    assert run.code == 0, run.out + run.err
    assert run.summary().startswith("Resumo: 2 enviados, 0 ignorados sem alterações, 0 com falha")
    assert keys_in(admin_s3, bucket) == set(EXPECTED)
    for key, relative in EXPECTED.items():
        assert body(admin_s3, bucket, key) == (source / relative).read_bytes(), key


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_requests_go_through_the_http_proxy(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, proxy: ForwardProxy, variable: str
) -> None:
    upload(s3_server, admin_s3, bucket, source, **{variable: proxy.url})
    seen = proxy.requests()
    origin = f"{s3_server.endpoint}/"
    assert seen, "the proxy saw no request"
    assert all(target.startswith(origin) for _, target in seen), seen
    put_paths = {unquote(urlsplit(target).path) for method, target in seen if method == "PUT"}
    assert {f"/{bucket}/{key}" for key in EXPECTED} <= put_paths, seen
    listed = {
        parse_qs(urlsplit(target).query).get("prefix", [""])[0]
        for method, target in seen
        if method == "GET" and urlsplit(target).path == f"/{bucket}" and "list-type=2" in target
    }
    assert {f"{MOVIES}/", f"{SERIES}/"} <= listed, seen


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_bypasses_the_proxy(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, proxy: ForwardProxy, variable: str
) -> None:
    upload(s3_server, admin_s3, bucket, source, HTTP_PROXY=proxy.url, **{variable: "127.0.0.1"})
    assert proxy.requests() == []


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_an_https_endpoint_is_reached_through_a_connect_tunnel(
    s3_server: SeaweedServer,
    admin_s3: S3Client,
    bucket: str,
    source: Path,
    proxy: ForwardProxy,
    private_ca: tuple[Path, ssl.SSLContext],
    variable: str,
) -> None:
    ca, context = private_ca
    with FaultProxy(s3_server.endpoint, tls=context) as tls_endpoint:
        upload(
            s3_server,
            admin_s3,
            bucket,
            source,
            AWS_ENDPOINT_URL=tls_endpoint.endpoint,
            AWS_CA_BUNDLE=str(ca),
            **{variable: proxy.url},
        )
        puts = [request for request in tls_endpoint.requests if request.method == "PUT"]
    tunnel = tls_endpoint.endpoint.removeprefix("https://")
    seen = proxy.requests()
    assert seen and set(seen) == {("CONNECT", tunnel)}, seen  # every request, PUTs included, went through it
    assert len(puts) == len(EXPECTED)
