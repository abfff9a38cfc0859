"""A fault-injecting HTTP proxy for tests: between the uploader and SeaweedFS, on 127.0.0.1.

Each client connection is served by its own thread, one request at a time: the proxy reads the whole request
(head and body, ``Content-Length`` or ``Transfer-Encoding: chunked``), asks its rule whether to inject a fault,
and otherwise forwards the bytes unchanged (SigV4 signs the Host header) over a fresh upstream connection and
relays the answer. Faults::

    reset-before  reset the client connection (RST) without forwarding the request
    reset-after   forward the request, then reset the client connection instead of answering
    cut           forward the request, then send the first half of the answer and reset the connection
    500 / 503     answer InternalError / SlowDown with an S3 XML error body, without forwarding
    409           answer ConditionalRequestConflict (another conditional write to the key in progress), without
                  forwarding
    501           answer NotImplemented (a store refusing a header it does not implement), without forwarding
    stall         forward the request, then hold the answer for ``stall_seconds`` before relaying it
    corrupt       forward the request with one byte of its body changed (the bytes the server must verify)

``refuse_from = N`` makes the proxy refuse every PUT whose ``Content-Length`` is N or more as soon as its head
arrives (recorded with the fault ``refuse``): ``403 AccessDenied`` and no ``100 Continue``, as S3 does for a bucket
policy's or an expired token's refusal; then the body is read and dropped before the connection closes (a
lingering close, as HTTP servers do so that a client still sending hears the answer instead of a reset).

``strict_completions = True`` answers a CompleteMultipartUpload of an upload the server already completed with
``404 NoSuchUpload`` without forwarding it, as AWS does (SeaweedFS completes it again and answers 200).

``rewrite_listings``, a function of the XML body, changes every ListObjectsV2 answer on its way to the client
(the ``Content-Length`` follows), to play a store that lists other ETags than SeaweedFS does. ``rewrite_answer``,
a function of the request and the raw answer (head and body as received), changes every answer the proxy forwards:
say, to drop an ETag and a checksum from HeadObject answers, or to give every object another ETag.
``edit_head``, a function of the request and its raw head, changes the head forwarded (say, to drop a header, as a
store that ignores it would; only for a server that does not check signatures). ``before_forward``, a function of
the request, runs before each request is forwarded and may block it: say, to hold one PUT until another client
has sent one too.

``sink = True`` makes the proxy answer UploadPart and CompleteMultipartUpload itself (recorded with the fault
``sink``; the rule is not asked): a part's body is read and discarded, its MD5 and SHA-256 taken on the way, and the
answer is its ETag (and its checksum, as S3 echoes a part's x-amz-checksum-sha256), or BadDigest when the
checksum it declared is not its bytes'; the completion gets S3's XML result. What it saw is in ``sunk_parts`` and
``completions``. Everything else is forwarded, so a client can upload more bytes than the server could store in
test time.

Usage::

    with FaultProxy(server.endpoint) as proxy:
        proxy.faults = every_nth(10, ["reset-before", "500"])
        ...  # point the uploader at proxy.endpoint
        proxy.stop_forwarding(after=5)  # the server goes away after 5 more requests
        proxy.resume_forwarding()

``tls``: an ``ssl.SSLContext`` (server side) makes the proxy terminate TLS, so ``endpoint`` is ``https://``.
Everything is bounded: sockets time out, stalls end at :meth:`stop`, threads are daemons.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import BinaryIO, Callable, Literal, Optional
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, unescape

from seaweed import free_port

__all__ = ["Completion", "Fault", "FaultProxy", "Request", "Rule", "SunkPart", "every_nth", "first_attempts"]

Fault = Literal["reset-before", "reset-after", "cut", "409", "500", "501", "503", "stall", "corrupt", "sink", "refuse"]
PRESIGNATURE_FIELDS = ("x-amz-", "signature=", "expires=", "awsaccesskeyid=")  # SigV4 and SigV2 query fields
MAX_HEAD_BYTES = 64 * 1024
SINK_BLOCK = 1024 * 1024  # a sunk body is read in blocks of this size, never held whole
IDLE_SECONDS = 60.0
UPSTREAM_SECONDS = 30.0
ERRORS = {
    "409": (b"409 Conflict", b"ConditionalRequestConflict", b"A conflicting operation is in progress on this object."),
    "500": (b"500 Internal Server Error", b"InternalError", b"We encountered an internal error. Please try again."),
    "501": (b"501 Not Implemented", b"NotImplemented", b"A header you provided is not implemented."),
    "503": (b"503 Slow Down", b"SlowDown", b"Please reduce your request rate."),
}


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as the proxy saw it: its arrival number (from 1), method, target and injected fault."""

    number: int
    method: str
    target: str
    authorization: str = ""  # the scheme of the Authorization header, e.g. AWS4-HMAC-SHA256
    fault: Fault | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)  # names in lower case

    @property
    def signed_headers(self) -> set[str]:
        """The header names its SigV4 Authorization header signs."""
        signed = self.headers.get("authorization", "").partition("SignedHeaders=")[2].partition(",")[0]
        return set(signed.split(";")) if signed else set()

    @property
    def path(self) -> str:
        """The target without its query, e.g. ``/bucket/Raw/Local/CSV/Movies/2022/05/02/movies.csv``."""
        return unquote(self.target.partition("?")[0])

    @property
    def resource(self) -> str:
        """Method, path and query less any presigned signature: the same for every attempt of a request (a
        presigned URL is signed anew, with a new date or expiry, for each attempt)."""
        query = self.target.partition("?")[2].split("&")
        kept = [field for field in query if not field.lower().startswith(PRESIGNATURE_FIELDS)]
        return f"{self.method} {self.path}?{'&'.join(sorted(kept))}"

    @property
    def is_sigv4(self) -> bool:
        """Signed with AWS Signature Version 4, in the Authorization header or in a presigned query."""
        return self.authorization == "AWS4-HMAC-SHA256" or "X-Amz-Algorithm=AWS4-HMAC-SHA256" in self.target

    @property
    def is_part(self) -> bool:
        """An UploadPart request of a multipart upload."""
        return self.method == "PUT" and "partNumber=" in self.target

    @property
    def is_create(self) -> bool:
        """A CreateMultipartUpload request (botocore writes ``?uploads``, obstore ``?uploads=``)."""
        return self.method == "POST" and self.target.partition("?")[2] in ("uploads", "uploads=")

    @property
    def is_complete(self) -> bool:
        """A CompleteMultipartUpload request."""
        return self.method == "POST" and "uploadId=" in self.target

    def query(self, field: str) -> str:
        return parse_qs(self.target.partition("?")[2]).get(field, [""])[0]


@dataclasses.dataclass(frozen=True)
class SunkPart:
    """A part the proxy answered itself: MD5 (hex) and SHA-256 (base64) of the bytes received, and the SHA-256 its
    x-amz-checksum-sha256 header declared."""

    upload_id: str
    number: int
    length: int
    md5: str
    sha256: str
    declared_sha256: str


@dataclasses.dataclass(frozen=True)
class Completion:
    """A CompleteMultipartUpload the proxy answered itself: the parts it listed, (number, ETag), and its answer."""

    upload_id: str
    path: str
    parts: tuple[tuple[int, str], ...]
    etag: str
    status: int


Rule = Callable[[Request], Optional[Fault]]


def no_faults(request: Request) -> Fault | None:
    return None


def every_nth(n: int, kinds: Sequence[Fault]) -> Rule:
    """Faults on requests n, 2n, 3n... (so a share of 1/n), the kinds taking turns."""

    def rule(request: Request) -> Fault | None:
        if request.number % n:
            return None
        return kinds[(request.number // n - 1) % len(kinds)]

    return rule


def first_attempts(kinds: Sequence[Fault], when: Callable[[Request], bool]) -> Rule:
    """Faults on the first attempt of each request matching ``when`` (its retries pass), kinds taking turns.
    Rules are called one request at a time."""
    seen: set[str] = set()

    def rule(request: Request) -> Fault | None:
        if not when(request) or request.resource in seen:
            return None
        seen.add(request.resource)
        return kinds[(len(seen) - 1) % len(kinds)]

    return rule


class Closed(Exception):
    """The peer closed the connection before a whole message arrived."""


@dataclasses.dataclass
class Message:
    """An HTTP request or response: the raw bytes as received, and what the proxy needs to know of them."""

    raw: bytes
    start_line: str
    headers: dict[str, str]

    def says_close(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


def read_head(reader: BinaryIO) -> Message | None:
    """The start line and headers, or None when the peer closed the connection between messages."""
    lines: list[bytes] = []
    while True:
        line = reader.readline(MAX_HEAD_BYTES)
        if not line:
            if lines:
                raise Closed("connection closed inside a message head")
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
        if sum(map(len, lines)) > MAX_HEAD_BYTES:
            raise Closed("message head too long")
    headers = {}
    for line in lines[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Message(b"".join(lines), lines[0].decode("latin-1").strip(), headers)


def read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise Closed("connection closed inside a message body")
    return data


def read_chunked(reader: BinaryIO) -> bytes:
    """A chunked body as received, up to and including its trailer section."""
    parts: list[bytes] = []
    while True:
        size_line = reader.readline(MAX_HEAD_BYTES)
        if not size_line:
            raise Closed("connection closed inside a chunked body")
        parts.append(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            break
        parts.append(read_exactly(reader, size + 2))
    while True:  # trailer fields (botocore sends its checksum here), then an empty line
        line = reader.readline(MAX_HEAD_BYTES)
        if not line:
            raise Closed("connection closed inside a chunked trailer")
        parts.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(parts)


def is_chunked(head: Message) -> bool:
    return "chunked" in head.headers.get("transfer-encoding", "").lower()


def is_framed(head: Message) -> bool:
    """The body's end is marked (chunked or Content-Length), so the connection can carry another message."""
    return is_chunked(head) or "content-length" in head.headers


def corrupted(head: Message, body: bytes) -> bytes:
    """The body with one payload byte flipped: in the middle, or the first data byte of a chunked body."""
    if not body:
        return body
    position = body.index(b"\n") + 1 if is_chunked(head) else len(body) // 2
    return body[:position] + bytes([body[position] ^ 0xFF]) + body[position + 1 :]


def read_body(reader: BinaryIO, head: Message) -> bytes:
    """A framed body; an unframed one (only possible in a response) runs until the connection closes."""
    if is_chunked(head):
        return read_chunked(reader)
    if "content-length" in head.headers:
        return read_exactly(reader, int(head.headers["content-length"]))
    return reader.read()


def read_response(reader: BinaryIO, method: str) -> tuple[bytes, bool]:
    """The final response as received (interim 1xx ones dropped: the proxy answered 100 Continue itself),
    and whether the connection it came on may carry another exchange."""
    while True:
        head = read_head(reader)
        if head is None:
            raise Closed("upstream closed the connection without answering")
        status = int(head.start_line.split()[1])
        if status >= 200:
            break
    if method == "HEAD" or status in (204, 304):
        return head.raw, not head.says_close()
    return head.raw + read_body(reader, head), is_framed(head) and not head.says_close()


def rewritten(answer: bytes, rewrite: Callable[[bytes], bytes]) -> bytes:
    """The answer with its body rewritten and framed anew by Content-Length (a chunked body is decoded first)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if any(line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower() for line in lines):
        body = b"".join(dechunked(body))
    kept = [line for line in lines if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))]
    new_body = rewrite(body)
    return b"\r\n".join([*kept, b"Content-Length: " + str(len(new_body)).encode()]) + b"\r\n\r\n" + new_body


def dechunked(body: bytes) -> Iterator[bytes]:
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return
        yield body[:size]
        body = body[size + 2 :]


def listed_parts(body: bytes) -> tuple[tuple[int, str], ...]:
    """The (PartNumber, ETag) pairs of a CompleteMultipartUpload request body, in order."""
    pairs = []
    for block in re.findall(r"<Part>(.*?)</Part>", body.decode("utf-8"), re.DOTALL):
        number = re.search(r"<PartNumber>\s*(\d+)\s*</PartNumber>", block)
        etag = re.search(r"<ETag>(.*?)</ETag>", block, re.DOTALL)
        pairs.append((int(number[1]) if number else 0, unescape(etag[1], {"&quot;": '"'}).strip() if etag else ""))
    return tuple(pairs)


def error_response(fault: Fault, method: str) -> bytes:
    return xml_error(*ERRORS[fault], method)


def xml_error(status: bytes, code: bytes, message: bytes, method: str, close: bool = False) -> bytes:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
        + code
        + b"</Code><Message>"
        + message
        + b"</Message><RequestId>FAULTPROXY</RequestId></Error>"
    )
    head = (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/xml\r\nx-amz-request-id: FAULTPROXY\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    return head if method == "HEAD" else head + body


def drain(reader: BinaryIO, length: int) -> None:
    """Read and drop up to length bytes, in blocks, until the peer stops sending."""
    with contextlib.suppress(OSError, ValueError):
        while length > 0:
            block = reader.read(min(length, SINK_BLOCK))
            if not block:
                return
            length -= len(block)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST instead of an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """See the module docstring. ``faults`` and ``stall_seconds`` may be changed at any time."""

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None, stall_seconds: float = 5.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.tls = tls
        self.port = free_port()
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.faults: Rule = no_faults
        self.stall_seconds = stall_seconds
        self.requests: list[Request] = []
        self.injected: Counter[str] = Counter()
        self.sink = False
        self.refuse_from: int | None = None
        self.strict_completions = False
        self.rewrite_listings: Callable[[bytes], bytes] | None = None
        self.rewrite_answer: Callable[[Request, bytes], bytes] | None = None
        self.edit_head: Callable[[Request, bytes], bytes] | None = None
        self.before_forward: Callable[[Request], None] | None = None
        self._completed: set[str] = set()  # upload ids the server completed
        self.ca_file: str | None = None  # what a client must trust for this proxy's certificate, when tls is given
        self.sunk_parts: list[SunkPart] = []
        self.completions: list[Completion] = []
        self._down_after: int | None = None  # requests beyond this number are refused
        self._seen = threading.Condition()
        self._closing = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listener = self._listen()
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        """Close everything; stalled answers are dropped. Idempotent."""
        self._closing.set()
        with self._seen:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop_forwarding(self, after: int = 0) -> None:
        """Emulate the server going away once ``after`` more requests have arrived: new connections are
        refused (the listening socket closes) and later requests on open connections are reset."""
        with self._seen:
            self._down_after = len(self.requests) + after

    def resume_forwarding(self) -> None:
        """The server is back: listen again on the same port and forward as before."""
        with self._seen:
            self._down_after = None

    def wait_for(self, predicate: Callable[[Request], bool], timeout: float = 30) -> Request:
        """The first request (seen so far or arriving within ``timeout`` seconds) matching ``predicate``."""
        with self._seen:
            found = self._seen.wait_for(lambda: next(filter(predicate, self.requests), None), timeout)
        if found is None:
            raise TimeoutError(f"no matching request within {timeout} s; saw {self.requests}")
        return found

    # -- accepting -------------------------------------------------------------------------------

    def _is_down(self) -> bool:
        with self._seen:
            return self._down_after is not None and len(self.requests) >= self._down_after

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        return listener

    def _accept_loop(self) -> None:
        """Owns the listening socket: closes it while the server is 'away' and reopens it after."""
        while not self._closing.is_set():
            if self._is_down() or self._listener is None:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                if not self._is_down():
                    self._listener = self._listen()
                self._closing.wait(0.02)
                continue
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self._track(client)
            self._spawn(self._serve, client)
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads = [item for item in self._threads if item.is_alive()] + [thread]

    def _track(self, sock: socket.socket) -> None:
        with self._seen:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._seen:
            self._sockets.discard(sock)

    # -- serving ---------------------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        """One client connection, request after request, until either side closes or a fault ends it."""
        try:
            client.settimeout(IDLE_SECONDS)
            if self.tls is not None:
                self._untrack(client)
                client = self.tls.wrap_socket(client, server_side=True)
                self._track(client)
            with client.makefile("rb") as reader:
                while not self._closing.is_set() and self._serve_one(client, reader):
                    pass
        except (OSError, ValueError, Closed):
            pass  # the client went away, a handshake failed, or stop() shut the socket
        finally:
            self._untrack(client)
            with contextlib.suppress(OSError):
                client.close()

    def _serve_one(self, client: socket.socket, reader: BinaryIO) -> bool:
        """Serve one request; True when the connection stays open for another."""
        head = read_head(reader)
        if head is None:
            return False
        method, target, _ = head.start_line.split(" ", 2)
        if self._refuses(method, head):
            self._register(method, target, head.headers, refused=True)
            client.sendall(xml_error(b"403 Forbidden", b"AccessDenied", b"Access Denied", method, close=True))
            drain(reader, int(head.headers["content-length"]))
            return False
        if "100-continue" in head.headers.get("expect", "").lower():
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        request = Request(0, method, target, headers=head.headers)
        if self.sink and (request.is_part or request.is_complete) and "content-length" in head.headers:
            return self._sink(client, reader, head, request)
        body = read_body(reader, head) if is_framed(head) else b""
        fault = self._register(method, target, head.headers)
        if fault == "reset-before":
            reset(client)
            return False
        if fault in ERRORS:
            client.sendall(error_response(fault, method))
            return not head.says_close()
        if self._completed_already(request):
            client.sendall(
                xml_error(b"404 Not Found", b"NoSuchUpload", b"The specified upload does not exist.", method)
            )
            return not head.says_close()
        if self.before_forward is not None:
            self.before_forward(request)
        raw_head = head.raw if self.edit_head is None else self.edit_head(request, head.raw)
        answer, keep_open = self._forward(raw_head + (corrupted(head, body) if fault == "corrupt" else body), method)
        if self.rewrite_listings is not None and method == "GET" and "list-type=2" in target:
            answer = rewritten(answer, self.rewrite_listings)
        if self.rewrite_answer is not None:
            answer = self.rewrite_answer(request, answer)
        if request.is_complete and answer.startswith(b"HTTP/1.1 200"):
            with self._seen:
                self._completed.add(request.query("uploadId"))
        if fault == "reset-after":
            reset(client)
            return False
        if fault == "cut":
            client.sendall(answer[: len(answer) // 2])
            reset(client)
            return False
        if fault == "stall" and self._closing.wait(self.stall_seconds):
            return False
        client.sendall(answer)
        return keep_open and not head.says_close()

    def _completed_already(self, request: Request) -> bool:
        with self._seen:
            return self.strict_completions and request.is_complete and request.query("uploadId") in self._completed

    def _refuses(self, method: str, head: Message) -> bool:
        length = head.headers.get("content-length", "")
        return self.refuse_from is not None and method == "PUT" and length.isdigit() and int(length) >= self.refuse_from

    def _register(
        self, method: str, target: str, headers: dict[str, str], sink: bool = False, refused: bool = False
    ) -> Fault | None:
        """Number the request and record it with the fault the rule picks (a reset while 'away')."""
        authorization = headers.get("authorization", "").partition(" ")[0]
        with self._seen:
            number = len(self.requests) + 1
            request = Request(number, method, target, authorization, headers=headers)
            away = self._down_after is not None and number > self._down_after
            fault: Fault | None = (
                "reset-before" if away else "sink" if sink else "refuse" if refused else self.faults(request)
            )
            self.requests.append(dataclasses.replace(request, fault=fault))
            if fault is not None:
                self.injected[fault] += 1
            self._seen.notify_all()
        return fault

    def _forward(self, request: bytes, method: str) -> tuple[bytes, bool]:
        """Send the request upstream on a fresh connection; the raw answer and whether it allows keep-alive."""
        upstream = socket.create_connection(self.upstream, timeout=UPSTREAM_SECONDS)
        self._track(upstream)
        try:
            upstream.sendall(request)
            with upstream.makefile("rb") as reader:
                return read_response(reader, method)
        finally:
            self._untrack(upstream)
            upstream.close()

    # -- sinking ---------------------------------------------------------------------------------

    def _sink(self, client: socket.socket, reader: BinaryIO, head: Message, request: Request) -> bool:
        """Answer a part upload or a completion without forwarding it (see the module docstring)."""
        if self._register(request.method, request.target, head.headers, sink=True) == "reset-before":
            reset(client)
            return False
        length = int(head.headers["content-length"])
        if request.is_part:
            client.sendall(self._sink_part(reader, length, request, head.headers.get("x-amz-checksum-sha256", "")))
        else:
            client.sendall(self._complete(read_exactly(reader, length), request))
        return not head.says_close()

    def _sink_part(self, reader: BinaryIO, length: int, request: Request, declared_sha256: str) -> bytes:
        md5, sha256, block, remaining = hashlib.md5(), hashlib.sha256(), bytearray(SINK_BLOCK), length
        view = memoryview(block)
        while remaining:
            count = reader.readinto(view[: min(remaining, SINK_BLOCK)])  # type: ignore[attr-defined]
            if not count:
                raise Closed("connection closed inside a part body")
            md5.update(view[:count])
            sha256.update(view[:count])
            remaining -= count
        received_sha256 = base64.b64encode(sha256.digest()).decode()
        if declared_sha256 and declared_sha256 != received_sha256:  # S3 checks a part's checksum
            return xml_error(b"400 Bad Request", b"BadDigest", b"The SHA256 you specified did not match.", "PUT")
        number = int(request.query("partNumber"))
        part = SunkPart(request.query("uploadId"), number, length, md5.hexdigest(), received_sha256, declared_sha256)
        with self._seen:
            self.sunk_parts.append(part)
        checksum = f"x-amz-checksum-sha256: {received_sha256}\r\n" if declared_sha256 else ""
        return f'HTTP/1.1 200 OK\r\nETag: "{part.md5}"\r\n{checksum}Content-Length: 0\r\n\r\n'.encode()

    def _complete(self, body: bytes, request: Request) -> bytes:
        """S3's answer to the listed parts: the multipart ETag, or InvalidPart if one was not received as listed."""
        upload_id = request.query("uploadId")
        listed = listed_parts(body)
        with self._seen:
            received = {(part.number, f'"{part.md5}"') for part in self.sunk_parts if part.upload_id == upload_id}
        valid = bool(listed) and set(listed) <= received
        digests = b"".join(bytes.fromhex(etag.strip('"')) for _, etag in listed) if valid else b""
        etag = f'"{hashlib.md5(digests).hexdigest()}-{len(listed)}"' if valid else ""
        with self._seen:
            self.completions.append(Completion(upload_id, request.path, listed, etag, 200 if valid else 400))
        if not valid:
            return xml_error(b"400 Bad Request", b"InvalidPart", b"A listed part was not received.", "POST")
        bucket, _, key = request.path.lstrip("/").partition("/")
        result = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>http://127.0.0.1{escape(request.path)}'
            f"</Location><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag>"
            "</CompleteMultipartUploadResult>"
        ).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {len(result)}\r\n\r\n"
        return head.encode() + result
