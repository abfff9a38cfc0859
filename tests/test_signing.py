"""PutSigner signs every PUT exactly as botocore would (botocore as the oracle)."""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import TYPE_CHECKING, cast

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from s3_landing import config
from s3_landing.objects import WriteOptions
from s3_landing.transfer import signing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


FROZEN_NOW = dt.datetime(2026, 11, 28, 23, 59, 58)


def botocore_authorization(url: str, headers: dict[str, str], credentials: Credentials, region: str) -> str:
    """botocore's own S3 SigV4 signature of the same PUT: the oracle for PutSigner."""
    request = AWSRequest(method="PUT", url=url, headers=headers)
    request.context["payload_signing_enabled"] = False  # as botocore does for a streamed body over https
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return str(request.headers["Authorization"])


UNIT_KEY_ID, UNIT_SECRET = "AKIAUNIT", "unit/secret+key"


@functools.cache
def client_for(endpoint_url: str | None) -> S3Client:
    session = config.new_session()
    client_config = Config(signature_version="s3v4")
    client = session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="sa-east-1",
        config=client_config,
        aws_access_key_id=UNIT_KEY_ID,
        aws_secret_access_key=UNIT_SECRET,
    )
    return cast("S3Client", client)


@pytest.mark.parametrize(
    ("endpoint_url", "expected_url"),
    [
        (None, "https://lake.s3.sa-east-1.amazonaws.com"),  # AWS: virtual-host addressing
        ("https://minio.internal:9000", "https://minio.internal:9000"),  # a custom endpoint: path style
    ],
)
@hypothesis_settings(deadline=None)  # the first example builds botocore's client: hundreds of ms on a busy machine
@given(
    key=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    part=st.none() | st.integers(1, 10_000),
    token=st.none() | st.text("abcXYZ019+/=", min_size=1, max_size=20),
    # Header values with runs of spaces, leading and trailing ones: SigV4 trims them and collapses each run.
    source_path=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    tags=st.lists(st.tuples(st.text("ab c:", min_size=1, max_size=5), st.text("x y=/", max_size=5)), max_size=3),
    sse=st.sampled_from(["", "AES256", "aws:kms"]),
)
def test_put_signer_signs_exactly_as_botocore(
    endpoint_url: str | None,
    expected_url: str,
    key: str,
    part: int | None,
    token: str | None,
    source_path: str,
    tags: list[tuple[str, str]],
    sse: str,
) -> None:
    credentials = Credentials(UNIT_KEY_ID, UNIT_SECRET, token)
    signer = signing.PutSigner(client_for(endpoint_url), "lake", credentials)
    assert signer.url == expected_url
    query = {} if part is None else {"partNumber": str(part), "uploadId": "2~a/b+c=d e"}
    target = signer.target(key, query)
    headers = {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "content-type": "text/csv", "content-length": "0"}
    options = WriteOptions(sse=sse, sse_kms_key_id="alias/a  b" if sse == "aws:kms" else "", tags=tuple(tags))
    headers.update(options.headers())
    headers["x-amz-meta-source-path"] = source_path
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "gmtime", FROZEN_NOW.timetuple)
        patch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN_NOW)
        ours = signer.sign(target, headers)
        theirs = botocore_authorization(signer.url + target, headers, credentials, "sa-east-1")
    assert ours["authorization"] == theirs
    assert ours["x-amz-date"] == "20261128T235958Z"
    assert ours.get("x-amz-security-token") == token
