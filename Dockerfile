# The uploader in a small image: `docker build -t upload-s3 .` then
# `docker run --rm --env-file .env -v "$PWD/data:/app/data.base:ro" upload-s3 [flags]` (see the README).
# PYTHON_VERSION=3.9 is the challenge's base image; --build-arg PYTHON_VERSION=3.13 gives a supported Python.
ARG PYTHON_VERSION=3.9
FROM python:${PYTHON_VERSION}-slim

# Unbuffered output, so `docker logs -f` shows each line as it happens; no .pyc files written at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A user with a numeric uid and no home or shell, so the program never runs as root.
RUN useradd --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin uploader

WORKDIR /app

# Dependencies first: a change to the code reuses this layer. tzdata (in requirements.txt) gives zoneinfo
# its own time-zone data, so TZ=America/Sao_Paulo works whatever zone data the slim base image has.
COPY requirements.txt .
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore -r requirements.txt

COPY upload_s3.py .
COPY s3_landing/ s3_landing/

# Numeric, so `runAsNonRoot` checks can verify it; the source folder may be mounted read-only.
USER 10001
VOLUME ["/app/data.base"]

# Exec form: Python is PID 1 and receives docker stop's SIGTERM itself. Arguments after the image name
# are passed to the script (for example --dry-run or --help).
ENTRYPOINT ["python", "/app/upload_s3.py"]
CMD []
