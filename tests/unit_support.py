"""Helpers shared by the unit tests: a Settings with test defaults, and small files written on the spot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from s3_landing.config import Settings

DAY = dt.date(2022, 5, 2)


def settings_for(source: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "source": source,
        "bucket": "lake",
        "prefix": "Raw/Local/CSV",
        "date": DAY,
        "endpoint_url": None,
        "concurrency": 4,
        "dry_run": True,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def write(path: Path, text: str = "id|x\n1|2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
