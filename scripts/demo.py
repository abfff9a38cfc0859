"""make demo: upload the bundled sample to a throw-away local SeaweedFS, list the keys and one object's lineage,
upload again, check the partition with a read-only identity, stop."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from seaweed import SeaweedServer  # noqa: E402

BUCKET = "demo-lake"


def run_uploader(server: SeaweedServer, *args: str, identity: str = "rw") -> int:
    access_key, secret_key = server.creds[identity]
    env = dict(os.environ)
    env.update(
        {
            "BUCKET_NAME": BUCKET,
            "LOCAL_DIR": str(ROOT / "sample" / "data.base"),
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": "us-east-1",
        }
    )
    env.pop("AWS_PROFILE", None)
    command = [sys.executable, str(ROOT / "upload_s3.py"), *args]
    shown = " ".join(("python upload_s3.py", *args))
    print(f"\n$ BUCKET_NAME={BUCKET} LOCAL_DIR=sample/data.base AWS_ENDPOINT_URL={server.endpoint} {shown}")
    return subprocess.run(command, env=env, check=False).returncode


def main() -> int:
    print("Starting a throw-away SeaweedFS S3 server on 127.0.0.1 ...")
    with SeaweedServer() as server:
        s3 = server.client("admin")
        s3.create_bucket(Bucket=BUCKET)
        code = run_uploader(server)
        print(f"\nObjects in s3://{BUCKET} (uploaded {dt.date.today():%Y-%m-%d}):")
        objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        for item in objects:
            print(f"  {item['Size']:>8}  {item['Key']}")
        if objects:
            print(f"\nThe lineage {objects[0]['Key']} carries (user metadata):")
            for name, value in s3.head_object(Bucket=BUCKET, Key=objects[0]["Key"])["Metadata"].items():
                print(f"  x-amz-meta-{name}: {value}")
        print("\nA second run finds nothing changed:")
        code = code or run_uploader(server)
        print("\nAn audit with a read-only identity finds every file in the bucket, byte for byte:")
        code = code or run_uploader(server, "--check", identity="ro")
    print("\nServer stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
