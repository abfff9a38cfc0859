"""Every file lands intact or is named as failed: under network faults, a vanishing server, signals, files that
change mid-upload, a least-privilege identity and TLS with a private CA. Through the real command line, with the
fault-injecting proxy of faultproxy.py between the uploader and SeaweedFS; the bucket is checked byte-for-byte."""

from __future__ import annotations

import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from datagen import write_many, write_movies, write_series
from faultproxy import Fault, FaultProxy, Request, every_nth, first_attempts
from seaweed import SeaweedServer
from test_cli import DATE, MOVIES, SCRIPT, SERIES, Run, body, keys_in, run_uploader, uploader_env

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
BIG = 20 * MIB + 4321  # three parts of the uploader's 8 MiB
NETWORK_FAULTS: list[Fault] = ["reset-before", "reset-after", "cut", "500", "503"]
LEGACY_OBSTORE = version("obstore").startswith("0.8.")  # Python 3.9's (README, Development)
SIGNAL_DEADLINE = 10.0  # seconds from the signal to the exit: what `docker stop` allows before SIGKILL


# --- helpers ------------------------------------------------------------------------------------


def key_of(path: Path) -> str:
    return f"{MOVIES if 'movies' in path.name.lower() else SERIES}/{path.name}"


def assert_holds_exactly(s3: S3Client, bucket: str, files: Iterable[Path]) -> None:
    """The bucket holds these files, byte-for-byte under their keys, and nothing else."""
    expected = {key_of(path): path for path in files}
    assert keys_in(s3, bucket) == set(expected)
    for key, path in expected.items():
        assert body(s3, bucket, key) == path.read_bytes(), key


def assert_no_multipart_uploads(s3: S3Client, bucket: str) -> None:
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def assert_no_upload_holds_parts(s3: S3Client, bucket: str, proxy: FaultProxy) -> None:
    """No multipart upload is left but the known limit (README): a CreateMultipartUpload whose answer was lost after
    the server acted on it (reset or cut after forwarding) leaves an empty upload the client never heard of, which
    botocore's retry replaces with another."""
    lost = [request for request in proxy.requests if request.is_create and request.fault in ("reset-after", "cut")]
    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(left) <= len(lost)
    for upload in left:
        assert s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", []) == []


def sent(run: Run) -> set[Path]:
    """The files the run reported as sent."""
    prefix = "Arquivo enviado: "
    return {Path(line[len(prefix) :].split(" -> ")[0]) for line in run.out.splitlines() if line.startswith(prefix)}


def failed(run: Run) -> dict[Path, str]:
    """The files (or folders) the run reported as failed, with the reason given."""
    prefix = "Erro ao enviar "
    pairs = (line[len(prefix) :].split(": ", 1) for line in run.err.splitlines() if line.startswith(prefix))
    return {Path(path): reason for path, reason in pairs}


def start_uploader(
    args: list[str], env: dict[str, str], preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[str]:
    """The script in a subprocess, as run_uploader runs it, but not waited for (see finish)."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )


def finish(server: SeaweedServer, process: subprocess.Popen[str], timeout: float) -> Run:
    """Wait for the uploader (killing it after ``timeout`` s); the same output checks as run_uploader."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the uploader did not exit within {timeout} s\n{out}\n{err}")
    for access_key, secret_key in server.creds.values():
        assert access_key not in out + err
        assert secret_key not in out + err
    assert "Traceback" not in out + err
    return Run(subprocess.CompletedProcess(process.args, process.returncode, out, err))


def proxied_env(server: SeaweedServer, proxy: FaultProxy, bucket: str, **extra: str) -> dict[str, str]:
    trust = {"AWS_CA_BUNDLE": proxy.ca_file} if proxy.ca_file else {}
    return uploader_env(server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, AWS_ENDPOINT_URL=proxy.endpoint, **trust, **extra)


def small_files(folder: Path, count: int) -> list[Path]:
    return write_many(folder, count, 3_000, seed=count)


def big_file(folder: Path, size: int = BIG) -> Path:
    path = folder / "movies_big.csv"
    write_movies(path, size, seed=7)
    return path


# --- faults -------------------------------------------------------------------------------------


def test_faults_on_a_tenth_of_requests_still_land_every_file_intact(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 60), big_file(tmp_path)]
    tenth = every_nth(10, NETWORK_FAULTS)
    # obstore 0.8 retries no broken connection itself: the file is sent again whole, so a connection broken on the
    # first attempt of every part could never land it (README, Development); answers 500 and 503 it retries
    part_faults: list[Fault] = ["500", "503"] if LEGACY_OBSTORE else NETWORK_FAULTS
    each_part_once = first_attempts(part_faults, when=lambda request: request.is_part)
    any_proxy.faults = lambda request: tenth(request) or each_part_once(request)
    env = proxied_env(s3_server, any_proxy, bucket, AWS_MAX_ATTEMPTS="5")
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 0, run.err
    assert set(any_proxy.injected) == set(NETWORK_FAULTS)
    assert any(request.is_part and request.fault for request in any_proxy.requests)
    assert sent(run) == set(files)
    assert run.summary().startswith("Resumo: 61 enviados, 0 ignorados sem alterações, 0 com falha")
    assert_holds_exactly(admin_s3, bucket, files)
    assert_no_upload_holds_parts(admin_s3, bucket, any_proxy)


def test_a_lost_create_answer_leaves_only_an_empty_upload_and_the_file_lands(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = big_file(tmp_path)
    proxy.faults = first_attempts(["reset-after"], when=lambda request: request.is_create)
    run = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    assert run.code == 0, run.err
    assert_holds_exactly(admin_s3, bucket, [big])
    # the probe's, and the file's where obstore retried the create itself (0.11+); on 0.8 the failed write was
    # cleaned up (the upload this run began, aborted) before the file was sent again
    left = admin_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(left) == (1 if LEGACY_OBSTORE else 2), left
    assert_no_upload_holds_parts(admin_s3, bucket, proxy)


def test_server_going_away_fails_the_rest_and_a_rerun_sends_only_what_is_missing(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 16)
    any_proxy.stop_forwarding(after=4 + 6)  # 2 listings and the write check (create, abort), then 6 uploads
    env = proxied_env(s3_server, any_proxy, bucket, UPLOAD_CONCURRENCY="8")
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 1
    reasons = failed(run)
    assert reasons and sent(run) and set(reasons) | sent(run) == set(files)
    assert all(any_proxy.endpoint in reason for reason in reasons.values()), reasons  # "cannot reach <endpoint>..."
    landed = [path for path in files if key_of(path) in keys_in(admin_s3, bucket)]
    assert sent(run) <= set(landed)
    assert_holds_exactly(admin_s3, bucket, landed)

    any_proxy.resume_forwarding()
    again = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert again.code == 0, again.err
    assert sent(again) == set(files) - set(landed)
    assert again.summary().startswith(f"Resumo: {len(files) - len(landed)} enviados, {len(landed)} ignorados")
    assert_holds_exactly(admin_s3, bucket, files)


@pytest.mark.parametrize("fault", ["500", "reset-after"])
def test_a_multipart_upload_whose_parts_fail_is_aborted(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    good = small_files(tmp_path / "small", 3)
    big = big_file(tmp_path)
    any_proxy.faults = lambda request: fault if request.is_part else None
    env = proxied_env(s3_server, any_proxy, bucket, AWS_MAX_ATTEMPTS="1")
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 1
    assert set(failed(run)) == {big}
    assert any(request.method == "DELETE" and "uploadId=" in request.target for request in any_proxy.requests)
    assert_no_multipart_uploads(admin_s3, bucket)
    assert_holds_exactly(admin_s3, bucket, good)


def test_bytes_corrupted_on_the_way_are_refused_by_the_server_and_the_file_failed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path, 2), big_file(tmp_path)]
    any_proxy.faults = lambda request: "corrupt" if request.method == "PUT" else None
    run = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, any_proxy, bucket))
    assert run.code == 1
    reasons = failed(run)
    assert set(reasons) == set(files), run.err
    assert all(reason.startswith("S3 answered BadDigest") for reason in reasons.values()), reasons
    assert keys_in(admin_s3, bucket) == set()
    assert_no_multipart_uploads(admin_s3, bucket)


def test_an_early_refusal_of_large_uploads_is_reported_as_such_and_the_small_files_land(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    """obstore sends no Expect: 100-continue, so the body is on its way when the refusal comes and the connection
    breaks: obstore sends it again, and hears the refusal within a few attempts. What counts holds: the refused files
    fail as refused, not as network errors, and nothing is left open."""
    small = small_files(tmp_path / "small", 3)
    single = tmp_path / "series_two_mib.csv"  # one PUT
    write_series(single, 2 * MIB, seed=5)
    big = big_file(tmp_path)  # parts
    any_proxy.refuse_from = MIB
    env = proxied_env(s3_server, any_proxy, bucket, AWS_MAX_ATTEMPTS="5")
    run = run_uploader(s3_server, ["--source", str(tmp_path)], env)
    assert run.code == 1, run.out + run.err
    reasons = failed(run)
    assert set(reasons) == {single, big}, run.err
    denied = f"access denied on s3://{bucket}/Raw/Local/CSV"
    assert all(reason.startswith(denied) for reason in reasons.values()), reasons
    assert any(request.fault == "refuse" for request in any_proxy.requests)
    assert_holds_exactly(admin_s3, bucket, small)
    assert_no_multipart_uploads(admin_s3, bucket)


def test_a_completion_whose_answer_is_lost_is_checked_in_the_bucket(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    big = big_file(tmp_path)
    any_proxy.strict_completions = True  # the retry finds the upload gone, as on AWS
    any_proxy.faults = first_attempts(["reset-after"], when=lambda request: request.is_complete)
    run = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, any_proxy, bucket))
    assert run.code == 0, run.out + run.err
    completions = [request for request in any_proxy.requests if request.is_complete]
    assert completions[0].fault == "reset-after"  # then obstore retries it (0.11+) or not (0.8): a HEAD settles it
    assert sent(run) == {big}
    assert_holds_exactly(admin_s3, bucket, [big])


def test_every_request_is_signed_with_sigv4(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """AWS refuses Signature Version 2 on buckets created since June 2020 (SeaweedFS still takes it)."""
    files = [*small_files(tmp_path, 2), big_file(tmp_path)]
    run = run_uploader(s3_server, ["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    assert run.code == 0, run.err
    assert_holds_exactly(admin_s3, bucket, files)
    assert [request for request in proxy.requests if not request.is_sigv4] == []


# --- signals ------------------------------------------------------------------------------------


def signal_when(
    process: subprocess.Popen[str], proxy: FaultProxy, signum: signal.Signals, predicate: Callable[[Request], bool]
) -> float:
    """Send ``signum`` once a request matching ``predicate`` reaches the proxy; returns when it was sent."""
    proxy.wait_for(predicate)
    process.send_signal(signum)
    return time.monotonic()


def assert_interrupted(run: Run, code: int, elapsed: float) -> None:
    assert run.code == code, run.out + run.err
    assert elapsed < SIGNAL_DEADLINE
    assert "Execução interrompida" in run.out
    assert "Processo concluído!" in run.out
    assert run.summary().startswith("Resumo: ")


def test_sigint_stops_starting_files_and_reports_what_landed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 12)
    proxy.stall_seconds = 0.5
    proxy.faults = lambda request: "stall" if request.method == "PUT" else None
    process = start_uploader(["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket, UPLOAD_CONCURRENCY="1"))
    sent_at = signal_when(process, proxy, signal.SIGINT, lambda request: request.method == "PUT" and request.number > 6)
    run = finish(s3_server, process, timeout=30)
    assert_interrupted(run, 130, time.monotonic() - sent_at)
    reasons = failed(run)
    assert sent(run) and reasons and sent(run) | set(reasons) == set(files)
    assert all("interrupted" in reason for reason in reasons.values()), reasons
    assert_holds_exactly(admin_s3, bucket, sent(run))
    summary = f"Resumo: {len(sent(run))} enviados, 0 ignorados sem alterações, {len(reasons)} com falha"
    assert run.summary().startswith(summary)


def test_quiet_counts_the_files_not_started_after_a_signal_on_one_line(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 30)
    proxy.stall_seconds = 0.5
    proxy.faults = lambda request: "stall" if request.method == "PUT" else None
    env = proxied_env(s3_server, proxy, bucket, UPLOAD_CONCURRENCY="1", QUIET="true")
    process = start_uploader(["--source", str(tmp_path)], env)
    sent_at = signal_when(process, proxy, signal.SIGINT, lambda request: request.method == "PUT" and request.number > 5)
    run = finish(s3_server, process, timeout=30)
    assert run.code == 130, run.out + run.err
    assert time.monotonic() - sent_at < SIGNAL_DEADLINE
    assert run.out.splitlines()[:1] == ["Processo concluído!"]  # --quiet: no line per file
    errors = run.err.splitlines()
    not_started = [line for line in errors if line.startswith("Erro: ")]
    assert len(not_started) == 1, errors
    count = int(not_started[0].split()[1])
    assert count > 10
    in_flight = [line for line in errors if line.startswith("Erro ao enviar ")]
    assert all("interrupted while it was being sent" in line for line in in_flight), in_flight
    uploaded, failures = (int(word) for word in re.findall(r"(\d+) (?:enviados|com falha)", run.summary()))
    assert (uploaded + failures, failures) == (len(files), count + len(in_flight)), run.summary()
    assert len(keys_in(admin_s3, bucket)) >= uploaded


def test_sigterm_aborts_the_multipart_upload_in_flight(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    big = big_file(tmp_path)  # three parts, each answered after a second
    another_runs = admin_s3.create_multipart_upload(Bucket=bucket, Key=key_of(big))["UploadId"]
    time.sleep(2.5)  # uploads are told apart by when they began, to the second
    proxy.stall_seconds = 1
    proxy.faults = lambda request: "stall" if request.is_part else None
    process = start_uploader(["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket, UPLOAD_CONCURRENCY="1"))
    sent_at = signal_when(process, proxy, signal.SIGTERM, lambda request: request.is_part)
    run = finish(s3_server, process, timeout=30)
    assert_interrupted(run, 143, time.monotonic() - sent_at)
    assert set(failed(run)) == {big}
    assert not sent(run)
    assert keys_in(admin_s3, bucket) == set()
    left = admin_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [upload["UploadId"] for upload in left] == [another_runs]  # ours aborted, the other run's kept


def test_sigterm_ends_the_run_within_10_s_even_when_the_server_hangs(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    files = [*small_files(tmp_path / "small", 4), big_file(tmp_path)]
    proxy.stall_seconds = 120  # longer than the uploader's read timeout: only the signal can end the wait
    proxy.faults = lambda request: "stall" if request.method == "PUT" else None
    process = start_uploader(["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    sent_at = signal_when(process, proxy, signal.SIGTERM, lambda request: request.is_part)
    run = finish(s3_server, process, timeout=SIGNAL_DEADLINE + 5)
    assert_interrupted(run, 143, time.monotonic() - sent_at)
    assert set(failed(run)) == set(files)
    assert_no_multipart_uploads(admin_s3, bucket)


# --- stalls: the read timeout -------------------------------------------------------------------


# The command line with the engine's timeouts shortened (they are not settings): a 1 s read timeout, and on
# obstore 0.8, which has none, a 2 s limit on each request. In a process of its own, which ends as the command does.
SHORT_TIMEOUTS = (
    "import sys; from s3_landing.transfer import engine; "
    "engine.READ_TIMEOUT_SECONDS = 1; engine.LEGACY_REQUEST_TIMEOUT_SECONDS = 2; "
    "from s3_landing.cli import entry; entry()"
)


def run_with_short_timeouts(server: SeaweedServer, proxy: FaultProxy, bucket: str, source: Path, **env: str) -> Run:
    environment = {**proxied_env(server, proxy, bucket, **env), "PYTHONPATH": str(SCRIPT.parent)}
    command = [sys.executable, "-c", SHORT_TIMEOUTS, "--source", str(source), "--concurrency", "4"]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in completed.stderr
    return Run(completed)


def test_a_stalled_answer_times_out_and_is_retried(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    files = small_files(tmp_path, 4)
    any_proxy.stall_seconds = 3
    any_proxy.faults = first_attempts(["stall"], when=lambda request: request.method == "PUT")
    run = run_with_short_timeouts(s3_server, any_proxy, bucket, tmp_path)
    assert run.code == 0, run.err
    assert any_proxy.injected["stall"] == len(files)
    assert_holds_exactly(admin_s3, bucket, files)


def test_a_server_that_never_answers_fails_the_file_with_a_read_timeout(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, any_proxy: FaultProxy, tmp_path: Path
) -> None:
    stuck = tmp_path / "series_stuck.csv"
    write_series(stuck, 5_000, seed=3)
    good = small_files(tmp_path / "good", 2)
    any_proxy.stall_seconds = 5
    any_proxy.faults = lambda request: "stall" if request.path.endswith("/series_stuck.csv") else None
    run = run_with_short_timeouts(s3_server, any_proxy, bucket, tmp_path, AWS_MAX_ATTEMPTS="2")
    assert run.code == 1
    assert run.err.splitlines() == [
        f"Erro ao enviar {stuck}: the server stopped answering (read timeout), so the upload is not confirmed: "
        "run again to check"
    ]
    assert set(keys_in(admin_s3, bucket)) >= {key_of(path) for path in good}


# --- files that change while they are sent ------------------------------------------------------


@pytest.mark.parametrize("size", [50_000, BIG], ids=["single-put", "multipart"])
def test_a_file_modified_during_its_upload_is_failed_not_sent(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, proxy: FaultProxy, tmp_path: Path, size: int
) -> None:
    changing = big_file(tmp_path, size)
    original = changing.read_bytes()
    proxy.stall_seconds = 1.5
    proxy.faults = lambda request: "stall" if request.method == "PUT" else None
    process = start_uploader(["--source", str(tmp_path)], proxied_env(s3_server, proxy, bucket))
    proxy.wait_for(lambda request: request.method == "PUT")
    with changing.open("ab") as handle:
        handle.write(b"tt9999999|late row\n")
    run = finish(s3_server, process, timeout=60)
    assert run.code == 1
    assert set(failed(run)) == {changing}
    assert failed(run)[changing].endswith("; it was not reported as sent: run again once it is stable")
    assert not sent(run)
    if key_of(changing) in keys_in(admin_s3, bucket):  # a single PUT may have landed: then it is the old bytes
        assert body(admin_s3, bucket, key_of(changing)) == original
    assert_no_multipart_uploads(admin_s3, bucket)


# --- least privilege ----------------------------------------------------------------------------

LAKE = "lake"


class LeastPrivilegeServer(SeaweedServer):
    """SeaweedFS with one more identity, ``uploader``: list the bucket ``lake`` and write under the raw zone only
    (SeaweedFS's closest match to the README's policy: no Read, no Admin, nothing elsewhere)."""

    ACTIONS = (f"List:{LAKE}", f"Write:{LAKE}/Raw/Local/CSV/*")

    def __init__(self) -> None:
        super().__init__(extra_args=["-idleTimeout=2"])  # its stop waits out idle connections: 2 s, not 10
        self.creds["uploader"] = ("AKIALEAST" + secrets.token_hex(6).upper(), secrets.token_urlsafe(30))

    def s3_config(self) -> dict[str, object]:
        config = super().s3_config()
        access_key, secret_key = self.creds["uploader"]
        identities = cast("list[dict[str, object]]", config["identities"])
        identities.append(
            {
                "name": "uploader",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": list(self.ACTIONS),
            }
        )
        return config


def test_an_identity_limited_to_list_and_write_under_the_prefix_is_enough(tmp_path: Path) -> None:
    files = [*small_files(tmp_path, 3), big_file(tmp_path)]
    with LeastPrivilegeServer() as server:
        admin = server.client("admin")
        admin.create_bucket(Bucket=LAKE)
        env = uploader_env(server, "uploader", BUCKET_NAME=LAKE, UPLOAD_DATE=DATE)
        run = run_uploader(server, ["--source", str(tmp_path)], env)
        assert run.code == 0, run.err
        assert_holds_exactly(admin, LAKE, files)
        assert_no_multipart_uploads(admin, LAKE)
        outside = run_uploader(server, ["--source", str(tmp_path), "--prefix", "Elsewhere"], env)
        assert outside.code == 2
        assert "access denied on s3://lake/Elsewhere" in outside.err


# --- TLS ----------------------------------------------------------------------------------------


def test_tls_is_verified_and_aws_ca_bundle_trusts_a_private_ca(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path, private_ca: tuple[Path, ssl.SSLContext]
) -> None:
    ca, context = private_ca
    files = small_files(tmp_path / "data", 2)
    with FaultProxy(s3_server.endpoint, tls=context) as tls_proxy:
        assert tls_proxy.endpoint.startswith("https://")
        env = proxied_env(s3_server, tls_proxy, bucket)
        untrusted = run_uploader(s3_server, ["--source", str(tmp_path / "data")], env)
        assert untrusted.code == 2
        assert untrusted.err.splitlines() == [
            "upload_s3: error: TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
        ]
        trusted = run_uploader(s3_server, ["--source", str(tmp_path / "data")], {**env, "AWS_CA_BUNDLE": str(ca)})
    assert trusted.code == 0, trusted.err
    assert_holds_exactly(admin_s3, bucket, files)
