"""The skip checks of re-runs in a helper process: the same reads as in the calling thread and in the same order; a
Ctrl-C or SIGTERM to the process group that leaves the helper alone; a stop that waits for nothing; the calling
thread taking over when there is no helper, or it dies; a helper that ends with the run however the run ends; and a
real re-run, through upload_s3.py as users start it, checked by the helper."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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

FILES = 2 * unchanged.BATCH_FILES + 10  # three batches, the last one closed by rest()


def listing(files: int, total_bytes: int) -> list[RemoteObject]:
    """files small objects listed, total_bytes in all."""
    each = total_bytes // files
    return [RemoteObject(each, "etag")] * (files - 1) + [RemoteObject(total_bytes - each * (files - 1), "etag")]


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


def with_a_helper(with_stats: bool = False, stop: threading.Event | None = None) -> SkipChecks:
    checks = SkipChecks(with_stats, stop or threading.Event(), use_helper=True)
    assert checks.helper is not None
    return checks


def stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state, parent, process group...); None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def is_gone(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is None or fields[0] == "Z"


def settled(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """condition(), polled until it holds or seconds have passed."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("with_stats", [False, True])
def test_the_helper_reads_each_file_as_the_calling_thread_would_and_gives_them_back_in_order(
    tmp_path: Path, with_stats: bool
) -> None:
    sources = small_files(tmp_path / "data", FILES)
    changed, gone = sources[3], sources[unchanged.BATCH_FILES + 5]
    Path(changed.real_path).write_bytes(b"id|title\n3|Alien 99\n")  # the same size
    os.utime(changed.real_path, ns=(changed.mtime_ns, changed.mtime_ns + 10**9))  # another mtime, whatever the clock
    Path(gone.real_path).unlink()
    jobs = jobs_of(sources)
    with with_a_helper(with_stats) as checks:
        assert checks.helper is not None
        assert checks.helper.submit(os.getpid).result() != os.getpid()
        checked = list(all_checked(checks, jobs))
    assert [job for job, _ in checked] == jobs
    expected = [None if job.source in (changed, gone) else read_by_hand(job.source, with_stats) for job in jobs]
    assert [read for _, read in checked] == expected


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_leaves_the_helper_at_work(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], signal_number: signal.Signals
) -> None:
    """A terminal's Ctrl-C (SIGINT), or a service manager's stop (SIGTERM), reaches every process of the group: the
    helper must not die of it (nor print a traceback) before the run's own signal handling ends the run."""
    jobs = jobs_of(small_files(tmp_path / "data", 3))
    with with_a_helper() as checks:
        assert checks.helper is not None
        helper_pid = checks.helper.submit(os.getpid).result()
        os.kill(helper_pid, signal_number)
        assert checks.helper.submit(os.getpid).result() == helper_pid
        assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]
    assert "Traceback" not in capfd.readouterr().err
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # the main thread's mask is as it was


def test_a_stopped_run_waits_neither_for_the_helper_nor_reads_the_files_left(tmp_path: Path) -> None:
    jobs = jobs_of(small_files(tmp_path / "data", FILES))
    stop = threading.Event()
    began = time.monotonic()
    with with_a_helper(stop=stop) as checks:
        assert checks.helper is not None
        checks.helper.submit(time.sleep, 5)  # a helper busy for long: on a slow disk, say
        checked = [pair for job in jobs for pair in checks.add(job)]
        stop.set()
        checked += checks.rest()
    assert time.monotonic() - began < 4
    assert [job for job, _ in checked] == jobs
    assert [read for _, read in checked] == [None] * len(jobs)  # not read: each is reported as not started


def test_when_the_helper_dies_the_calling_thread_checks_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper killed with batches waiting for it (small ones: on Python 3.9, a worker that dies while a batch is
    still being written to it leaves the pool's own thread hanging, which the run leaves behind by os._exit but a
    test process would wait for at its exit, CPython gh-94777)."""
    monkeypatch.setattr(unchanged, "BATCH_FILES", 4)
    jobs = jobs_of(small_files(tmp_path / "data", 30))
    with with_a_helper() as checks:
        assert checks.helper is not None
        helper_pid = checks.helper.submit(os.getpid).result()
        checks.helper.submit(time.sleep, 5)  # busy: the batches wait
        checked = [pair for job in jobs[:10] for pair in checks.add(job)]
        os.kill(helper_pid, signal.SIGKILL)
        checked += all_checked(checks, jobs[10:])
        assert checks.helper_failed
    assert [job for job, _ in checked] == jobs
    assert [read for _, read in checked] == [read_by_hand(job.source, False) for job in jobs]


LEFT_BEHIND = """
import os, threading
from s3_landing.transfer.unchanged import SkipChecks
checks = SkipChecks(False, threading.Event(), use_helper=True)
print(checks.helper.submit(os.getpid).result(), flush=True)
os._exit(0)  # as a second Ctrl-C leaves: no shut-down of the helper
"""


def test_the_helper_ends_when_the_run_leaves_without_shutting_it_down() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", LEFT_BEHIND],
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    helper_pid = int(completed.stdout)
    assert settled(lambda: is_gone(helper_pid))
    assert "Traceback" not in completed.stderr


def test_only_a_run_with_enough_to_check_on_both_sides_starts_a_helper() -> None:
    files, size = unchanged.HELPER_FROM_FILES, unchanged.HELPER_FROM_BYTES
    assert unchanged.worth_a_helper(listing(files, size), files, size)
    assert unchanged.worth_a_helper([*listing(files, size), RemoteObject(MULTIPART_THRESHOLD, "")], files * 2, size)
    assert not unchanged.worth_a_helper([*listing(files - 1, size), RemoteObject(MULTIPART_THRESHOLD, "")], files, size)
    assert not unchanged.worth_a_helper(listing(files, size - 1), files, size)
    assert not unchanged.worth_a_helper(listing(files, size), files - 1, size)  # a shard, or a few new files
    assert not unchanged.worth_a_helper(listing(files, size), files, size - 1)


def test_without_a_helper_the_calling_thread_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = jobs_of(small_files(tmp_path / "data", 3))
    with SkipChecks(False, threading.Event(), use_helper=False) as checks:
        assert checks.helper is None
        assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]

    def no_processes(method: str) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing, "get_context", no_processes)
    with SkipChecks(False, threading.Event(), use_helper=True) as checks:
        assert checks.helper is None
        assert [read for _, read in all_checked(checks, jobs)] == [read_by_hand(job.source, False) for job in jobs]


def test_upload_s3_py_imported_by_the_helper_loads_nothing_of_the_program() -> None:
    """spawn imports the main script again in the helper, as __mp_main__: it must not load the whole program."""
    probe = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); print(sorted(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=True
    )
    assert "s3_landing" not in completed.stdout


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


SLOW_OUTCOMES = """
import time
from s3_landing import report
outcome = report.Reporter.outcome
report.Reporter.outcome = lambda reporter, what: (time.sleep(0.005), outcome(reporter, what))[1]
"""


def live_processes_of_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        fields = stat_fields(entry.name) if entry.name.isdigit() else None
        if fields is not None and fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(entry.name))
    return found


def test_ctrl_c_during_a_re_run_checked_by_the_helper_ends_every_process_of_the_run(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    """SIGINT to the whole process group, as a terminal sends it, in the middle of a re-run (each outcome slowed by
    5 ms): the run ends with 130 and its summary, no traceback, and neither the helper nor any other process of the
    run is left behind."""
    source = tmp_path / "data"
    small_files(source, FILES)
    env = {**uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE), "PYTHONPATH": str(SCRIPT.parent)}
    command = [sys.executable, "-c", WITH_A_HELPER, str(SCRIPT), "--source", str(source)]
    assert subprocess.run(command, env=env, capture_output=True, timeout=120, check=False).returncode == 0
    slowed = [sys.executable, "-c", SLOW_OUTCOMES + WITH_A_HELPER, *command[3:]]
    with subprocess.Popen(
        slowed, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as run:
        assert run.stdout is not None
        first = run.stdout.readline()
        assert "ignorado" in first, first
        os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=30)
    assert run.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert "helpers started: [True]" in out
    assert "Resumo: 0 enviados" in out
    assert settled(lambda: live_processes_of_group(run.pid) == []), live_processes_of_group(run.pid)
