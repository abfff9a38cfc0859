"""PUTs sent over urllib3 with botocore's connection pools, TLS settings, proxies and retry handler."""

from __future__ import annotations

import io
import platform
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import botocore
import botocore.session
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.hooks import first_non_none_response
from botocore.httpsession import BUFFER_SIZE, ProxyConfiguration, create_urllib3_context, get_cert_path, mask_proxy_url
from botocore.model import OperationModel
from botocore.utils import get_environ_proxies
from urllib3 import PoolManager, Timeout, proxy_from_url
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeoutError
from urllib3.exceptions import NewConnectionError, ProtocolError
from urllib3.exceptions import ProxyError as URLLib3ProxyError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
from urllib3.exceptions import SSLError as URLLib3SSLError
from urllib3.util.ssl_match_hostname import CertificateError as URLLib3CertificateError

from s3_landing import __version__
from s3_landing.discovery import MIB
from s3_landing.transfer.files import FileChanged, FileSlice, Interrupted, base64_of
from s3_landing.transfer.signing import FixedBody, PutSigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# Bodies of this size and more are sent with Expect: 100-continue, so a refusal (403, bucket policy, expired token)
# is read before the body goes out. Never on smaller ones: the extra round trip per file would slow a far link.
EXPECT_CONTINUE_FROM = MIB
MAX_ANSWER_BYTES = MIB
POOL_CLASSES = {"http": AWSHTTPConnectionPool, "https": AWSHTTPSConnectionPool}  # urllib3 pools with 100-continue
CERTIFICATE_ERRORS = (ssl.SSLCertVerificationError, URLLib3CertificateError)


def causes(error: BaseException) -> Iterator[BaseException]:
    """error and what it wraps: botocore's `error` argument, urllib3's wrapped exception, Python's chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = current.kwargs.get("error") if isinstance(current, BotoCoreError) else None
        if wrapped is None and current.args and isinstance(current.args[0], BaseException):
            wrapped = current.args[0]
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__ or current.__context__


def is_certificate_failure(error: BaseException) -> bool:
    """A certificate that does not verify: permanent, unlike a TLS connection closed mid-send, which is retried."""
    return any(isinstance(cause, CERTIFICATE_ERRORS) for cause in causes(error))


def as_botocore_error(error: Exception, url: str, proxy_url: str | None) -> BotoCoreError:
    """urllib3's exception as botocore's own HTTP session raises it, so retries and messages treat both alike."""
    if isinstance(error, URLLib3SSLError):
        return SSLError(endpoint_url=url, error=error)
    if isinstance(error, (NewConnectionError, socket.gaierror)):
        return EndpointConnectionError(endpoint_url=url, error=error)
    if isinstance(error, URLLib3ProxyError):
        return ProxyConnectionError(proxy_url=mask_proxy_url(proxy_url or ""), error=error)
    if isinstance(error, URLLib3ConnectTimeoutError):
        return ConnectTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, URLLib3ReadTimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, ProtocolError):
        return ConnectionClosedError(error=error, endpoint_url=url)
    return HTTPClientError(error=error)


class Answer(Protocol):
    """What read_answer uses of urllib3's response (HTTPResponse in urllib3 1.26, BaseHTTPResponse in 2.x)."""

    def read(self, amt: int | None = ...) -> bytes: ...

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


def read_answer(answer: Answer) -> bytes:
    """The body of an answer to a PUT: a few hundred bytes from S3, so a body past MAX_ANSWER_BYTES (or a huge
    Content-Length) is refused rather than buffered. After a failure the connection is closed before it goes back
    to the pool, which then opens a new one."""
    data = bytearray()
    try:
        # Read to the end: urllib3 1.26 checks the Content-Length only on the read that finds the end.
        for block in iter(lambda: answer.read(64 * 1024), b""):
            data += block
            if len(data) > MAX_ANSWER_BYTES:
                raise ProtocolError(f"an answer of more than {MAX_ANSWER_BYTES} bytes to a PUT")
    except BaseException:
        answer.close()
        raise
    finally:
        answer.release_conn()
    return bytes(data)


class PutSender:
    """PUTs bodies (whole files or parts) with Content-MD5, signed by PutSigner, over urllib3, with botocore's retries.

    The pools are botocore's own urllib3 pool classes (they implement Expect: 100-continue) with botocore's TLS
    context, CA bundle, timeouts and proxy settings. Each failed attempt is put to the retry handler of the client
    (its needs-retry event), so PUTs follow AWS_RETRY_MODE, AWS_MAX_ATTEMPTS and the retry quota like every other
    request. About 0.7 ms of CPU a PUT here, most of it urllib3 and http.client (README, Performance).
    """

    def __init__(
        self, client: S3Client, session: botocore.session.Session, bucket: str, pool_size: int, stop: threading.Event
    ) -> None:
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        self.signer = PutSigner(client, bucket, credentials)
        self.client = client
        self.stop = stop
        self.parser = session.get_component("response_parser_factory").create_parser("rest-xml")
        model = client.meta.service_model
        self.operations = {False: model.operation_model("PutObject"), True: model.operation_model("UploadPart")}
        self.user_agent = f"upload_s3/{__version__} Python/{platform.python_version()} botocore/{botocore.__version__}"
        url = self.signer.url
        proxies = ProxyConfiguration(proxies=get_environ_proxies(url))
        self.proxy_url = proxies.proxy_url_for(url)
        options: dict[str, Any] = {"maxsize": pool_size, "timeout": self.timeout(client)}
        if BUFFER_SIZE:  # botocore's block size for sending bodies, where urllib3 (2.x) takes one
            options["blocksize"] = BUFFER_SIZE
        if url.startswith("https:"):
            ca_bundle = session.get_config_variable("ca_bundle") or get_cert_path(True)
            options.update(ssl_context=create_urllib3_context(), cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle)
        if self.proxy_url:
            headers = proxies.proxy_headers_for(self.proxy_url)
            manager: PoolManager = proxy_from_url(self.proxy_url, proxy_headers=headers, **options)
        else:
            manager = PoolManager(**options)
        manager.pool_classes_by_scheme = POOL_CLASSES
        self.manager = manager
        self.pool = manager.connection_from_url(url)
        # An http endpoint behind a proxy takes the absolute URL; https goes through a CONNECT tunnel.
        self.target_prefix = url if self.proxy_url and url.startswith("http:") else ""

    @staticmethod
    def timeout(client: S3Client) -> Timeout:
        config: Any = client.meta.config  # the stubs do not declare the timeouts
        return Timeout(connect=config.connect_timeout, read=config.read_timeout)

    def put(
        self,
        key: str,
        body: bytes | FileSlice,
        md5_digest: bytes,
        query: dict[str, str],
        object_headers: Mapping[str, str] | None = None,
    ) -> str:
        """Send body, with object_headers (lower-case names: content type, encryption, metadata...) signed too;
        returns the ETag. Raises ClientError or botocore's connection errors as the client does."""
        operation = self.operations[bool(query)]
        headers = {**(object_headers or {}), "content-md5": base64_of(md5_digest), "content-length": str(len(body))}
        target = self.signer.target(key, query)
        # What botocore's handlers keep about a request: the retry quota notes what it took. PUTs are signed for the
        # region preflight found, so botocore's region redirector must not try to re-route them: a wrong-region
        # answer is then reported as such.
        retry_context: dict[str, Any] = {"s3_redirect": {"redirected": True}}
        attempt = 1
        while True:
            response, error = self.attempt(target, body, headers)
            if response is not None and response.status_code < 300:
                self.after_call(operation, response, retry_context)
                return str(response.headers.get("ETag", ""))
            parsed = self.parse_error(response, operation) if response is not None else None
            if error is not None and is_certificate_failure(error):
                raise error
            delay = self.retry_delay(operation, attempt, response, parsed, error, retry_context)
            if delay is None:
                raise error or ClientError(parsed, operation.name)  # type: ignore[arg-type]
            if self.stop.wait(delay):
                raise Interrupted("not sent: the run was interrupted while a failed request waited to be retried")
            attempt += 1

    def attempt(
        self, target: str, body: bytes | FileSlice, headers: dict[str, str]
    ) -> tuple[AWSResponse | None, BotoCoreError | None]:
        signed: dict[str, Any] = {**self.signer.sign(target, headers), "User-Agent": self.user_agent}
        payload: Any = body  # bytes, or anything with read(), which http.client sends block by block
        if len(body) >= EXPECT_CONTINUE_FROM:
            signed["Expect"] = b"100-continue"  # botocore's pools look for exactly this name and value
            payload = io.BytesIO(body) if isinstance(body, bytes) else body  # bytes would go out with the head
        if isinstance(body, FileSlice):
            body.rewind()
        try:
            answer = self.pool.urlopen(
                "PUT",
                self.target_prefix + target,
                body=payload,
                headers=signed,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                enforce_content_length=True,  # a cut answer is an error (urllib3 1.26 would accept it)
            )
            content = read_answer(answer)
        except FileChanged:
            raise
        except Exception as error:  # noqa: BLE001 - urllib3's and the socket's errors, translated as botocore does
            return None, as_botocore_error(error, self.signer.url, self.proxy_url)
        headers_read = cast("HTTPHeaders", answer.headers)  # botocore's own HTTP session passes urllib3's headers too
        return AWSResponse(self.signer.url + target, answer.status, headers_read, FixedBody(content)), None

    def parse_error(self, response: AWSResponse, operation: OperationModel) -> dict[str, Any]:
        answer = {"status_code": response.status_code, "headers": response.headers, "body": response.content}
        parsed: dict[str, Any] = self.parser.parse(answer, operation.output_shape)
        return parsed

    def retry_delay(
        self,
        operation: OperationModel,
        attempt: int,
        response: AWSResponse | None,
        parsed: dict[str, Any] | None,
        error: BotoCoreError | None,
        retry_context: dict[str, Any],
    ) -> float | None:
        """The client's own retry handler decides, as for a request botocore sent: seconds to wait, or None. The
        arguments are those botocore's endpoint gives the needs-retry event; its retry handlers (standard, adaptive,
        legacy) and the S3 region redirector read them."""
        responses = self.client.meta.events.emit(
            f"needs-retry.s3.{operation.name}",
            response=(response, parsed) if response is not None else None,
            endpoint=None,
            operation=operation,
            attempts=attempt,
            caught_exception=error,
            request_dict={"context": retry_context},
        )
        delay = first_non_none_response(responses)
        return float(delay) if delay is not None else None

    def after_call(self, operation: OperationModel, response: AWSResponse, retry_context: dict[str, Any]) -> None:
        """Tell the client's handlers a request succeeded, as botocore does: the retry quota gets its share back."""
        self.client.meta.events.emit(
            f"after-call.s3.{operation.name}", http_response=response, parsed={}, model=operation, context=retry_context
        )

    def close(self) -> None:
        self.manager.clear()
