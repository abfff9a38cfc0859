"""--check through the real command line against SeaweedFS: is the day's partition exactly the local files' bytes?
A complete partition, a missing file, a same-size change, a changed multipart file, an extra object, a shard, a
read-only identity, and objects whose ETags are not MD5s."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from datagen import write_movies
from faultproxy import FaultProxy
from seaweed import SeaweedServer
from test_cli import DATE, MOVIES, SERIES, Run, keys_in, run_uploader, uploader_env
from test_reliability import big_file, finish, key_of, proxied_env, small_files, start_uploader

from s3_landing.flight import STOP_GRACE_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ETAG = re.compile(rb"<ETag>.*?</ETag>", re.DOTALL)


def upload(server: SeaweedServer, bucket: str, source: Path) -> None:
    run = run_uploader(server, ["--source", str(source)], uploader_env(server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE))
    assert run.code == 0, run.err


def check(server: SeaweedServer, bucket: str, source: Path, *args: str, identity: str = "ro", **env: str) -> Run:
    return run_uploader(
        server,
        ["--source", str(source), "--check", *args],
        uploader_env(server, identity, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, **env),
    )


def statuses(run: Run) -> dict[str, str]:
    """file or key -> status, from the JSON events of a --log-format json run."""
    found = {}
    for line in (run.out + run.err).splitlines():
        event = json.loads(line)
        if event["event"] == "check":
            found[Path(event["file"]).name if event["file"] else event["key"]] = event["status"]
    return found


def summary(run: Run) -> dict[str, int]:
    (event,) = [json.loads(line) for line in run.out.splitlines() if '"event": "summary"' in line]
    return {name: event[name] for name in ("present", "missing", "different", "unverifiable", "collision", "extra")}


@pytest.fixture
def landed(s3_server: SeaweedServer, bucket: str, tmp_path: Path) -> list[Path]:
    """Two small files and a multipart one, uploaded."""
    source = tmp_path / "data"
    source.mkdir()
    files = [*small_files(source, 2), big_file(source)]
    upload(s3_server, bucket, source)
    return files


def test_a_complete_partition_is_present_and_exits_0_with_a_read_only_identity(
    s3_server: SeaweedServer, bucket: str, landed: list[Path], tmp_path: Path
) -> None:
    source = tmp_path / "data"
    run = check(s3_server, bucket, source)
    assert run.code == 0, run.err
    assert run.err == ""
    lines = run.out.splitlines()
    for path in landed:
        assert f"Presente: {path} = s3://{bucket}/{key_of(path)}" in lines
    assert lines[-1] == (
        "Verificação: 3 presentes, 0 ausentes, 0 diferentes, 0 não verificáveis, 0 em colisão; 0 objetos sem "
        "arquivo local"
    )


def test_missing_changed_and_extra_files_are_named_and_exit_1(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, landed: list[Path], tmp_path: Path
) -> None:
    source = tmp_path / "data"
    small, other, big = landed
    admin_s3.delete_object(Bucket=bucket, Key=key_of(other))
    for changed in (small, big):  # same size, other bytes; the big one is multipart
        content = bytearray(changed.read_bytes())
        content[-2] = ord("X") if content[-2] != ord("X") else ord("Y")
        changed.write_bytes(bytes(content))
    admin_s3.put_object(Bucket=bucket, Key=f"{SERIES}/left_behind.csv", Body=b"a|b\n")
    manifest = tmp_path / "findings.json"
    run = check(s3_server, bucket, source, "--log-format", "json", "--manifest-file", str(manifest))
    assert run.code == 1
    assert statuses(run) == {
        small.name: "different",
        other.name: "missing",
        big.name: "different",
        f"{SERIES}/left_behind.csv": "extra",
    }
    assert summary(run) == {"present": 0, "missing": 1, "different": 2, "unverifiable": 0, "collision": 0, "extra": 1}
    record = json.loads(manifest.read_text(encoding="utf-8"))
    assert record["manifest_version"] == 2
    assert record["mode"] == "check"
    assert {entry["status"] for entry in record["files"]} == {"different", "missing", "extra"}
    assert record["summary"]["different"] == 2
    assert keys_in(admin_s3, bucket) == {f"{SERIES}/left_behind.csv", key_of(small), key_of(big)}  # nothing sent


def test_a_shard_checks_only_its_own_files_and_extras(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    source.mkdir()
    files = small_files(source, 8)
    upload(s3_server, bucket, source)
    admin_s3.put_object(Bucket=bucket, Key=f"{MOVIES}/extra_movies.csv", Body=b"x")
    seen: dict[str, str] = {}
    for index in range(2):
        run = check(s3_server, bucket, source, "--shard", f"{index}/2", "--log-format", "json")
        assert run.code == 0, run.err
        mine = statuses(run)
        assert not set(mine) & set(seen)
        seen.update(mine)
    assert seen == {**{path.name: "present" for path in files}, f"{MOVIES}/extra_movies.csv": "extra"}


def test_collisions_are_reported_and_fail_the_check(s3_server: SeaweedServer, bucket: str, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_movies(tmp_path / folder / "movies.csv", 1_000, seed=1)
    run = check(s3_server, bucket, tmp_path, "--log-format", "json")
    assert run.code == 1
    assert summary(run)["collision"] == 2


def test_objects_listed_without_etags_are_checked_by_what_a_head_shows(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, landed: list[Path], tmp_path: Path
) -> None:
    source = tmp_path / "data"
    admin_s3.put_object(Bucket=bucket, Key=key_of(landed[1]), Body=landed[1].read_bytes())  # another tool: no sha256
    proxy.rewrite_listings = lambda body: ETAG.sub(b"<ETag></ETag>", body)
    access_key, secret_key = s3_server.creds["ro"]
    env = proxied_env(s3_server, proxy, bucket, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    run = run_uploader(s3_server, ["--source", str(source), "--check", "--log-format", "json"], env)
    assert run.code == 0, run.err
    assert statuses(run) == {path.name: "present" for path in landed}  # lineage metadata or not: the HEAD's ETag
    assert not [request for request in proxy.requests if request.method in ("PUT", "POST", "DELETE")]


def test_without_the_right_to_read_objects_such_files_are_unverifiable_with_the_reason(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, landed: list[Path], tmp_path: Path
) -> None:
    source = tmp_path / "data"
    proxy.rewrite_listings = lambda body: ETAG.sub(b"<ETag>&quot;" + b"e" * 32 + b"&quot;</ETag>", body)
    access_key, secret_key = s3_server.creds["writer"]  # List and Write, no Read
    env = proxied_env(s3_server, proxy, bucket, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    run = run_uploader(s3_server, ["--source", str(source), "--check"], env)
    assert run.code == 1
    assert (
        f"Não verificável: {landed[0]} -> s3://{bucket}/{key_of(landed[0])}: its ETag is not this file's MD5 and "
        "reading the object (HEAD) was refused: grant s3:GetObject"
    ) in run.err


def test_a_bucket_that_does_not_exist_exits_2_with_one_line(s3_server: SeaweedServer, tmp_path: Path) -> None:
    small_files(tmp_path, 1)
    run = check(s3_server, "no-such-bucket-here", tmp_path)
    assert run.code == 2
    (line,) = run.err.splitlines()
    assert line.startswith("upload_s3: error: bucket 'no-such-bucket-here' does not exist")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--manifest"], "--check writes nothing to the bucket, so MANIFEST / --manifest cannot be used with it"),
        (["--dry-run"], "--check and --dry-run are two different runs: choose one"),
    ],
)
def test_check_refuses_what_would_write_or_contradict_it(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path, args: list[str], message: str
) -> None:
    run = check(s3_server, bucket, tmp_path, *args)
    assert run.code == 2
    (line,) = run.err.splitlines()
    assert line.startswith(f"upload_s3: error: {message}")


def test_a_signal_ends_a_check_within_the_grace_even_while_a_multi_gb_file_is_being_hashed(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The comparisons run in the uploads' loop (s3_landing/flight.py): after SIGTERM they get its grace (5 s), not
    the time a multi-GB file takes to hash (about 30 s here for 6 GiB)."""
    source = tmp_path / "data"
    source.mkdir()
    huge = source / "movies_huge.csv"
    huge.touch()
    os.truncate(huge, 6 * 1024**3)  # sparse: no disk, and read at memory speed
    listed = f"<Contents><Key>{MOVIES}/{huge.name}</Key><Size>{huge.stat().st_size}</Size><ETag>&quot;{'e' * 32}-768"
    listed += "&quot;</ETag></Contents></ListBucketResult>"  # a same-size object: the file must be read to compare
    proxy.rewrite_listings = lambda body: body.replace(b"</ListBucketResult>", listed.encode())
    access_key, secret_key = s3_server.creds["ro"]
    env = proxied_env(s3_server, proxy, bucket, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    process = start_uploader(["--source", str(source), "--check"], env)
    proxy.wait_for(lambda request: "list-type=2" in request.target)
    time.sleep(1.0)  # the hashing is under way
    process.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    run = finish(s3_server, process, timeout=60)
    elapsed = time.monotonic() - sent_at
    assert run.code == 143, run.out + run.err
    assert elapsed < STOP_GRACE_SECONDS + 3, elapsed
    assert "Verificação interrompida" in run.err
