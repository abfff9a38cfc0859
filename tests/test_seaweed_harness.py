"""Checks that the SeaweedFS test server behaves as the other tests expect."""

from __future__ import annotations

import glob
import http.client
import os
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from seaweed import SeaweedServer, make_client

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3 import S3Client


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response.get("Error", {}).get("Code"))


def test_server_answers_unsigned_with_403(s3_server: SeaweedServer) -> None:
    assert s3_server.endpoint == f"http://127.0.0.1:{s3_server.port}"
    assert all(0 < port < 32768 for port in s3_server.ports.values())
    conn = http.client.HTTPConnection("127.0.0.1", s3_server.port, timeout=5)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status == 403
    finally:
        conn.close()


def test_admin_lists_buckets(admin_s3: S3Client, bucket: str) -> None:
    names = [b["Name"] for b in admin_s3.list_buckets()["Buckets"]]
    assert bucket in names


def test_rw_can_put_and_get(s3_server: SeaweedServer, bucket: str) -> None:
    rw = s3_server.client("rw")
    rw.put_object(Bucket=bucket, Key="dir/a.csv", Body=b"a,b\n1,2\n")
    body = rw.get_object(Bucket=bucket, Key="dir/a.csv")["Body"].read()
    assert body == b"a,b\n1,2\n"
    listed = rw.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed.get("Contents", [])] == ["dir/a.csv"]


def test_ro_cannot_put(s3_server: SeaweedServer, bucket: str) -> None:
    ro = s3_server.client("ro")
    with pytest.raises(ClientError) as exc:
        ro.put_object(Bucket=bucket, Key="x.csv", Body=b"x")
    assert error_code(exc) == "AccessDenied"
    assert ro.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_wrong_secret_is_rejected(s3_server: SeaweedServer, bucket: str) -> None:
    access_key, _ = s3_server.creds["rw"]
    bad = make_client(s3_server.endpoint, access_key, "x" * 40)
    with pytest.raises(ClientError) as exc:
        bad.put_object(Bucket=bucket, Key="x.csv", Body=b"x")
    assert error_code(exc) == "SignatureDoesNotMatch"


def test_unknown_access_key_is_rejected(s3_server: SeaweedServer, bucket: str) -> None:
    _, secret_key = s3_server.creds["rw"]
    bad = make_client(s3_server.endpoint, "AKIATESTUNKNOWN00000", secret_key)
    with pytest.raises(ClientError) as exc:
        bad.list_objects_v2(Bucket=bucket)
    assert error_code(exc) == "InvalidAccessKeyId"


@pytest.mark.parametrize("identity", ["admin", "rw"])
def test_missing_bucket_is_not_created(s3_server: SeaweedServer, admin_s3: S3Client, identity: str) -> None:
    s3 = s3_server.client(identity)
    name = f"missing-{identity}-bucket"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="x.csv", Body=b"x")
    assert error_code(exc) == "NoSuchBucket"
    names = [b["Name"] for b in admin_s3.list_buckets()["Buckets"]]
    assert name not in names


def test_restart_on_same_data_and_cleanup(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SeaweedServer(data_dir) as first:
        s3 = first.client()
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="k.csv", Body=b"kept\n")
        first_ports = list(first.ports.values())
        assert first.process is not None
        pid = first.process.pid
    assert first.process.poll() is not None
    assert not first.tmp_dir.exists()
    assert data_dir.is_dir()
    assert not any(glob.glob(f"/tmp/seaweedfs-*-{p}.sock") for p in first_ports)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    with SeaweedServer(data_dir) as second:
        body = second.client("ro").get_object(Bucket="kept", Key="k.csv")["Body"]
        assert body.read() == b"kept\n"
        # The credentials are those of the new server, not the old ones.
        old = make_client(second.endpoint, *first.creds["ro"])
        with pytest.raises(ClientError) as exc:
            old.list_objects_v2(Bucket="kept")
        assert error_code(exc) == "InvalidAccessKeyId"
