#!/usr/bin/env python3
"""Run upload_s3.py under cProfile with every thread profiled by its own CPU clock, and merge the results.

Usage: ``python bench/profile_upload.py OUT.prof [upload_s3 arguments...]`` (settings from the environment, as for
upload_s3.py). Writes OUT.prof (pstats) and OUT.txt (top functions by own CPU time and by cumulative CPU time, and
who calls the hashing functions).

``python -m cProfile upload_s3.py`` would see the main thread only, which just waits for the pool. Here each thread
(the file pool and the part pool) gets a ``cProfile.Profile(time.thread_time)``, so the figures are CPU seconds of
that thread, not wall time spent waiting. Python 3.12+ allows one profiler at a time; there one profile covers all
threads with the process CPU clock, which mixes threads (the figures are then only indicative).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PER_THREAD = sys.version_info < (3, 12)
HASH_NAMES = ("update", "openssl_md5", "openssl_sha256", "crc32", "digest", "hexdigest")


def install_thread_profiling(profiles: list[cProfile.Profile]) -> None:
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]


def report(stats: pstats.Stats, wall: float, cpu: float) -> str:
    out = io.StringIO()
    out.write(f"wall {wall:.2f} s, process CPU {cpu:.2f} s (user+sys, with profiler overhead)\n")
    out.write(f"per-thread CPU clocks: {PER_THREAD}\n\n")
    stats.stream = out  # type: ignore[attr-defined]
    out.write("=== top 35 by own CPU time (tottime) ===\n")
    stats.sort_stats("tottime").print_stats(35)
    out.write("=== top 35 by cumulative CPU time ===\n")
    stats.sort_stats("cumulative").print_stats(35)
    out.write("=== who calls the hashing and checksum functions ===\n")
    stats.sort_stats("tottime").print_callers("|".join(HASH_NAMES))
    return out.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_path = Path(argv[1])
    sys.path.insert(0, os.environ.get("BENCH_UPLOAD_S3_DIR") or str(REPO))  # bench.py runs a snapshot
    profiles: list[cProfile.Profile] = []
    main_profile = cProfile.Profile(time.thread_time) if PER_THREAD else cProfile.Profile(time.process_time)
    if PER_THREAD:
        install_thread_profiling(profiles)
    started, cpu_started = time.perf_counter(), time.process_time()
    main_profile.enable()
    try:
        from s3_landing.cli import main as upload_main  # importing botocore is part of every run's cost: profiled too

        code = upload_main(argv[2:])
    finally:
        main_profile.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    stats.dump_stats(str(out_path))
    out_path.with_suffix(".txt").write_text(report(stats, wall, cpu))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
