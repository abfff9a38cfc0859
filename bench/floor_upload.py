#!/usr/bin/env python3
"""A reference beside upload_s3.py: its engine (obstore, as many threads calling ``obstore.put``) with nothing else
around it, or with only what each file needs, so the benchmark shows how much of the gap to s5cmd is the engine's
and how much the rest of the program's.

Usage: ``python bench/floor_upload.py SOURCE_DIR puts|needs`` with BUCKET_NAME, UPLOAD_DATE (YYYY-MM-DD),
AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Keys are upload_s3.py's:
``Raw/Local/CSV/<Movies|Series>/YYYY/MM/DD/<name>``. Small files only (each is read whole and sent in one PUT).

- ``puts``: walk the folder, read each CSV, PUT it. Nothing is checked, printed or sent beside the bytes.
- ``needs``: what each file needs for the product's promises, and no more: the two day folders listed first, at
  once (what a safe re-run compares with), the file's MD5 and SHA-256, its ``Iniciando`` line before the PUT, the
  PUT with ``x-amz-checksum-sha256`` and the lineage metadata, the returned ETag checked against the MD5, and its
  result line. No link or change checks, no collisions, no ordering of the lines, no summary.

Threads: as upload_s3.py's default, 32 per core, 16 to 64. The process ends by ``os._exit`` once its lines are
flushed, as upload_s3.py does, so that interpreter shutdown does not race the engine's threads.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import obstore
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore.store import S3Config

MODES = ("puts", "needs")
CATEGORIES = ("Movies", "Series")


def csv_files(folder: str) -> Iterator[tuple[str, str]]:
    """(path, name) of every CSV under folder, links not followed."""
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.lower().endswith(".csv") and entry.is_file(follow_symlinks=False):
                    yield entry.path, entry.name


def open_store(bucket: str, checksums: bool) -> S3Store:
    config = {
        "endpoint": os.environ["AWS_ENDPOINT_URL"],
        "region": os.environ["AWS_REGION"],
        "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        **({"checksum_algorithm": "SHA256"} if checksums else {}),
    }
    allow_http = config["endpoint"].startswith("http:")
    return S3Store(bucket, config=cast("S3Config", config), client_options={"allow_http": allow_http})


def put_only(store: S3Store, path: str, key: str) -> str:
    with open(path, "rb") as handle:
        obstore.put(store, key, handle.read(), use_multipart=False)
    return key


def put_with_needs(store: S3Store, bucket: str, path: str, key: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    md5, sha256 = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    print(f"Iniciando upload de {path} para s3://{bucket}/{key}", flush=True)
    attributes = {"Content-Type": "text/csv", "sha256": sha256, "run-id": "floor", "source-path": path}
    written = obstore.put(store, key, data, attributes=attributes, use_multipart=False)
    if str(written["e_tag"] or "").strip('"') != md5:
        raise RuntimeError(f"the store's ETag for {key} is not the file's MD5")
    return key


def list_folder(store: S3Store, folder: str) -> None:
    for _batch in obstore.list(store, prefix=folder, chunk_size=1000):
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[2] not in MODES:
        print(f"usage: {argv[0]} SOURCE_DIR {'|'.join(MODES)}", file=sys.stderr)
        return 2
    source, needs = argv[1], argv[2] == "needs"
    bucket = os.environ["BUCKET_NAME"]
    day = os.environ["UPLOAD_DATE"].replace("-", "/")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    store = open_store(bucket, checksums=needs)
    failed = 0
    with cf.ThreadPoolExecutor(max(16, min(64, 32 * cores))) as pool:
        if needs:
            list(pool.map(lambda category: list_folder(store, f"Raw/Local/CSV/{category}/{day}/"), CATEGORIES))
        futures: dict[cf.Future[str], str] = {}
        for path, name in csv_files(source):
            key = f"Raw/Local/CSV/{'Movies' if 'movies' in name.lower() else 'Series'}/{day}/{name}"
            if needs:
                futures[pool.submit(put_with_needs, store, bucket, path, key)] = path
            else:
                futures[pool.submit(put_only, store, path, key)] = path
        for future in cf.as_completed(futures):
            try:
                key = future.result()
            except Exception as error:  # noqa: BLE001 - counted and said; the others go on
                failed += 1
                print(f"Falha: {futures[future]}: {error}", flush=True)
                continue
            if needs:
                print(f"Arquivo enviado: {futures[future]} -> s3://{bucket}/{key}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)
