#!/usr/bin/env python3
"""The challenge's way, as the baseline of the benchmark: walk the folder, one ``upload_file`` per CSV, in turn.

Usage: ``python bench/loop_upload.py SOURCE_DIR`` with BUCKET_NAME, UPLOAD_DATE (YYYY-MM-DD), AWS_ENDPOINT_URL and
the usual AWS_* variables. Keys are the same as upload_s3.py's: ``Raw/Local/CSV/<Movies|Series>/YYYY/MM/DD/<name>``.
No skipping, no parallelism across files, boto3's default transfer settings (so multipart above 8 MB).
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import boto3


def main(argv: list[str]) -> int:
    source = argv[1]
    bucket = os.environ["BUCKET_NAME"]
    date = dt.date.fromisoformat(os.environ["UPLOAD_DATE"])
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    for root, _dirs, files in os.walk(source):
        for name in files:
            if not name.lower().endswith(".csv"):
                continue
            path = os.path.join(root, name)
            category = "Movies" if "movies" in name.lower() else "Series"
            key = f"Raw/Local/CSV/{category}/{date:%Y/%m/%d}/{name}"
            print(f"Iniciando upload de {path} para s3://{bucket}/{key}", flush=True)
            s3.upload_file(path, bucket, key)
            print(f"Arquivo enviado: {path} -> s3://{bucket}/{key}", flush=True)
    print("Processo concluído!", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
