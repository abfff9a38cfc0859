"""Safe landing (README, Safe landing): --min-age leaves files still being written for the next run, and
--no-overwrite makes every object write conditional (If-None-Match: *). Unit tests of the duration parser, the
settlement of a 412 and a 409, and the store probe; then the command line against SeaweedFS, against moto behind a
proxy that drops the condition (a store that ignores it), and two runs at once into one partition."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import Stubber
from datagen import write_movies
from faultproxy import Fault, FaultProxy, Request, Rule
from seaweed import SeaweedServer, make_client
from test_check import statuses
from test_cli import DATE, Run, body, keys_in, run_uploader, uploader_env
from test_integrity import MOTO_KEYS, Moto, moto_env
from test_reliability import (
    big_file,
    failed,
    finish,
    key_of,
    proxied_env,
    sent,
    small_files,
    start_uploader,
)
from test_uploads import DATA, KEY, MD5, failing_then, job_in, s3_client, transfer_for, writes_answering
from unit_support import settings_for

from s3_landing import cli
from s3_landing.config import RunMode
from s3_landing.discovery import MULTIPART_THRESHOLD, Job, RemoteObject
from s3_landing.errors import ConfigError, EngineError, FatalError, ObjectKept, S3Failure, StoredBytesDiffer
from s3_landing.options import parse_duration
from s3_landing.transfer.botocore_calls import CONDITIONAL_PROBE, check_conditional_writes
from s3_landing.transfer.files import Status
from s3_landing.transfer.proof import digests_of_bytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PRECONDITION_FAILED = S3Failure(412, "PreconditionFailed", "At least one of the pre-conditions did not hold")
CONFLICT = S3Failure(409, "ConditionalRequestConflict", "A conflicting conditional operation is in progress")
HEAD = {"Bucket": "lake", "Key": KEY, "ChecksumMode": "ENABLED"}
SINCE = "holds other bytes (written since the listing;"
ALREADY_THERE = "(already there with the same bytes when it was written: landed since the listing)"
KEPT = "the object is kept (--no-overwrite): land the file under another --date, or remove the object"

# --- the duration parser ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("45", 45), ("1.5m", 90), (" 2H ", 7200), ("0", 0)],
)
def test_a_duration_is_a_number_of_seconds_minutes_or_hours(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5", "5d", "1h30m", "m", "5 minutes", "1e3"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a duration: write 30s, 5m or 1h"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--min-age", "soon"], {}, "--min-age 'soon' is not a duration"),
        ([], {"MIN_AGE": "10 days"}, "--min-age '10 days' is not a duration"),
        ([], {"NO_OVERWRITE": "maybe"}, "NO_OVERWRITE"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], expected: str
) -> None:
    os.environ.update(env)
    assert cli.main(["--bucket", "b", "--source", str(clean_env), *argv]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.count("\n")) == ("", 1)
    assert expected in captured.err


# --- settling a 412 and a 409 -------------------------------------------------------------------


def refused_with(failure: S3Failure) -> Callable[[], Any]:
    def write() -> Any:
        raise EngineError(failure)

    return write


def test_a_412_over_the_same_bytes_counts_as_landed_already_there(tmp_path: Path) -> None:
    client = s3_client()
    with Stubber(client) as stub:
        stub.add_response("head_object", {"ContentLength": len(DATA), "ETag": f'"{MD5}"'}, HEAD)
        transfer = transfer_for(tmp_path, client=client, no_overwrite=True)
        status, receipt = transfer.write_proven(job_in(tmp_path), refused_with(PRECONDITION_FAILED))
        stub.assert_no_pending_responses()
    assert (status, receipt.already_there, receipt.proof, receipt.etag) == (Status.SKIPPED, True, "etag", MD5)


@pytest.mark.parametrize(
    ("head", "held"),
    [
        ({"ContentLength": len(DATA), "ETag": f'"{"e" * 32}"'}, f"{SINCE} its ETag, the MD5 of the bytes stored"),
        ({"ContentLength": 99, "ETag": f'"{"e" * 32}"'}, f"{SINCE} the object has 99 bytes"),
        ({"ContentLength": len(DATA), "ETag": '"abc-2"'}, "cannot be proven to hold this file's bytes or other ones"),
    ],
)
def test_a_412_over_other_or_unprovable_bytes_keeps_the_object_and_fails_the_file(
    tmp_path: Path, head: dict[str, object], held: str
) -> None:
    client = s3_client()
    with Stubber(client) as stub:
        stub.add_response("head_object", head, HEAD)
        transfer = transfer_for(tmp_path, client=client, no_overwrite=True)
        with pytest.raises(ObjectKept) as kept:
            transfer.write_proven(job_in(tmp_path), refused_with(PRECONDITION_FAILED))
    assert f"s3://lake/{KEY} {held}" in str(kept.value)
    assert str(kept.value).endswith(KEPT + ", and run again")


def test_without_no_overwrite_a_412_is_a_failure_like_any_answer(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as error:
        transfer_for(tmp_path).write_proven(job_in(tmp_path), refused_with(PRECONDITION_FAILED))
    assert error.value.failure.status == 412


def test_a_409_a_conditional_write_in_progress_is_retried(tmp_path: Path) -> None:
    write, calls = failing_then(2, CONFLICT)
    status, receipt = transfer_for(tmp_path, no_overwrite=True).write_proven(job_in(tmp_path), write)
    assert (status, receipt.proof, len(calls)) == (Status.UPLOADED, "etag", 3)
    write, calls = failing_then(5, CONFLICT)
    with pytest.raises(EngineError):
        transfer_for(tmp_path, no_overwrite=True, max_attempts=3).write_proven(job_in(tmp_path), write)
    assert len(calls) == 3


def test_our_own_write_found_corrupted_is_not_replaced_and_says_how_to_remove_it(tmp_path: Path) -> None:
    write, calls = writes_answering("e" * 32, MD5)
    with pytest.raises(StoredBytesDiffer) as error:
        transfer_for(tmp_path, no_overwrite=True).write_proven(job_in(tmp_path), write)
    assert len(calls) == 1
    assert "after 1 upload: the bytes stored under the key differ from the file; --no-overwrite keeps it: " in str(
        error.value
    )
    assert f"remove the object (s3://lake/{KEY}) and run again" in str(error.value)


def test_a_listed_object_that_cannot_be_proven_is_kept_like_other_bytes(tmp_path: Path) -> None:
    client = s3_client()
    job = job_in(tmp_path)
    job = Job(job.source, job.key, RemoteObject(len(DATA), "abc-2"))
    with Stubber(client) as stub:
        stub.add_response("head_object", {"ContentLength": len(DATA), "ETag": '"abc-2"'}, HEAD)
        with pytest.raises(ObjectKept, match="cannot be proven to hold this file's bytes or other ones"):
            transfer_for(tmp_path, client=client, no_overwrite=True).skip_when_same(job, digests_of_bytes(DATA))
    job = Job(job.source, job.key, RemoteObject(len(DATA), MD5))
    assert transfer_for(tmp_path, no_overwrite=True).skip_when_same(job, digests_of_bytes(DATA)) is not None


# --- the store probe ----------------------------------------------------------------------------

PROBE = f"Raw/Local/CSV/{CONDITIONAL_PROBE}"


def stub_error(stub: Stubber, operation: str, status: int, code: str) -> None:
    stub.add_client_error(operation, code, code, status)


def probe(tmp_path: Path, script: Callable[[Stubber], None]) -> None:
    client = s3_client()
    with Stubber(client) as stub:
        script(stub)
        try:
            check_conditional_writes(client, settings_for(tmp_path, RunMode.UPLOAD))
        finally:
            stub.assert_no_pending_responses()


def multipart(stub: Stubber) -> None:
    stub.add_response("create_multipart_upload", {"UploadId": "u1"})
    stub.add_response("upload_part", {"ETag": '"p1"'})


ANSWERS = {"refused": (412, "PreconditionFailed"), "conflict": (409, "ConditionalRequestConflict")}


@pytest.mark.parametrize(
    "put_answers",
    [("written", "refused"), ("refused", "conflict", "refused")],
    ids=["first-probe", "an-earlier-probe-there-and-a-409-tried-again"],
)
def test_a_store_that_refuses_both_conditional_writes_passes_the_probe(
    tmp_path: Path, put_answers: tuple[str, ...]
) -> None:
    def script(stub: Stubber) -> None:
        for answer in put_answers:
            if answer == "written":
                stub.add_response("put_object", {})
            else:
                stub_error(stub, "put_object", *ANSWERS[answer])
        multipart(stub)
        stub_error(stub, "complete_multipart_upload", *ANSWERS["refused"])
        stub.add_response("abort_multipart_upload", {})

    probe(tmp_path, script)


def test_a_store_that_ignores_the_condition_on_put_fails_the_probe(tmp_path: Path) -> None:
    def script(stub: Stubber) -> None:
        stub.add_response("put_object", {})
        stub.add_response("put_object", {})

    with pytest.raises(FatalError, match=r"ignores conditional writes \(If-None-Match on PutObject\)"):
        probe(tmp_path, script)


def test_a_store_that_ignores_it_on_complete_only_fails_the_probe_and_the_upload_is_aborted(tmp_path: Path) -> None:
    def script(stub: Stubber) -> None:
        stub.add_response("put_object", {})
        stub_error(stub, "put_object", 412, "PreconditionFailed")
        multipart(stub)
        stub.add_response("complete_multipart_upload", {})
        stub.add_response("abort_multipart_upload", {})

    with pytest.raises(FatalError, match=r"ignores conditional writes \(If-None-Match on CompleteMultipartUpload\)"):
        probe(tmp_path, script)


@pytest.mark.parametrize(("status", "code"), [(501, "NotImplemented"), (400, "InvalidArgument")])
def test_a_store_that_refuses_the_header_fails_the_probe(tmp_path: Path, status: int, code: str) -> None:
    def script(stub: Stubber) -> None:
        stub_error(stub, "put_object", status, code)

    with pytest.raises(FatalError, match=rf"the store refused a conditional write \({code}\)"):
        probe(tmp_path, script)


# --- the command line against SeaweedFS: --min-age ----------------------------------------------


def aged(path: Path, seconds: float) -> Path:
    """path with its modification time seconds ago (negative: in the future)."""
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


def events(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run.out + run.err).splitlines()]


def test_min_age_leaves_young_and_future_files_for_the_next_run_without_failing_it(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    old, fresh, future = small_files(source, 3)
    aged(old, 3600)
    aged(fresh, 10)
    aged(future, -3600)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    manifest = tmp_path / "manifest.json"
    args = ["--source", str(source), "--min-age", "5m", "--manifest-file", str(manifest)]
    run = run_uploader(s3_server, [*args, "--log-format", "json"], env)
    assert run.code == 0, run.err
    assert keys_in(admin_s3, bucket) == {key_of(old)}
    deferred = {Path(event["file"]) for event in events(run) if event["event"] == "deferred"}
    assert deferred == {fresh, future}
    [summary] = [event for event in events(run) if event["event"] == "summary"]
    assert (summary["uploaded"], summary["failed"], summary["deferred"]) == (1, 0, 2)
    entries = {Path(entry["path"]).name: entry["status"] for entry in json.loads(manifest.read_text())["files"]}
    assert entries == {old.name: "uploaded", fresh.name: "deferred", future.name: "deferred"}

    run = run_uploader(s3_server, ["--source", str(source), "--min-age", "5m"], env)
    assert run.code == 0, run.err
    warnings = run.err.splitlines()
    fresh_line = next(line for line in warnings if line.startswith(f"Aviso: {fresh}: modified "))
    assert fresh_line.endswith(" s ago, less than MIN_AGE (300 s): left for the next run")
    future_line = next(line for line in warnings if line.startswith(f"Aviso: {future}: modified "))
    assert future_line.endswith(" s in the future by this machine's clock: left for the next run (MIN_AGE)")
    assert run.summary().startswith("Resumo: 0 enviados, 1 ignorados sem alterações, 0 com falha, 2 adiados (MIN_AGE);")

    aged(fresh, 600)  # the exporter is done with it: the next run lands it
    run = run_uploader(s3_server, ["--source", str(source), "--min-age", "5m"], env)
    assert run.code == 0, run.err
    assert sent(run) == {fresh}
    assert body(admin_s3, bucket, key_of(fresh)) == fresh.read_bytes()


def test_check_reports_deferred_files_apart_and_they_do_not_fail_it(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    old, fresh, future = small_files(source, 3)
    aged(old, 3600)
    aged(future, -3600)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    assert run_uploader(s3_server, ["--source", str(source), "--min-age", "1m"], env).code == 0
    check = ["--source", str(source), "--check", "--min-age", "1m"]
    run = run_uploader(s3_server, [*check, "--log-format", "json"], uploader_env(s3_server, "ro", **env_of(bucket)))
    assert run.code == 0, run.err
    assert statuses(run) == {old.name: "present", fresh.name: "deferred", future.name: "deferred"}
    [summary] = [event for event in events(run) if event["event"] == "summary"]
    assert (summary["present"], summary["missing"], summary["deferred"]) == (1, 0, 2)
    run = run_uploader(s3_server, check, uploader_env(s3_server, "ro", **env_of(bucket)))
    lines = run.err.splitlines()
    fresh_line = next(line for line in lines if line.startswith(f"Adiado: {fresh} -> s3://{bucket}/{key_of(fresh)}: "))
    assert fresh_line.endswith(" s ago, less than MIN_AGE (60 s): not compared this run")
    future_line = next(line for line in lines if line.startswith(f"Adiado: {future} -> "))
    assert future_line.endswith(" s in the future by this machine's clock: not compared this run (MIN_AGE)")
    assert "0 em colisão, 2 adiados (MIN_AGE); 0 objetos sem arquivo local" in run.summary()
    without = run_uploader(s3_server, check[:-2], uploader_env(s3_server, "ro", **env_of(bucket)))
    assert without.code == 1  # without MIN_AGE the young file is simply missing


def env_of(bucket: str) -> dict[str, str]:
    return {"BUCKET_NAME": bucket, "UPLOAD_DATE": DATE}


# --- the command line against SeaweedFS: --no-overwrite -----------------------------------------


def is_object_write(request: Request) -> bool:
    """A PutObject or CompleteMultipartUpload of a file's key (parts and the probe aside)."""
    is_put = request.method == "PUT" and not request.is_part
    return (is_put or request.is_complete) and request.path.endswith((".csv", ".CSV"))


def test_no_overwrite_writes_every_object_conditionally_and_keeps_objects_holding_other_bytes(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    same_size, other_size, unchanged = small_files(source, 3)
    big = big_file(source)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    assert run_uploader(s3_server, ["--source", str(source)], env).code == 0
    landed = {path: path.read_bytes() for path in (same_size, other_size, unchanged, big)}
    same_size.write_bytes(landed[same_size][::-1])
    other_size.write_bytes(landed[other_size] + b"1|more\n")
    with big.open("r+b") as handle:  # same size, one byte changed
        handle.seek(len(landed[big]) // 2)
        handle.write(b"#")
    new_small, new_big = source / "series_new.csv", source / "movies_new_big.csv"
    write_movies(new_small, 5_000, seed=10)
    write_movies(new_big, MULTIPART_THRESHOLD + 4321, seed=11)

    run = run_uploader(s3_server, ["--source", str(source), "--no-overwrite"], proxied_env(s3_server, proxy, bucket))
    assert run.code == 1, run.err
    assert sent(run) == {new_small, new_big}
    assert f"Arquivo sem alterações, ignorado: {unchanged} = s3://{bucket}/{key_of(unchanged)}" in run.out
    assert set(failed(run)) == {same_size, other_size, big}
    for path, reason in failed(run).items():
        assert reason.startswith(f"s3://{bucket}/{key_of(path)} holds other bytes ("), reason
        assert reason.endswith(KEPT + ", and run again"), reason
        assert body(admin_s3, bucket, key_of(path)) == landed[path]
    for path in (new_small, new_big):
        assert body(admin_s3, bucket, key_of(path)) == path.read_bytes()
    writes = [request for request in proxy.requests if is_object_write(request)]
    assert {request.path.rsplit("/", 1)[1] for request in writes} == {new_small.name, new_big.name}
    assert [request.headers.get("if-none-match") for request in writes] == ["*"] * len(writes)
    assert any(request.is_complete for request in writes)  # the large one: a conditional Complete


def first_write_of_each_key(fault: Fault) -> Rule:
    """fault on the first PutObject or CompleteMultipartUpload of each file's key; the writes after it pass."""
    seen: set[str] = set()

    def rule(request: Request) -> Fault | None:
        if not is_object_write(request) or request.path in seen:
            return None
        seen.add(request.path)
        return fault

    return rule


def test_a_409_a_conditional_write_in_progress_is_sent_again_and_lands(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    files = [*small_files(source, 3), big_file(source)]
    proxy.faults = first_write_of_each_key("409")
    run = run_uploader(s3_server, ["--source", str(source), "--no-overwrite"], proxied_env(s3_server, proxy, bucket))
    assert run.code == 0, run.err
    assert sent(run) == set(files)
    assert proxy.injected["409"] == len(files)
    for path in files:
        assert body(admin_s3, bucket, key_of(path)) == path.read_bytes()


def landing_first(admin_s3: S3Client, bucket: str, key: str, data: bytes) -> Callable[[Request], None]:
    """A proxy hook that writes data under key (another writer) just before the run's first write of it."""
    done = threading.Event()

    def hook(request: Request) -> None:
        if is_object_write(request) and request.path.endswith(key) and not done.is_set():
            done.set()
            admin_s3.put_object(Bucket=bucket, Key=key, Body=data)

    return hook


def test_a_key_taken_after_the_listing_is_settled_by_comparing_the_object(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    ours, theirs = small_files(source, 2)
    proxy.before_forward = landing_first(admin_s3, bucket, key_of(ours), ours.read_bytes())
    env = proxied_env(s3_server, proxy, bucket)
    run = run_uploader(s3_server, ["--source", str(source), "--no-overwrite"], env)
    assert run.code == 0, run.err
    assert sent(run) == {theirs}
    assert f"Arquivo sem alterações, ignorado: {ours} = s3://{bucket}/{key_of(ours)} {ALREADY_THERE}" in run.out

    other = source / "movies_late.csv"
    other.write_bytes(ours.read_bytes())
    proxy.before_forward = landing_first(admin_s3, bucket, key_of(other), b"id|x\n1|another writer\n")
    run = run_uploader(s3_server, ["--source", str(source), "--no-overwrite"], env)
    assert run.code == 1, run.err
    reason = failed(run)[other]
    assert reason.startswith(f"s3://{bucket}/{key_of(other)} holds other bytes (written since the listing; "), reason
    assert body(admin_s3, bucket, key_of(other)) == b"id|x\n1|another writer\n"


# --- the store probe through the command line -------------------------------------------------


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> Iterator[tuple[str, S3Client]]:
    s3 = make_client(moto_endpoint, *MOTO_KEYS)
    name = f"probe-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=name)
    yield name, s3


def dropping_the_condition(when: Callable[[Request], bool]) -> Callable[[Request, bytes], bytes]:
    """A head without If-None-Match for requests matching when: the store behind never sees the condition."""

    def edit(request: Request, head: bytes) -> bytes:
        if not when(request):
            return head
        lines = head.split(b"\r\n")
        return b"\r\n".join(line for line in lines if not line.lower().startswith(b"if-none-match:"))

    return edit


@pytest.mark.parametrize(
    ("ignored_on", "operation"),
    [(lambda request: True, "PutObject"), (lambda request: request.is_complete, "CompleteMultipartUpload")],
    ids=["put", "complete"],
)
def test_a_store_that_ignores_the_condition_ends_the_run_with_exit_2_before_any_file_is_sent(
    moto_endpoint: str,
    moto_bucket: tuple[str, S3Client],
    tmp_path: Path,
    ignored_on: Callable[[Request], bool],
    operation: str,
) -> None:
    name, s3 = moto_bucket
    source = tmp_path / "data"
    small_files(source, 3)
    with FaultProxy(moto_endpoint) as proxy:
        proxy.edit_head = dropping_the_condition(ignored_on)
        run = run_uploader(Moto(), ["--source", str(source), "--no-overwrite"], moto_env(proxy.endpoint, name))
        csv_writes = [request for request in proxy.requests if is_object_write(request)]
    assert run.code == 2, run.out + run.err
    assert run.err.count("\n") == 1
    assert f"the store ignores conditional writes (If-None-Match on {operation})" in run.err
    assert "run without it, or land on a store that honours If-None-Match" in run.err
    assert csv_writes == []
    assert [key for key in keys_in(s3, name) if not key.endswith(CONDITIONAL_PROBE)] == []


def test_a_store_that_refuses_the_header_ends_the_run_with_exit_2(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    small_files(source, 2)
    proxy.faults = lambda request: "501" if "if-none-match" in request.headers else None
    run = run_uploader(s3_server, ["--source", str(source), "--no-overwrite"], proxied_env(s3_server, proxy, bucket))
    assert run.code == 2, run.out + run.err
    assert "the store refused a conditional write (NotImplemented)" in run.err
    assert not [request for request in proxy.requests if is_object_write(request)]


# --- two runs at once -------------------------------------------------------------------------


def holding_the_first_write(barrier: threading.Barrier, broken: list[str]) -> Callable[[Request], None]:
    """A proxy hook that holds its run's first file write until the other run's proxy holds one too."""
    held = threading.Event()
    lock = threading.Lock()

    def hook(request: Request) -> None:
        with lock:
            first = is_object_write(request) and not held.is_set()
            if first:
                held.set()
        if first:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                broken.append(request.path)

    return hook


def test_two_runs_at_once_into_one_partition_land_every_file_once(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    files = small_files(source, 200)
    barrier, broken = threading.Barrier(2, timeout=60), list[str]()
    with FaultProxy(s3_server.endpoint) as first, FaultProxy(s3_server.endpoint) as second:
        first.before_forward = holding_the_first_write(barrier, broken)
        second.before_forward = holding_the_first_write(barrier, broken)
        args = ["--source", str(source), "--no-overwrite"]
        runs = [start_uploader(args, proxied_env(s3_server, proxy, bucket)) for proxy in (first, second)]
        one, other = (finish(s3_server, process, timeout=180) for process in runs)
    assert broken == []  # both runs' first writes were in flight together
    assert (one.code, other.code) == (0, 0), one.err + other.err
    assert sent(one).isdisjoint(sent(other))
    assert sent(one) | sent(other) == set(files)
    for run in (one, other):  # both listed an empty partition: every file the other landed met a 412 here
        assert len(sent(run)) + run.out.count(ALREADY_THERE) == len(files), run.out
    for path in files:
        assert body(admin_s3, bucket, key_of(path)) == path.read_bytes(), path
