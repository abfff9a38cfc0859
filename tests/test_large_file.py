"""A file over 5 GiB goes up in valid parts (S3 allows at most 10,000) with memory as flat as for a 20 MiB file.

SeaweedFS cannot store 5 GiB in test time, so the fault proxy sinks the parts and the completion (faultproxy.py,
``sink``): the uploader runs end to end through its command line, and the proxy checks every byte it was sent."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from datagen import write_series
from faultproxy import FaultProxy
from seaweed import SeaweedServer
from test_cli import SCRIPT, SERIES, Run, body
from test_reliability import proxied_env

from s3_landing import discovery

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
HUGE = 5 * 1024 * MIB + MIB  # over S3's 5 GiB limit of a single PUT
REFERENCE = 20 * MIB  # three parts: the same code path, a small file
MAX_PARTS = 10_000
MIN_PART = 5 * MIB  # S3's smallest part but the last
# Measured on 2 cores: peak RSS of the uploader 82.1 MiB for the 20 MiB file (3 parts, all in flight at once) and
# 106.0 MiB for the 5 GiB + 1 MiB one (641 parts of 8 MiB; obstore holds up to 4 in flight, one being filled and one
# being read) on Python 3.13, 76.7 / 102.4 MiB on 3.9; the test takes 36 s (3.13) and 30 s (3.9), most of it reading
# and hashing 5 GiB twice in the uploader and once in the proxy. The bound for a 2 GB file is 100 MB more.
RSS_SLACK_KIB = 48 * 1024

# Runs the uploader as its own child and writes the child's peak RSS (KiB) to argv[1]. The launcher is small and
# spawns without copying itself, so the figure is the uploader's own, not inherited from pytest's process.
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as handle:
    handle.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def sparse_file(path: Path, size: int) -> Path:
    """A file of zeros that takes no disk space and reads at memory speed."""
    path.touch()
    os.truncate(path, size)
    return path


def run_measured(server: SeaweedServer, args: list[str], env: dict[str, str], rss_file: Path) -> tuple[Run, int]:
    """Run the script as test_cli.run_uploader does (no credential or traceback in its output); and its peak RSS."""
    command = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(rss_file), sys.executable, str(SCRIPT), *args]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = completed.stdout + completed.stderr
    for access_key, secret_key in server.creds.values():
        assert access_key not in output
        assert secret_key not in output
    assert "Traceback" not in output
    return Run(completed), int(rss_file.read_text())


def upload_through_sink(
    server: SeaweedServer, bucket: str, folder: Path, rss_file: Path
) -> tuple[Run, int, FaultProxy]:
    """Upload the folder through a proxy that sinks the multipart parts; the run, its peak RSS and the proxy."""
    with FaultProxy(server.endpoint) as proxy:
        proxy.sink = True
        env = proxied_env(server, proxy, bucket, UPLOAD_CONCURRENCY="16")
        run, rss = run_measured(server, ["--source", str(folder)], env, rss_file)
    return run, rss, proxy


def zeros_digests(length: int) -> tuple[str, str]:
    zeros = bytes(length)
    return hashlib.md5(zeros).hexdigest(), base64.b64encode(hashlib.sha256(zeros).digest()).decode()


def test_a_file_over_5_gib_goes_in_valid_parts_with_flat_memory(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    reference, huge = tmp_path / "reference", tmp_path / "huge"
    reference.mkdir()
    huge.mkdir()
    sparse_file(reference / "movies_big.csv", REFERENCE)
    write_series(reference / "series_a.csv", 2_000, seed=1)
    big = sparse_file(huge / "movies_big.csv", HUGE)
    small = huge / "series_b.csv"
    write_series(small, 2_000, seed=2)
    try:
        run, reference_rss, _ = upload_through_sink(s3_server, bucket, reference, tmp_path / "reference.rss")
        assert run.code == 0, run.err
        started = time.monotonic()
        run, huge_rss, proxy = upload_through_sink(s3_server, bucket, huge, tmp_path / "huge.rss")
        print(
            f"5 GiB upload: {time.monotonic() - started:.1f} s; peak RSS {reference_rss} KiB (20 MiB), {huge_rss} KiB"
        )
        assert run.code == 0, run.err
        assert run.summary().startswith("Resumo: 2 enviados, 0 ignorados sem alterações, 0 com falha"), run.out
    finally:
        big.unlink()

    parts = sorted(proxy.sunk_parts, key=lambda part: part.number)  # the checksum probe's part was refused
    assert len({part.upload_id for part in parts}) == 1
    assert [part.number for part in parts] == list(range(1, len(parts) + 1))  # contiguous, each sent once
    assert len(parts) <= MAX_PARTS
    part_size = parts[0].length
    assert part_size >= MIN_PART
    assert all(part.length == part_size for part in parts[:-1])
    assert 0 < parts[-1].length <= part_size
    assert sum(part.length for part in parts) == HUGE
    assert part_size == discovery.part_size_for(HUGE)
    digests = {length: zeros_digests(length) for length in {part.length for part in parts}}
    for part in parts:
        assert (part.md5, part.sha256) == digests[part.length], part
        assert part.declared_sha256 == part.sha256, part  # each part carried its checksum, for the store to check

    [completion] = proxy.completions
    assert completion.status == 200
    assert completion.upload_id == parts[0].upload_id
    assert completion.path == f"/{bucket}/Raw/Local/CSV/Movies/2022/05/02/movies_big.csv"
    assert completion.parts == tuple((part.number, f'"{part.md5}"') for part in parts)
    assert body(admin_s3, bucket, f"{SERIES}/series_b.csv") == small.read_bytes()

    assert huge_rss - reference_rss < RSS_SLACK_KIB, (reference_rss, huge_rss)
