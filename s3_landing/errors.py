"""What can go wrong: one root, whose subclasses carry the exit code they give the run, and explain(), which puts
any error into one line that names the cause and, where there is one, the fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3_landing.config import Settings

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_FATAL = 2
NOT_STARTED = "not sent: the run was interrupted before it started"
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
}
REGION_CODES = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "IllegalLocationConstraintException",
}


class UploadS3Error(Exception):
    """The root: what the run exits with when this ends it (nothing could be done, unless a subclass says else)."""

    exit_code = EXIT_FATAL


class UsageError(UploadS3Error):
    """Bad command-line arguments; argparse's message, on one line."""


class ConfigError(UploadS3Error):
    """A setting is missing or wrong; the message says which and how to fix it."""


class FatalError(UploadS3Error):
    """Nothing can be uploaded (bucket, credentials, rights, endpoint); detected up front."""


class FileFailure(UploadS3Error):
    """One file could not be sent or checked; the others go on, and the run exits 1."""

    exit_code = EXIT_SOME_FAILED


class FileChanged(FileFailure):
    """The file changed, vanished or was replaced while it was being read or uploaded."""


class Interrupted(FileFailure):
    """A stop was requested (SIGINT/SIGTERM) before the file finished."""


class ObjectKept(FileFailure):
    """--no-overwrite: the key holds an object that is not proven to be this file's bytes, and it is kept."""


class StoredBytesDiffer(FileFailure):
    """Twice the store's answer to a write did not prove the file's bytes: what it stored differs."""


@dataclass(frozen=True)
class S3Failure:
    """A failed request as S3 answered it (HTTP status, error code and message), or why no answer came (kind:
    "timeout", "unreachable", "certificate" or "connection")."""

    status: int | None
    code: str = ""
    message: str = ""
    kind: str = "answer"


class EngineError(FileFailure):
    """A write obstore could not do, read as S3's answer. obstore raises its own classes and Python's
    (FileNotFoundError for NoSuchBucket, OSError), each with the HTTP status and S3's XML body in its text."""

    def __init__(self, failure: S3Failure) -> None:
        super().__init__(failure.code or failure.kind)
        self.failure = failure

    @property
    def is_transport_failure(self) -> bool:
        return self.failure.status is None


def causes(error: BaseException) -> Iterator[BaseException]:
    """error and what it wraps: botocore's `error` argument, urllib3's wrapped exception, Python's chain."""
    from botocore.exceptions import BotoCoreError

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
    """A certificate that does not verify (botocore's calls): permanent, unlike a TLS connection closed mid-send."""
    import ssl  # not at start-up: only failing runs need it

    return any(isinstance(cause, (ssl.SSLCertVerificationError, ssl.CertificateError)) for cause in causes(error))


def explain_code(code: str, message: str, settings: Settings) -> str:
    """S3's error code (and message) in words, with the fix where there is one."""
    if code == "NoSuchBucket":
        return f"bucket {settings.target.bucket!r} does not exist: create it or correct BUCKET_NAME / --bucket"
    if code in CREDENTIAL_CODES:
        return (
            f"credentials rejected ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
            "AWS_SESSION_TOKEN (or AWS_PROFILE) for this endpoint"
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        kms = " (and kms:GenerateDataKey and kms:Decrypt on the KMS key)" if "kms" in message.lower() else ""
        where = f"s3://{settings.target.bucket}/{settings.target.prefix}"
        return (
            f"access denied on {where} ({code}): the identity needs s3:ListBucket, s3:PutObject and "
            f"s3:AbortMultipartUpload there{kms} (see the README's IAM policy)"
        )
    if code in REGION_CODES:
        return f"bucket {settings.target.bucket!r} is in another region ({code}): set AWS_REGION to the bucket's region"
    return f"S3 answered {code}: {message}".rstrip(": ")


def explain_failure(failure: S3Failure, settings: Settings) -> str:
    """A write the engine could not do: S3's answer, or why none came (after obstore's retries)."""
    if failure.status is not None:
        text = explain_code(failure.code, failure.message, settings)
        return text if failure.status < 500 else f"{text} (after {settings.run.max_attempts} attempts)"
    if failure.kind == "certificate":
        return "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    if failure.kind == "unreachable":
        return f"cannot reach {endpoint_of(settings)}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    if failure.kind == "timeout":
        return "the server stopped answering (read timeout), so the upload is not confirmed: run again to check"
    return (
        f"the connection to {endpoint_of(settings)} failed on every attempt, so the upload is not confirmed: check "
        "the network and run again"
    )


def endpoint_of(settings: Settings) -> str:
    return settings.target.endpoint_url or "the S3 endpoint"


def explain(error: BaseException, settings: Settings) -> str:
    """One line naming the cause and, where there is one, the fix (as raw text: the report escapes and masks it)."""
    if isinstance(error, EngineError):
        return explain_failure(error.failure, settings)
    from botocore.exceptions import (  # not imported with this module: a run may end without botocore loaded
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ProxyConnectionError,
        ReadTimeoutError,
        SSLError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return explain_code(details.get("Code", "Unknown"), details.get("Message", ""), settings)
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use a role"
    if isinstance(error, ProfileNotFound):
        return f"{error}: fix AWS_PROFILE or ~/.aws/config"
    if isinstance(error, SSLError) or is_certificate_failure(error):
        return "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    if isinstance(error, ProxyConnectionError):
        return f"{error}: check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return f"cannot reach {endpoint_of(settings)}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    if isinstance(error, ReadTimeoutError):
        return "the server stopped answering (read timeout), so the upload is not confirmed: run again to check"
    if isinstance(error, (HTTPClientError, BotoConnectionError)):
        return (
            f"the connection to {endpoint_of(settings)} failed ({type(error).__name__}) on every attempt, so the "
            "upload is not confirmed: check the network and run again"
        )
    if isinstance(error, FileChanged):
        return f"file {error}; it was not reported as sent: run again once it is stable"
    if isinstance(error, (Interrupted, StoredBytesDiffer, ObjectKept)):
        return str(error) or NOT_STARTED
    if isinstance(error, OSError):
        return f"cannot read the file ({error.strerror or error}): fix its permissions or remove it"
    return f"{type(error).__name__}: {error}"
