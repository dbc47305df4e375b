"""Server processes for the benchmark scripts (logs_bench.py, suite.py): a free loopback port, and
a server started in its own session, waited for until ready, measured (RSS) and stopped."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def serve_in_background(handler) -> ThreadingHTTPServer:
    """A threaded HTTP server for `handler` on a free loopback port (`server.server_address[1]`),
    serving from a daemon thread; stop it with `shutdown()` and `server_close()`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session: started, waited for, measured, stopped."""

    def __init__(self, name: str, argv: list[str], port: int, ready_path: str, need_200: bool,
                 log_path: Path, data_dir: Path | None = None):
        self.name, self.argv, self.port = name, argv, port
        self.ready_path, self.need_200 = ready_path, need_200
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        log(f"[{self.name}] starting: {' '.join(self.argv)}")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        url = self.endpoint + self.ready_path
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it was ready\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200 or not self.need_200:
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                if not self.need_200:
                    return
                last = f"HTTP {e.code}"
            except (OSError, http.client.HTTPException) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({url}: {last})\n" + self.log_tail())

    def log_tail(self, n: int = 30) -> str:
        try:
            self._log.flush()
            lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
            return "\n".join(f"    {l}" for l in lines)
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: the server and its children
        except ProcessLookupError:
            return
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def rss_bytes(self) -> int | None:
        """VmRSS of the server process and its descendants (a shim may sit in front of moto)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError):
                continue
        total, todo = 0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total
