"""The skip checks of re-runs in a helper process: the same reads as in the calling thread and in the same order, a
Ctrl-C to the process group that leaves the helper alone, and the calling thread taking over when there is no
helper, or it dies; and a real re-run, through upload_s3.py as users start it, checked by the helper."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from seaweed import SeaweedServer
from test_cli import DATE, SCRIPT, uploader_env
from test_operations import expected_stats

from s3_landing.discovery import MULTIPART_THRESHOLD, Job, RemoteObject, SourceFile, walk_csv_files
from s3_landing.transfer import unchanged
from s3_landing.transfer.unchanged import Read, SkipChecks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def listing(files: int, total_bytes: int) -> list[RemoteObject]:
    """files small objects listed, total_bytes in all."""
    each = total_bytes // files
    return [RemoteObject(each, "etag")] * (files - 1) + [RemoteObject(total_bytes - each * (files - 1), "etag")]


WORTH_A_HELPER = listing(unchanged.HELPER_FROM_FILES, unchanged.HELPER_FROM_BYTES)
FILES = 2 * unchanged.BATCH_FILES + 10  # three batches, the last one closed by rest()


def small_files(folder: Path, count: int) -> list[SourceFile]:
    folder.mkdir()
    for index in range(count):
        (folder / f"series_{index:04d}.csv").write_bytes(b"id|title\n%d|Alien %d\n" % (index, index * 7))
    found = [item for item in walk_csv_files(folder) if isinstance(item, SourceFile)]
    assert len(found) == count
    return found


def jobs_of(sources: list[SourceFile]) -> list[Job]:
    return [Job(source, f"Raw/{source.name}", RemoteObject(source.size, "etag")) for source in sources]


def read_by_hand(source: SourceFile, with_stats: bool) -> Read:
    path = Path(source.real_path)
    stats = expected_stats(path) if with_stats else None
    if stats is not None:
        del stats["size"]
    return Read(hashlib.md5(path.read_bytes()).hexdigest(), stats)


def all_checked(checks: SkipChecks, jobs: list[Job]) -> Iterator[tuple[Job, Read | None]]:
    for job in jobs:
        yield from checks.add(job)
    yield from checks.rest()


@pytest.mark.parametrize("with_stats", [False, True])
def test_the_helper_reads_each_file_as_the_calling_thread_would_and_gives_them_back_in_order(
    tmp_path: Path, with_stats: bool
) -> None:
    sources = small_files(tmp_path / "data", FILES)
    changed, gone = sources[3], sources[unchanged.BATCH_FILES + 5]
    Path(changed.real_path).write_bytes(b"id|title\n3|Alien 99\n")  # the same size, another mtime
    Path(gone.real_path).unlink()
    jobs = jobs_of(sources)
    with SkipChecks(with_stats, WORTH_A_HELPER) as checks:
        assert checks.helper is not None
        assert checks.helper.submit(os.getpid).result() != os.getpid()
        checked = list(all_checked(checks, jobs))
    assert [job for job, _ in checked] == jobs
    expected = [None if job.source in (changed, gone) else read_by_hand(job.source, with_stats) for job in jobs]
    assert [read for _, read in checked] == expected


def test_a_ctrl_c_to_the_process_group_leaves_the_helper_at_work(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A terminal sends SIGINT to every process of the group: the helper must not die of it (nor print a traceback)
    before the run's own signal handling ends the run."""
    jobs = jobs_of(small_files(tmp_path / "data", 3))
    with SkipChecks(False, WORTH_A_HELPER) as checks:
        assert checks.helper is not None
        helper_pid = checks.helper.submit(os.getpid).result()
        os.kill(helper_pid, signal.SIGINT)
        assert checks.helper.submit(os.getpid).result() == helper_pid
        assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]
    assert "Traceback" not in capfd.readouterr().err
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # the main thread's mask is as it was


def test_when_the_helper_dies_the_calling_thread_checks_the_rest(tmp_path: Path) -> None:
    jobs = jobs_of(small_files(tmp_path / "data", FILES))
    with SkipChecks(False, WORTH_A_HELPER) as checks:
        assert checks.helper is not None
        checked = [pair for job in jobs[:10] for pair in checks.add(job)]
        os.kill(checks.helper.submit(os.getpid).result(), signal.SIGKILL)
        checked += list(all_checked(checks, jobs[10:]))
    assert [job for job, _ in checked] == jobs
    assert [read for _, read in checked] == [read_by_hand(job.source, False) for job in jobs]


def test_a_small_listing_or_a_system_without_processes_leaves_the_checks_to_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = jobs_of(small_files(tmp_path / "data", 3))
    one_file_short = [
        *listing(unchanged.HELPER_FROM_FILES - 1, unchanged.HELPER_FROM_BYTES),
        RemoteObject(MULTIPART_THRESHOLD, ""),
    ]
    one_byte_short = listing(unchanged.HELPER_FROM_FILES, unchanged.HELPER_FROM_BYTES - 1)
    for short in (one_file_short, one_byte_short):
        with SkipChecks(False, short) as checks:
            assert checks.helper is None
            assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]

    def no_processes(method: str) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing, "get_context", no_processes)
    with SkipChecks(False, WORTH_A_HELPER) as checks:
        assert checks.helper is None
        assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]


# upload_s3.py run as users run it (so the helper's start imports it again, as __mp_main__), with the helper's
# threshold lowered and its start recorded (told on the way out: the command leaves by os._exit).
WITH_A_HELPER = """
import os, runpy, sys
from s3_landing.transfer import unchanged
unchanged.HELPER_FROM_FILES = unchanged.HELPER_FROM_BYTES = 1
started = []
start_helper = unchanged.start_helper
def recorded():
    helper = start_helper()
    started.append(helper is not None)
    return helper
unchanged.start_helper = recorded
def exit_telling(code):
    print("helpers started:", started, flush=True)
    exit_now(code)
exit_now, os._exit = os._exit, exit_telling
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def test_a_re_run_checked_by_the_helper_skips_what_landed_and_sends_what_changed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    small_files(source, FILES)
    changed = source / "series_0007.csv"
    env = {**uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE), "PYTHONPATH": str(SCRIPT.parent)}

    def run(*args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-c", WITH_A_HELPER, str(SCRIPT), "--source", str(source), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, output
        assert "Traceback" not in output
        return output

    assert "helpers started: []" in run()  # nothing listed: no helper
    changed.write_bytes(changed.read_bytes().replace(b"Alien", b"Alion"))
    manifest = tmp_path / "manifest.json"
    output = run("--manifest-file", str(manifest))
    assert "helpers started: [True]" in output
    assert f"Resumo: 1 enviados, {FILES - 1} ignorados sem alterações, 0 com falha" in output
    assert f"Iniciando upload de {changed}" in output
    files = {entry["path"]: entry for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"]}
    skipped = files["series_0300.csv"]
    assert skipped["status"] == "skipped"
    assert {name: skipped[name] for name in ("sha256", "header", "delimiter", "rows")} == {
        name: value for name, value in expected_stats(source / "series_0300.csv").items() if name != "size"
    }
    key = f"Raw/Local/CSV/Series/2022/05/02/{changed.name}"
    assert admin_s3.get_object(Bucket=bucket, Key=key)["Body"].read() == changed.read_bytes()
