"""PutSender against a scripted HTTP server on 127.0.0.1: which answers are retried (by the client's own retry
handler), how many attempts AWS_MAX_ATTEMPTS allows, when Expect: 100-continue is sent, and that malformed or
hostile answers end as botocore's errors, never as a crash."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, SSLError
from seaweed import free_port
from urllib3.exceptions import SSLError as URLLib3SSLError

import s3_landing
from s3_landing import config
from s3_landing.transfer import sending

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
OK = b'HTTP/1.1 200 OK\r\nETag: "etag-1"\r\nContent-Length: 0\r\n\r\n'


def s3_error(status: str, code: str, extra: str = "") -> bytes:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code>{extra}<Message>scripted</Message></Error>".encode()
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer(socketserver.ThreadingTCPServer):
    """Answers each request with the next scripted answer (the last one repeats) and records the request heads.
    An answer starting with REFUSE is sent as soon as the head arrives, without reading the body or sending
    100 Continue, and the connection is closed: a server refusing an upload early."""

    daemon_threads = True
    allow_reuse_address = True
    REFUSE = b"REFUSE:"

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.heads: list[dict[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), ScriptedHandler)

    def next_answer(self, head: dict[str, str]) -> bytes:
        with self.lock:
            self.heads.append(head)
            return self.answers[min(len(self.heads), len(self.answers)) - 1]


class ScriptedHandler(socketserver.StreamRequestHandler):
    server: ScriptedServer

    def handle(self) -> None:
        while True:
            head = self.read_head()
            if head is None:
                return
            answer = self.server.next_answer(head)
            if answer.startswith(ScriptedServer.REFUSE):
                self.wfile.write(answer[len(ScriptedServer.REFUSE) :])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if head.get("expect") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            self.rfile.read(int(head.get("content-length", "0")))
            self.wfile.write(answer)
            self.wfile.flush()

    def read_head(self) -> dict[str, str] | None:
        request_line = self.rfile.readline()
        if not request_line:
            return None
        head = {"request-line": request_line.decode("latin-1").strip()}
        for line in iter(self.rfile.readline, b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip()
        return head


@pytest.fixture
def script() -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def serve(servers: list[ScriptedServer], *answers: bytes) -> ScriptedServer:
    server = ScriptedServer(list(answers))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server


def sender_for(server: ScriptedServer, max_attempts: int = 2, mode: str = "standard") -> sending.PutSender:
    session = config.new_session()
    session.set_credentials("AKIAUNIT", "unit-secret")
    retries: Any = {"mode": mode, "total_max_attempts": max_attempts}
    client_config = Config(signature_version="s3v4", retries=retries, connect_timeout=2, read_timeout=2)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    client = cast("S3Client", session.create_client("s3", "us-east-1", endpoint_url=endpoint, config=client_config))
    return sending.PutSender(client, session, "lake", 4, threading.Event())


def put(sender: sending.PutSender, size: int = 10) -> str:
    return sender.put("Raw/x.csv", b"x" * size, b"\0" * 16, {}, {"content-type": "text/csv"})


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_throttled_answer_is_retried_and_the_etag_returned(script: list[ScriptedServer]) -> None:
    server = serve(script, s3_error("503 Slow Down", "SlowDown"), OK)
    assert put(sender_for(server)) == '"etag-1"'
    assert len(server.heads) == 2


def test_a_refusal_is_not_retried(script: list[ScriptedServer]) -> None:
    server = serve(script, s3_error("403 Forbidden", "AccessDenied"))
    with pytest.raises(ClientError) as refused:
        put(sender_for(server, max_attempts=5))
    assert error_code(refused) == "AccessDenied"
    assert len(server.heads) == 1


@pytest.mark.parametrize("mode", ["standard", "adaptive", "legacy"])
def test_attempts_stop_at_the_clients_max_attempts_in_every_retry_mode(script: list[ScriptedServer], mode: str) -> None:
    server = serve(script, s3_error("500 Internal Server Error", "InternalError"))
    with pytest.raises(ClientError) as failed:
        put(sender_for(server, max_attempts=3, mode=mode))
    assert error_code(failed) == "InternalError"
    assert len(server.heads) == 3


def test_expect_100_continue_only_on_bodies_of_a_mebibyte_and_more(script: list[ScriptedServer]) -> None:
    server = serve(script, OK)
    sender = sender_for(server)
    put(sender, MIB - 1)
    put(sender, MIB)
    small, large = server.heads
    assert "expect" not in small
    assert large["expect"] == "100-continue"
    assert all(head["user-agent"].startswith(f"upload_s3/{s3_landing.__version__} ") for head in server.heads)
    assert all(head["request-line"] == "PUT /lake/Raw/x.csv HTTP/1.1" for head in server.heads)


def test_an_early_refusal_of_a_large_body_is_read_as_what_it_is(script: list[ScriptedServer]) -> None:
    server = serve(script, ScriptedServer.REFUSE + s3_error("403 Forbidden", "AccessDenied"))
    with pytest.raises(ClientError) as refused:
        put(sender_for(server), 4 * MIB)
    assert error_code(refused) == "AccessDenied"
    assert len(server.heads) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\nshort",  # a huge length, then the end
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",  # not HTTP at all
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a broken chunked body
    ],
    ids=["huge-length", "not-http", "bad-chunk"],
)
def test_a_malformed_answer_is_a_connection_error_retried_then_reported(
    script: list[ScriptedServer], answer: bytes
) -> None:
    server = serve(script, ScriptedServer.REFUSE + answer)
    with pytest.raises(BotoCoreError):
        put(sender_for(server, max_attempts=2))
    assert len(server.heads) == 2


@pytest.mark.parametrize(
    "answer",
    [
        s3_error("301 Moved Permanently", "PermanentRedirect"),
        s3_error("400 Bad Request", "AuthorizationHeaderMalformed", "<Region>sa-east-1</Region>"),
    ],
    ids=["permanent-redirect", "wrong-signing-region"],
)
def test_a_wrong_region_answer_is_reported_not_redirected(script: list[ScriptedServer], answer: bytes) -> None:
    server = serve(script, answer)
    with pytest.raises(ClientError) as refused:
        put(sender_for(server, max_attempts=3))
    assert error_code(refused) in ("PermanentRedirect", "AuthorizationHeaderMalformed")
    assert len(server.heads) == 1


def test_an_answer_of_more_than_a_mebibyte_is_refused_not_buffered(script: list[ScriptedServer]) -> None:
    body = b"x" * (MIB + 1)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    server = serve(script, answer)
    with pytest.raises(ConnectionClosedError):
        put(sender_for(server, max_attempts=1))


def test_only_a_certificate_failure_counts_as_untrusted() -> None:
    unverified = SSLError(endpoint_url="https://x", error=URLLib3SSLError(ssl.SSLCertVerificationError(1, "bad")))
    closed = SSLError(endpoint_url="https://x", error=URLLib3SSLError(ssl.SSLEOFError(8, "EOF in violation")))
    assert sending.is_certificate_failure(unverified)
    assert not sending.is_certificate_failure(closed)
    assert not sending.is_certificate_failure(ConnectionClosedError(endpoint_url="https://x"))
