"""Fault behaviour (issue #7): a full disk, a corrupted write-ahead-log tail, an SMTP relay that is
down, and a container engine that disappears under a running task — each with the outcome a user
sees, and nothing acknowledged lost."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import botocore.exceptions
import pytest
import requests

from lookout_harness import make_server, now_ms, peer, start_smtp, unique, wait_for

pytestmark = pytest.mark.skipif(peer() == "moto", reason="lookout's own fault behaviour")

PODMAN_SOCKET = "/run/podman/podman.sock"


def stored_ids(logs, group) -> set[str]:
    seen, token = set(), None
    while True:
        kw = {"logGroupName": group}
        if token:
            kw["nextToken"] = token
        r = logs.filter_log_events(**kw)
        seen.update(e["message"].split(" ", 1)[0] for e in r["events"])
        token = r.get("nextToken")
        if not token:
            return seen


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs (root only; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_refuses_writes_keeps_what_was_acknowledged_and_recovers(small_disk):
    srv = make_server(small_disk.parent)
    srv.data_dir = small_disk / "data"
    srv.extra_args = ["--flush-interval-secs", "2", "--no-tls"]
    srv.start()
    try:
        logs = srv.logs()
        group = unique("/faults/disk")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        rng = random.Random(7)
        acked, refusals = [], []
        for b in range(400):
            noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(200))
            bid = f"b{b:04d}"
            try:
                logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
                    {"timestamp": now_ms(), "message": f"{bid}-e{j:03d} {noise}"} for j in range(500)])
                acked.append(bid)
            except botocore.exceptions.ClientError as e:
                refusals.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
                if len(refusals) >= 5:
                    break
        assert refusals, "the 6 MiB disk never filled"
        assert set(refusals) == {("ServiceUnavailableException", 500)}, refusals
        assert srv.alive()
        assert "No space left on device" in srv.output()
        # Space comes back: writes succeed again without a restart.
        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
        wait_for(lambda: _put_ok(logs, group), timeout=30, what="a write after space returned")
        ids = stored_ids(logs, group)
        batches = {i.split("-")[0] for i in ids if i.startswith("b")}
        assert set(acked) <= batches, "an acknowledged batch is missing"
        srv.kill9()
        srv.restart()
        assert stored_ids(srv.logs(), group) == ids, "a restart after the full disk changed what is stored"
        print(f"full disk: {len(acked)} batches acknowledged, then {len(refusals)} refused with "
              f"ServiceUnavailableException; all acknowledged present after space returned and after kill -9")
    finally:
        srv.stop()


def _put_ok(logs, group) -> bool:
    try:
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": now_ms(), "message": "after-space ok"}])
        return True
    except botocore.exceptions.ClientError:
        return False


def test_a_corrupted_wal_tail_is_cut_and_reported(new_server):
    srv = new_server()
    logs = srv.logs()
    group = unique("/faults/wal")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    for b in range(20):
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": now_ms(), "message": f"b{b:02d}-e{j} x"} for j in range(50)])
    before = stored_ids(logs, group)
    srv.kill9()
    segments = sorted((srv.data_dir / "logs").rglob("*.wal"))
    assert segments, f"no WAL segment under {srv.data_dir}"
    # Written with direct I/O, a segment has zeros after its last record, to the end of its 4 KiB
    # block: a torn record would stand where they start.
    data = segments[-1].read_bytes()
    end = len(data.rstrip(b"\0"))
    with open(segments[-1], "r+b") as f:
        f.truncate(end)
        f.seek(end)
        f.write(os.urandom(777))  # a torn, never-acknowledged record
    srv.restart()
    assert stored_ids(srv.logs(), group) == before
    out = srv.output()
    assert "cut a torn or corrupt WAL tail" in out and "dropped=777" in out, out[-2000:]


def test_an_smtp_relay_that_is_down_gives_failed_deliveries_not_hangs(new_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens once closed
    srv = new_server(extra_args=["--smtp-url", f"smtp://127.0.0.1:{dead_port}", "--sns-email-retries", "2",
                                 "--sns-email-min-delay", "200ms", "--sns-email-max-delay", "200ms"])
    sns = srv.client("sns")
    topic = sns.create_topic(Name=unique("down"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    started = time.monotonic()
    sns.publish(TopicArn=topic, Message="hello")  # the confirmation mail is what fails here
    assert time.monotonic() - started < 5, "Publish waited on the relay"

    def failed():
        r = srv.admin_get("/_lookout/sns/failed-deliveries", service="sns")
        return r.json()["failedDeliveries"] if r.status_code == 200 else []

    wait_for(lambda: failed(), timeout=30, what="the confirmation mail recorded failed")
    [d] = failed()
    assert d["attempts"] == 3, d
    assert "127.0.0.1" in d["lastError"] or "refused" in d["lastError"].lower(), d


class UnixProxy:
    """A unix-socket proxy in front of Podman's API socket that can be pulled away."""

    def __init__(self, path: Path, upstream: str):
        self.path, self.upstream = path, upstream
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.conns: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX)
            up.connect(self.upstream)
            self.conns += [client, up]
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def pull(self):
        self.closed.set()
        self.server.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.path.unlink(missing_ok=True)


def register_sleeper(srv, family):
    srv.client("ecs").register_task_definition(family=family, containerDefinitions=[{
        "name": "app", "image": "localhost/busybox:latest", "essential": True,
        "command": ["sh", "-c", "echo up; sleep 120"], "stopTimeout": 2,
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/faults/engine", "awslogs-region": srv.region,
            "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}}])


def remove_containers(task_arn):
    ids = subprocess.run(["podman", "--url", f"unix://{PODMAN_SOCKET}", "ps", "-aq", "--filter",
                          f"label=lookout.task-arn={task_arn}"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["podman", "--url", f"unix://{PODMAN_SOCKET}", "rm", "-f", *ids], capture_output=True)


needs_podman = pytest.mark.skipif(not Path(PODMAN_SOCKET).exists(),
                                  reason="needs Podman's API socket (scripts/setup-podman.sh)")


def running_task_behind_proxy(new_server, tmp_path, name):
    """A server whose container engine is reached through a `UnixProxy`, and a task of a
    long-sleeping container, RUNNING: (proxy, server, ecs client, task ARN, the task's status)."""
    proxy = UnixProxy(tmp_path / "engine.sock", PODMAN_SOCKET)
    srv = new_server(extra_args=["--runtime", "docker", "--docker-host", f"unix://{proxy.path}"])
    ecs = srv.client("ecs")
    family = unique(name)
    register_sleeper(srv, family)
    arn = ecs.run_task(taskDefinition=family)["tasks"][0]["taskArn"]
    status = lambda: ecs.describe_tasks(tasks=[arn])["tasks"][0]  # noqa: E731
    try:
        wait_for(lambda: status()["lastStatus"] == "RUNNING", timeout=60, what="RUNNING")
    except BaseException:
        proxy.pull()
        remove_containers(arn)
        raise
    return proxy, srv, ecs, arn, status


@needs_podman
def test_a_brief_engine_outage_is_ridden_out(new_server, tmp_path):
    proxy, _, ecs, arn, status = running_task_behind_proxy(new_server, tmp_path, "blip")
    path = proxy.path
    try:
        proxy.pull()
        time.sleep(4)
        assert status()["lastStatus"] == "RUNNING", "a 4 s engine outage stopped the task"
        proxy = UnixProxy(path, PODMAN_SOCKET)
        time.sleep(3)
        assert status()["lastStatus"] == "RUNNING"
        ecs.stop_task(task=arn, reason="done")
        wait_for(lambda: status()["lastStatus"] == "STOPPED", timeout=60, what="STOPPED after StopTask")
        t = status()
        assert t["stoppedReason"] == "done" and t["containers"][0]["exitCode"] == 137, t
    finally:
        proxy.pull()
        remove_containers(arn)


@needs_podman
def test_an_engine_that_stays_gone_stops_the_task_saying_why(new_server, tmp_path):
    proxy, srv, ecs, arn, status = running_task_behind_proxy(new_server, tmp_path, "gone")
    family = ecs.describe_tasks(tasks=[arn])["tasks"][0]["taskDefinitionArn"]
    try:
        proxy.pull()
        started = time.monotonic()
        wait_for(lambda: status()["lastStatus"] == "STOPPED", timeout=120, what="STOPPED after the engine went away")
        t = status()
        took = time.monotonic() - started
        print(f"engine gone: task STOPPED after {took:.1f} s, reason {t.get('stoppedReason')!r}")
        assert "container engine has been unreachable" in t["stoppedReason"], t
        assert took >= 25, "the task was given up before the grace period"
        assert srv.alive()
        # The API still answers, and a new task says clearly why it cannot start.
        r = ecs.run_task(taskDefinition=family)
        reason = " ".join(f.get("reason", "") for f in r["failures"])
        if r["tasks"]:
            arn2 = r["tasks"][0]["taskArn"]
            wait_for(lambda: ecs.describe_tasks(tasks=[arn2])["tasks"][0]["lastStatus"] == "STOPPED", timeout=60,
                     what="the second task STOPPED")
            reason = ecs.describe_tasks(tasks=[arn2])["tasks"][0].get("stoppedReason", "")
        print(f"engine gone: a new RunTask ends with {reason!r}")
        assert "unavailable" in reason, reason
        requests.get(srv.endpoint + "/health", timeout=5).raise_for_status()
    finally:
        remove_containers(arn)


def test_a_flusher_that_falls_behind_makes_writes_wait_then_throttles_and_loses_nothing(tmp_path):
    """Memory stays bounded when flushes cannot keep up: past --max-unflushed-mib of acknowledged,
    unflushed events, PutLogEvents waits for the flusher (up to 2 s), then gets ThrottlingException
    (which clients retry). The flusher is made to fail here by putting a file where its parts
    directory is; once the directory is back, its retry succeeds and writes go through again."""
    srv = make_server(tmp_path)
    srv.extra_args = ["--max-unflushed-mib", "1", "--no-tls"]
    srv.start()
    try:
        logs = srv.logs()  # no retries: each refusal is seen
        group = unique("/faults/behind")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        parts = srv.data_dir / "logs" / "parts"
        aside = parts.with_name("parts.stalled")
        parts.rename(aside)
        parts.write_text("not a directory")
        acked, refusal, waited = [], None, 0.0
        for b in range(40):  # 40 x ~200 KB: well past 1 MiB
            bid = f"b{b:04d}"
            t = time.monotonic()
            try:
                logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
                    {"timestamp": now_ms(), "message": f"{bid}-e{j:03d} " + "x" * 2000} for j in range(100)])
                acked.append(bid)
            except botocore.exceptions.ClientError as e:
                refusal = (e.response["Error"]["Code"], e.response["Error"]["Message"],
                           e.response["ResponseMetadata"]["HTTPStatusCode"])
                waited = time.monotonic() - t
                break
        assert refusal == ("ThrottlingException", "Rate exceeded", 400), refusal
        assert waited >= 1.5, f"the refused batch was not made to wait for room first ({waited:.2f} s)"
        assert 2 <= len(acked) <= 10, f"{len(acked)} batches of ~200 KB acknowledged under a 1 MiB limit"
        assert "flush failed" in srv.output()
        metrics = requests.get(f"{srv.endpoint}/metrics", timeout=10).text
        assert "lookout_ingest_admission_waits_total 1\n" in metrics, metrics
        assert "lookout_ingest_admission_throttled_total 1\n" in metrics, metrics
        # The directory comes back: the flusher's retry succeeds, and writes go through again.
        parts.unlink()
        aside.rename(parts)
        wait_for(lambda: _put_ok(logs, group), timeout=30, what="a write once the flusher caught up")
        ids = stored_ids(logs, group)
        assert set(acked) <= {i.split("-")[0] for i in ids}, "an acknowledged batch is missing"
        srv.kill9()
        srv.restart()
        assert stored_ids(srv.logs(), group) == ids, "a restart changed what is stored"
        print(f"flusher behind: {len(acked)} batches acknowledged, then ThrottlingException after "
              f"waiting {waited:.2f} s; all acknowledged present after recovery and after kill -9")
    finally:
        srv.stop()
