"""s3_landing: land local CSV files in the raw zone of an S3 data lake.

Walks a folder, classifies each CSV file as Movies or Series by its name, and uploads it to
s3://<bucket>/<prefix>/<Movies|Series>/<YYYY>/<MM>/<DD>/<file name>. Unchanged files are skipped on re-runs.
`upload_s3.py` (and the `upload-s3` command) run `s3_landing.cli`.

Stages, each a module, imports flowing one way: cli -> audit -> report -> manifest -> transfer -> discovery ->
config -> options -> objects -> errors (README, Development).
"""

__version__ = "1.3.0"
