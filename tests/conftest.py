"""Pytest fixtures for tests against a local SeaweedFS S3 server (see seaweed.py)."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from faultproxy import FaultProxy
from moto.server import ThreadedMotoServer
from seaweed import SeaweedServer, free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedServer]:
    """One SeaweedFS server for the whole session; identities admin, rw, ro."""
    with SeaweedServer() as server:
        yield server


@pytest.fixture(scope="session")
def admin_s3(s3_server: SeaweedServer) -> S3Client:
    """A boto3 S3 client of the ``admin`` identity."""
    return s3_server.client("admin")


@pytest.fixture
def bucket(admin_s3: S3Client) -> Iterator[str]:
    """A fresh, empty, uniquely named bucket; emptied and deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    admin_s3.create_bucket(Bucket=name)
    yield name
    _delete_bucket(admin_s3, name)


def _delete_bucket(s3: S3Client, name: str) -> None:
    """Best-effort removal of a bucket and everything in it."""
    with contextlib.suppress(ClientError, BotoCoreError):
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys: list[ObjectIdentifierTypeDef] = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=name)


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A throw-away CA (its PEM file) and a server TLS context for 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key, cert, key, csr = (folder / name for name in ("ca.pem", "ca.key", "server.pem", "server.key", "csr"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=upload_s3 test CA")
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    extensions = folder / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        encoding="ascii",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return ca, context


CONFIG_VARIABLES = (
    "BUCKET_NAME",
    "LOCAL_DIR",
    "RAW_ZONE_PATH",
    "UPLOAD_DATE",
    "AWS_ENDPOINT_URL",
    "UPLOAD_CONCURRENCY",
    "DRY_RUN",
    "TZ",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No setting from the machine leaks in, and whatever a .env file adds is removed afterwards."""
    saved = dict(os.environ)
    for name in CONFIG_VARIABLES:
        os.environ.pop(name, None)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def proxy(s3_server: SeaweedServer) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint) as started:
        yield started


@pytest.fixture(params=["http", "https"])
def any_proxy(
    request: pytest.FixtureRequest, s3_server: SeaweedServer, private_ca: tuple[Path, ssl.SSLContext]
) -> Iterator[FaultProxy]:
    """The fault proxy over plain http, and over TLS with a private CA (real S3 is always TLS)."""
    ca, context = private_ca
    with FaultProxy(s3_server.endpoint, tls=context if request.param == "https" else None) as started:
        started.ca_file = str(ca) if request.param == "https" else None
        yield started


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in a thread of this process: it stores what it is sent and checks neither checksums nor
    Content-MD5 nor payload hashes."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
