"""The real command line against a real S3 server (SeaweedFS): bytes, keys, skips and every error path."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest
from datagen import write_movies, write_series
from seaweed import SeaweedServer, free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCRIPT = Path(__file__).resolve().parent.parent / "upload_s3.py"
DATE = "2022-05-02"
MOVIES = "Raw/Local/CSV/Movies/2022/05/02"
SERIES = "Raw/Local/CSV/Series/2022/05/02"


class Run:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def summary(self) -> str:
        return self.out.strip().splitlines()[-1]


def uploader_env(server: SeaweedServer, identity: str = "rw", **extra: str) -> dict[str, str]:
    access_key, secret_key = server.creds[identity]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    env.update(extra)
    return env


class Identities(Protocol):
    """What run_uploader checks the output against: every identity's access key and secret (a SeaweedServer's)."""

    @property
    def creds(self) -> Mapping[str, tuple[str, str]]: ...


def run_uploader(
    server: Identities, args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> Run:
    """Run the script as a user would and check that no credential of any identity appears in its output."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = completed.stdout + completed.stderr
    for access_key, secret_key in server.creds.values():
        assert access_key not in output
        assert secret_key not in output
    assert "Traceback" not in output
    return Run(completed)


def keys_in(s3: S3Client, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def body(s3: S3Client, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    source = tmp_path / "data.base"
    (source / "2022" / "extra").mkdir(parents=True)
    write_movies(source / "movies.csv", 60_000, seed=1)
    write_series(source / "series.csv", 40_000, seed=2)
    write_movies(source / "2022" / "Top MOVIES #1 +50% é.csv", 5_000, seed=3)
    write_series(source / "2022" / "extra" / "séries ø.CSV", 5_000, seed=4, crlf=True)
    (source / "2022" / "empty_series.csv").write_bytes(b"")
    (source / "notes.txt").write_text("not a csv\n", encoding="utf-8")
    (source / ".hidden.csv").write_text("hidden\n", encoding="utf-8")
    return source


EXPECTED = {
    f"{MOVIES}/movies.csv": "movies.csv",
    f"{SERIES}/series.csv": "series.csv",
    f"{MOVIES}/Top MOVIES #1 +50% é.csv": "2022/Top MOVIES #1 +50% é.csv",
    f"{SERIES}/séries ø.CSV": "2022/extra/séries ø.CSV",
    f"{SERIES}/empty_series.csv": "2022/empty_series.csv",
}


def test_uploads_every_csv_byte_for_byte_under_its_key(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    run = run_uploader(s3_server, ["--source", str(data), "--date", DATE], uploader_env(s3_server, BUCKET_NAME=bucket))
    assert run.code == 0, run.err
    assert keys_in(admin_s3, bucket) == set(EXPECTED)
    for key, relative in EXPECTED.items():
        assert body(admin_s3, bucket, key) == (data / relative).read_bytes(), key
        assert admin_s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "text/csv"
    for key, relative in EXPECTED.items():
        assert f"Iniciando upload de {data / relative} para s3://{bucket}/{key}" in run.out
        assert f"Arquivo enviado: {data / relative} -> s3://{bucket}/{key}" in run.out
    size = sum((data / relative).stat().st_size for relative in EXPECTED.values())
    assert "Processo concluído!" in run.out
    assert run.summary().startswith(f"Resumo: 5 enviados, 0 ignorados sem alterações, 0 com falha; {size} bytes")


def test_rerun_skips_unchanged_files_and_resends_a_same_size_change(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    args = ["--source", str(data)]
    assert run_uploader(s3_server, args, env).code == 0
    again = run_uploader(s3_server, args, env)
    assert again.code == 0
    assert again.summary().startswith("Resumo: 0 enviados, 5 ignorados sem alterações, 0 com falha; 0 bytes")
    assert "Iniciando upload" not in again.out

    changed = data / "series.csv"
    before = changed.stat()
    content = bytearray(changed.read_bytes())
    content[-2] = ord("X") if content[-2] != ord("X") else ord("Y")
    changed.write_bytes(bytes(content))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert changed.stat().st_size == before.st_size

    third = run_uploader(s3_server, args, env)
    assert third.code == 0
    assert third.summary().startswith(f"Resumo: 1 enviados, 4 ignorados sem alterações, 0 com falha; {before.st_size}")
    assert body(admin_s3, bucket, f"{SERIES}/series.csv") == bytes(content)


def test_large_file_goes_in_parts_and_is_skipped_on_rerun(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "big"
    source.mkdir()
    write_movies(source / "movies.csv", 20 * 1024 * 1024 + 12345, seed=5)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    first = run_uploader(s3_server, ["--source", str(source)], env)
    assert first.code == 0, first.err
    key = f"{MOVIES}/movies.csv"
    got = body(admin_s3, bucket, key)
    assert hashlib.sha256(got).digest() == hashlib.sha256((source / "movies.csv").read_bytes()).digest()
    assert admin_s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"').endswith("-3")
    assert admin_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    second = run_uploader(s3_server, ["--source", str(source)], env)
    assert second.summary().startswith("Resumo: 0 enviados, 1 ignorados")


def test_a_file_just_under_the_multipart_threshold_goes_in_one_put(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "edge"
    source.mkdir()
    largest_single_put = 16 * 1024 * 1024 - 1
    write_series(source / "series.csv", largest_single_put, seed=6)
    os.truncate(source / "series.csv", largest_single_put)  # datagen ends on a whole line, a little past its target
    first = run_uploader(s3_server, ["--source", str(source)], uploader_env(s3_server, BUCKET_NAME=bucket))
    assert first.code == 0, first.err
    [key] = keys_in(admin_s3, bucket)
    content = (source / "series.csv").read_bytes()
    assert body(admin_s3, bucket, key) == content
    assert admin_s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == hashlib.md5(content).hexdigest()


def test_upload_date_defaults_to_today(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    import datetime as dt

    (tmp_path / "movies.csv").write_text("id\n", encoding="utf-8")
    env = uploader_env(s3_server, BUCKET_NAME=bucket, TZ="UTC")
    before = dt.datetime.now(dt.timezone.utc).date()
    assert run_uploader(s3_server, ["--source", str(tmp_path)], env).code == 0
    after = dt.datetime.now(dt.timezone.utc).date()
    keys = keys_in(admin_s3, bucket)
    assert keys in ({f"Raw/Local/CSV/Movies/{day:%Y/%m/%d}/movies.csv"} for day in {before, after})


def test_settings_from_an_env_file_with_the_environment_winning(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path, tmp_path: Path
) -> None:
    access_key, secret_key = s3_server.creds["rw"]
    env_file = tmp_path / "work" / ".env"
    env_file.parent.mkdir()
    env_file.write_text(
        f"BUCKET_NAME={bucket}\nAWS_ACCESS_KEY_ID={access_key}\nAWS_SECRET_ACCESS_KEY={secret_key}\n"
        f"LOCAL_DIR={data}\nRAW_ZONE_PATH=FromFile\nUPLOAD_DATE={DATE}\nAWS_ENDPOINT_URL={s3_server.endpoint}\n",
        encoding="utf-8",
    )
    env = {"PATH": os.environ["PATH"], "RAW_ZONE_PATH": "FromEnv", "AWS_REGION": "us-east-1"}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    run = run_uploader(s3_server, [], env, cwd=env_file.parent)
    assert run.code == 0, run.err
    assert {key.split("/")[0] for key in keys_in(admin_s3, bucket)} == {"FromEnv"}


# --- errors: exit 2, one line, nothing uploaded -------------------------------------------------


def assert_fatal(run: Run, *words: str) -> str:
    """Exit 2, nothing on standard output, one line on standard error holding every word; returns that line."""
    assert run.code == 2, run.out + run.err
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_wrong_secret_is_rejected_up_front(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    env = uploader_env(s3_server, BUCKET_NAME=bucket, AWS_SECRET_ACCESS_KEY="Wrong" + "x" * 35)
    run = run_uploader(s3_server, ["--source", str(data)], env)
    assert_fatal(run, "credentials rejected", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY")
    assert "Wrong" + "x" * 35 not in run.err
    assert keys_in(admin_s3, bucket) == set()


def test_unknown_access_key_is_rejected_up_front(s3_server: SeaweedServer, bucket: str, data: Path) -> None:
    env = uploader_env(s3_server, BUCKET_NAME=bucket, AWS_ACCESS_KEY_ID="AKIAUNKNOWNKEY000000")
    run = run_uploader(s3_server, ["--source", str(data)], env)
    assert_fatal(run, "credentials rejected", "InvalidAccessKeyId")
    assert "AKIAUNKNOWNKEY000000" not in run.err


def test_read_only_identity_is_denied_before_any_upload(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    run = run_uploader(s3_server, ["--source", str(data)], uploader_env(s3_server, "ro", BUCKET_NAME=bucket))
    assert_fatal(run, "access denied", "s3:PutObject")
    assert keys_in(admin_s3, bucket) == set()
    assert admin_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_missing_bucket(s3_server: SeaweedServer, admin_s3: S3Client, data: Path) -> None:
    run = run_uploader(s3_server, ["--source", str(data)], uploader_env(s3_server, BUCKET_NAME="no-such-bucket-here"))
    assert_fatal(run, "bucket 'no-such-bucket-here' does not exist", "BUCKET_NAME")
    assert "no-such-bucket-here" not in {item["Name"] for item in admin_s3.list_buckets()["Buckets"]}


def test_missing_source_folder(s3_server: SeaweedServer, bucket: str, tmp_path: Path) -> None:
    run = run_uploader(s3_server, ["--source", str(tmp_path / "nope")], uploader_env(s3_server, BUCKET_NAME=bucket))
    assert_fatal(run, "does not exist", "LOCAL_DIR")


def test_no_bucket_name(s3_server: SeaweedServer, data: Path) -> None:
    assert_fatal(run_uploader(s3_server, ["--source", str(data)], uploader_env(s3_server)), "BUCKET_NAME")


def test_unreachable_endpoint(s3_server: SeaweedServer, bucket: str, data: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = uploader_env(s3_server, BUCKET_NAME=bucket, AWS_ENDPOINT_URL=closed)
    assert_fatal(run_uploader(s3_server, ["--source", str(data)], env), f"cannot reach {closed}")


def test_collision_fails_both_files_and_uploads_the_rest(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    (data / "2022" / "series.csv").write_text("id|x\n1|2\n", encoding="utf-8")
    run = run_uploader(s3_server, ["--source", str(data), "--date", DATE], uploader_env(s3_server, BUCKET_NAME=bucket))
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith("Erro ao enviar")]
    assert sorted(errors) == sorted(
        f"Erro ao enviar {data / relative}: 2 files named 'series.csv' map to the same key {SERIES}/series.csv: "
        "rename all but one"
        for relative in ("series.csv", "2022/series.csv")
    )
    assert keys_in(admin_s3, bucket) == set(EXPECTED) - {f"{SERIES}/series.csv"}
    assert ", 1 com falha" not in run.summary()
    assert ", 2 com falha" in run.summary()
