"""SigV4 signatures for PUTs, with the signing key cached (checked against botocore in the tests)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_PORTS = {"http": 80, "https": 443}


def uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


class FixedBody:
    """A body already read, in the form botocore's AWSResponse streams its raw body."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data

    def stream(self) -> Iterator[bytes]:
        return iter((self.data,))


def botocore_put_request(client: S3Client, bucket: str) -> AWSPreparedRequest:
    """The PutObject request botocore would send, built and signed but not sent: its URL and credential scope say
    where botocore's endpoint rules send this bucket's objects and for which region it signs them."""
    built: list[AWSPreparedRequest] = []

    def keep_instead_of_sending(request: AWSPreparedRequest, **_: object) -> Any:  # an answer stops the sending
        built.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), FixedBody())

    event = "before-send.s3.PutObject"
    client.meta.events.register_first(event, keep_instead_of_sending)
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"")
    finally:
        client.meta.events.unregister(event, keep_instead_of_sending)
    return built[0]


class PutSigner:
    """SigV4 headers for PUTs into one bucket, with an unsigned payload: Content-MD5 is signed, and S3 checks it.

    botocore spends about 0.4 ms signing a request (it derives the key again and runs its event hooks each time);
    this caches the day's signing key and takes about 15 us. Where to send and what scope to sign for come from one
    request botocore builds and signs (and does not send), so the endpoint, the addressing style (path or virtual
    host) and the region are botocore's own choices; credentials are read on every request, so refreshed ones
    (roles, IRSA) are used.
    """

    def __init__(self, client: S3Client, bucket: str, credentials: Credentials) -> None:
        request = botocore_put_request(client, bucket)
        url = urlsplit(request.url)
        self.url = f"{url.scheme}://{url.netloc}"
        port = f":{DEFAULT_PORTS.get(url.scheme)}"
        self.host = url.netloc[: -len(port)] if url.netloc.endswith(port) else url.netloc
        self.base_path = url.path[:-1]  # "/bucket/" in path style, "/" with the bucket in the host name
        authorization = request.headers["Authorization"]
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
        _, _, region, service, _ = credential.rsplit("/", 4)
        self.scope = f"{region}/{service}/aws4_request"
        self.credentials = credentials
        self.signing_keys: dict[tuple[str, str], bytes] = {}

    def target(self, key: str, query: dict[str, str]) -> str:
        """The request target: the key's path, URI-encoded as SigV4 wants it for S3, and the sorted query."""
        path = self.base_path + quote(key, safe="/~")
        pairs = sorted((uri_encode(name), uri_encode(value)) for name, value in query.items())
        return path + ("?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else "")

    def signing_key(self, secret: str, day: str) -> bytes:
        cached = self.signing_keys.get((secret, day))
        if cached is None:
            cached = hmac_sha256(("AWS4" + secret).encode("utf-8"), day)
            for part in self.scope.split("/"):
                cached = hmac_sha256(cached, part)
            self.signing_keys[(secret, day)] = cached
        return cached

    def sign(self, target: str, headers: dict[str, str]) -> dict[str, str]:
        """headers (lower-case names) plus host, date, payload hash and Authorization, all of them signed."""
        frozen = self.credentials.get_frozen_credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = {**headers, "host": self.host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-date": amz_date}
        if frozen.token:
            signed["x-amz-security-token"] = frozen.token
        names = sorted(signed)
        path, _, query = target.partition("?")
        canonical = "\n".join(
            ["PUT", path, query, *(f"{name}:{' '.join(signed[name].split())}" for name in names), "", ";".join(names)]
        )
        scope = f"{amz_date[:8]}/{self.scope}"
        canonical_hash = hashlib.sha256(f"{canonical}\n{UNSIGNED_PAYLOAD}".encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{canonical_hash}"
        signing_key = self.signing_key(frozen.secret_key or "", amz_date[:8])
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256)
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature.hexdigest()}"
        )
        return signed
