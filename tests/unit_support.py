"""Helpers shared by the unit tests: a Settings with test defaults, and small files written on the spot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from s3_landing.config import Output, Run, RunMode, Settings, Shard, Source, Target

DAY = dt.date(2022, 5, 2)


def settings_for(
    source: Path,
    mode: RunMode = RunMode.DRY_RUN,
    *,
    shard: Shard | None = None,
    max_attempts: int = 5,
    manifest_to_bucket: bool = False,
    manifest_file: Path | None = None,
) -> Settings:
    """The sample's settings (bucket lake, prefix Raw/Local/CSV, DAY, 4 threads), with these changed."""
    return Settings(
        source=Source(source, shard=shard or Shard()),
        target=Target("lake", "Raw/Local/CSV", DAY),
        run=Run(mode=mode, concurrency=4, max_attempts=max_attempts),
        output=Output(manifest_to_bucket=manifest_to_bucket, manifest_file=manifest_file),
    )


def write(path: Path, text: str = "id|x\n1|2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
