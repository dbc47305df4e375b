"""Starting, crashing and talking to a real `lookout serve` process.

Imported by conftest.py and by the tests (pytest puts tests/compat on sys.path).

Environment:
  LOOKOUT_BIN           the binary under test (default <repo>/target/release/lookout); never built here
  LOOKOUT_COMPAT_PEER   "moto" runs the suite against `moto_server` instead (only to debug the
                        harness: moto is not faithful and many tests fail on it, crash tests all do)
  LOOKOUT_PY_CACHE      where scripts/setup-python.sh put watchtower's sdist (default <repo>/.cache/python)
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "release" / "lookout"
ACCESS_KEY = "test"
SECRET_KEY = "test"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
LOGS_TARGET_PREFIX = "Logs_20140328."


def lookout_bin() -> Path:
    return Path(os.environ.get("LOOKOUT_BIN", str(DEFAULT_BIN)))


def peer() -> str:
    return os.environ.get("LOOKOUT_COMPAT_PEER", "lookout")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str = "compat") -> str:
    """A name unique to this call, valid as a log group or stream name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


class ServerStartError(Exception):
    pass


class LookoutServer:
    """One `lookout serve` process with its own data directory and port.

    `kill9()` sends SIGKILL; `restart()` starts it again on the same data dir and port.
    """

    def __init__(self, workdir: Path, account_id: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION,
                 port: int | None = None, extra_args: list[str] | None = None, host: str = "127.0.0.1"):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.account_id = account_id
        self.region = region
        self.host = host
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.endpoint = f"http://{host}:{self.port}"
        self._stderr_path: Path | None = None
        # Isolated AWS config so that nothing from the user's ~/.aws leaks into clients.
        self._aws_dir = self.workdir / "aws-config"
        self._aws_dir.mkdir(exist_ok=True)

    # ----- process control -------------------------------------------------------------------
    def command(self) -> list[str]:
        if peer() == "moto":
            moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
            return [moto, "-H", "127.0.0.1", "-p", str(self.port)]
        return [str(lookout_bin()), "serve", "--listen", f"{self.host}:{self.port}",
                "--data-dir", str(self.data_dir), "--account-id", self.account_id,
                "--region", self.region, *self.extra_args]

    def start(self, timeout: float = 30.0) -> "LookoutServer":
        if peer() != "moto" and not lookout_bin().exists():
            raise ServerStartError(
                f"lookout binary not found at {lookout_bin()} (build it with `cargo build --release` "
                f"or set LOOKOUT_BIN)")
        self.starts += 1
        self._stderr_path = self.workdir / f"server-{self.starts}.log"
        log = open(self._stderr_path, "wb")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        health = self.endpoint + ("/moto-api/" if peer() == "moto" else "/health")
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(
                    f"server exited with code {rc} before becoming ready; output:\n{self.output()}")
            try:
                r = requests.get(health, timeout=1)
                if r.status_code == 200:
                    return
                last_err = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last_err = repr(e)
            time.sleep(0.05)
        self.kill9()
        raise ServerStartError(
            f"server not ready on {health} after {timeout}s (last: {last_err}); output:\n{self.output()}")

    def output(self, limit: int = 20000) -> str:
        """Everything the current (or last) process printed, truncated to its last `limit` chars."""
        if not self._stderr_path or not self._stderr_path.exists():
            return "<no output>"
        text = self._stderr_path.read_text(errors="replace")
        return text[-limit:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self, timeout: float = 60.0) -> "LookoutServer":
        """Start again on the same data dir and port (after kill9() or stop())."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    # ----- clients ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for client subprocesses (AWS CLI, watchtower, `lookout logs`)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k not in ("LOOKOUT_ENDPOINT",)}
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": str(self._aws_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self._aws_dir / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "LOOKOUT_ENDPOINT": self.endpoint,
        })
        return env

    def client(self, service: str = "logs", *, retries: int = 1, validate: bool = True,
               read_timeout: float = 60, connect_timeout: float = 5, region: str | None = None):
        """A boto3 client pointed at this server. `retries` is botocore's total_max_attempts
        (1 = no retry, so that errors are seen as they are); `validate=False` turns off botocore's
        client-side parameter validation so that the server's own validation is exercised."""
        cfg = Config(retries={"total_max_attempts": retries, "mode": "standard"},
                     read_timeout=read_timeout, connect_timeout=connect_timeout,
                     parameter_validation=validate, max_pool_connections=32)
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                        region_name=region or self.region)
        return session.client(service, endpoint_url=self.endpoint, config=cfg)

    def logs(self, **kw):
        return self.client("logs", **kw)

    def group_arn(self, group: str, star: bool = False) -> str:
        arn = f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}"
        return arn + ":*" if star else arn

    def stream_arn(self, group: str, stream: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}:log-stream:{stream}"

    def admin_get(self, path: str, params: dict | None = None, service: str = "events") -> requests.Response:
        """GET one of lookout's own `/_lookout/...` endpoints, signed like the CLI signs it."""
        url = self.endpoint + path
        req = AWSRequest(method="GET", url=url, params=params or {})
        prepared = req.prepare()
        signed = AWSRequest(method="GET", url=prepared.url)
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, self.region).add_auth(signed)
        return requests.get(prepared.url, headers=dict(signed.headers.items()), timeout=10)

    def raw(self, operation: str | None, body: bytes | str | dict, *, target: str | None = None,
            headers: dict | None = None, sign: bool = True, region: str | None = None,
            service: str = "logs") -> requests.Response:
        """POST / with the JSON 1.1 protocol, bypassing botocore's serializer."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Content-Type": "application/x-amz-json-1.1"}
        if target is None and operation is not None:
            target = LOGS_TARGET_PREFIX + operation
        if target is not None:
            hdrs["X-Amz-Target"] = target
        hdrs.update(headers or {})
        url = self.endpoint + "/"
        if sign:
            req = AWSRequest(method="POST", url=url, data=body, headers=hdrs)
            SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service,
                      self.region if region is None else region).add_auth(req)
            hdrs = dict(req.headers.items())
        return requests.post(url, data=body, headers=hdrs, timeout=30)

    def __repr__(self) -> str:
        return f"LookoutServer({self.endpoint}, data_dir={self.data_dir})"


def make_server(base_tmp: Path | None = None, **kw) -> LookoutServer:
    workdir = Path(tempfile.mkdtemp(prefix="lookout-compat-", dir=base_tmp))
    return LookoutServer(workdir, **kw)


# ----- helpers shared by tests -------------------------------------------------------------------

def put_events(logs, group: str, stream: str, events: list[tuple[int, str]] | list[dict], **kw):
    evs = [e if isinstance(e, dict) else {"timestamp": e[0], "message": e[1]} for e in events]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=evs, **kw)


def make_group(logs, group: str | None = None, streams: tuple[str, ...] = (), **kw) -> str:
    group = group or unique("/compat/g")
    logs.create_log_group(logGroupName=group, **kw)
    for s in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    return group


def filter_all(logs, **kw) -> list[dict]:
    """All events of FilterLogEvents via botocore's paginator."""
    out = []
    for page in logs.get_paginator("filter_log_events").paginate(**kw):
        out.extend(page["events"])
    return out


def get_all_forward(logs, group: str, stream: str, **kw) -> list[dict]:
    """All events of one stream, following nextForwardToken from the head until it stops changing."""
    out = []
    token = None
    for _ in range(100000):
        args = dict(logGroupName=group, logStreamName=stream, startFromHead=True, **kw)
        if token:
            args["nextToken"] = token
        r = logs.get_log_events(**args)
        out.extend(r["events"])
        if r["nextForwardToken"] == token:
            return out
        token = r["nextForwardToken"]
    raise AssertionError("GetLogEvents never returned the same forward token")


def error_of(excinfo) -> tuple[str, str]:
    """(code, message) of a botocore ClientError caught by pytest.raises."""
    err = excinfo.value.response["Error"]
    return err.get("Code"), err.get("Message")

# ----- a real SMTP server (aiosmtpd) -------------------------------------------------------------

class Mailbox:
    """aiosmtpd handler: keeps every mail it accepts, parsed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mails: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for rcpts, m in self.mails if address in rcpts]

    def wait(self, address: str, count: int, timeout: float = 10.0) -> list[email.message.EmailMessage]:
        return _wait_for(lambda: len(self.to(address)) >= count and self.to(address), timeout,
                        f"{count} mail(s) to {address}")




def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def wait_for(fn, timeout=30.0, interval=0.1, what="condition"):
    """Polls `fn` until it returns something truthy (returned), or fails saying what it waited for."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def start_smtp():
    """A real SMTP server on a free loopback port; returns (mailbox with `.port`, controller to stop)."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    return box, controller
