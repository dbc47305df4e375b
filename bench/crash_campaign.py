"""Crash campaign (issue #7): N random `kill -9` of one `lookout serve` under mixed load — log
ingest, EventBridge deliveries to a webhook, ECS tasks running as local processes — then the
figures: acknowledged events lost (must be 0), duplicates, partial unacknowledged batches,
deliveries lost (must be 0) and duplicated (allowed), tasks left stuck (must be 0), and the
recovery time after each restart.

    .venv/bin/python bench/crash_campaign.py [--kills N | --quick] [--seed S] [--lookout-bin PATH]

The server: `lookout serve --runtime process --delivery-retry-base-ms 200 --flush-interval-secs 2
--flush-mib 1` on a free loopback port with a fresh data directory (auth on, key test/test), started,
killed and restarted through the compat harness's `LookoutServer`. The load, paused only while the
server is down:

- ingest: two writers (tests/compat/test_crash.py's `Writer`) put batches of 1-500 events with
  unique ids into one stream each, recording which batches were acknowledged;
- deliveries: a rule on the default bus ({"source": ["campaign"]}) targets an API destination
  (BASIC connection) pointing at a webhook on loopback; a thread calls PutEvents with a unique id
  in each entry's Detail, recording the entries acknowledged with an EventId;
- tasks: a RunTask about every second of a task definition whose one container runs a shell loop
  (40 lines over ~4 s, awslogs into /campaign/tasks with awslogs-create-group).

Each round sleeps 0.3-2.0 s under load, kills the server with SIGKILL, pauses the load, restarts
the server (recovery time: spawn → `/ready` 200, spawn → first acknowledged PutLogEvents) and,
every round for N < 20, else every 10th round and the last, checks the ingest invariants (each
acknowledged event stored exactly once, FilterLogEvents and GetLogEvents agreeing; an
unacknowledged batch all or nothing; no events nobody wrote). At the end: the load goes on for
`--tail-secs` (10) so that tasks also run to their end, then stops; the deliveries and tasks settle;
a clean stop (SIGTERM) and restart; and everything is verified again: every acknowledged PutEvents
entry reached the webhook (at least once), every task is STOPPED (counted by exit code 0 or the
reason it was stopped), no task process still runs.

Prints one markdown table on stdout (progress on stderr). Exit status: 0 when every invariant
held, 1 when one broke (the message says which, with the seed, round and ids; the work directory is
kept), 2 when the campaign itself could not run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "compat"))

import requests  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from lookout_harness import LookoutServer, ServerStartError, filter_all, now_ms  # noqa: E402
from servers import serve_in_background  # noqa: E402
from test_crash import Writer  # noqa: E402

SERVER_ARGS = ["--runtime", "process", "--delivery-retry-base-ms", "200",
               "--flush-interval-secs", "2", "--flush-mib", "1"]
TASK_GROUP = "/campaign/tasks"
TASK_LINES = 40
RESTART_TIMEOUT = 60.0      # spawn → /ready
FIRST_ACK_TIMEOUT = 30.0    # /ready → first acknowledged PutLogEvents
PAUSE_TIMEOUT = 30.0        # load threads to pause after a kill
SETTLE_TIMEOUT = 180.0      # deliveries and tasks to settle at the end


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class InvariantBroken(Exception):
    pass


# ----- the server --------------------------------------------------------------------------------

class CampaignServer(LookoutServer):
    """The harness's server, ready when `/ready` answers 200 (polled every 10 ms), remembering when
    the last start spawned the process and when it became ready."""

    spawned_at = 0.0
    ready_at = 0.0

    def start(self, timeout: float = RESTART_TIMEOUT) -> "CampaignServer":
        self.spawned_at = time.monotonic()
        return super().start(timeout)

    def _wait_ready(self, timeout: float) -> None:
        url = self.endpoint + "/ready"
        deadline = self.spawned_at + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(f"server exited with code {rc} before it was ready; output:\n{self.output(4000)}")
            try:
                r = requests.get(url, timeout=1)
                if r.status_code == 200:
                    self.ready_at = time.monotonic()
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(0.01)
        self.kill9()
        raise ServerStartError(f"server not ready on {url} after {timeout:.0f} s (last: {last}); output:\n"
                               f"{self.output(4000)}")

    def kill_group(self) -> None:
        """SIGKILL to the server's own session (its process group): the server and any helper it
        did not move out of it (task processes live in groups of their own)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=30)
            except Exception:
                pass


# ----- load: ingest ------------------------------------------------------------------------------

class Probe:
    """The batches the main thread puts right after a restart to time the first acknowledgement;
    shaped like a Writer so that the ingest check covers them too."""

    def __init__(self, stream: str):
        self.stream = stream
        self.sizes: dict[str, int] = {}
        self.acked: list[str] = []
        self.unacked: list[str] = []
        self.unexpected: list[str] = []
        self.seq = 0

    def first_ack(self, srv: CampaignServer, client, group: str, timeout: float) -> float | None:
        """Puts one-event batches until one is acknowledged; the monotonic time of that answer.
        `client` is made before the restart, so that its making is not timed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bid = f"probe-b{self.seq:05d}"
            self.seq += 1
            self.sizes[bid] = 1
            try:
                client.put_log_events(
                    logGroupName=group, logStreamName=self.stream,
                    logEvents=[{"timestamp": now_ms(), "message": f"{bid}-e000 probe"}])
                self.acked.append(bid)
                return time.monotonic()
            except ClientError as e:
                self.unacked.append(bid)
                if e.response["ResponseMetadata"].get("HTTPStatusCode", 500) < 500:
                    self.unexpected.append(f"{bid}: {e!r}")
                client = srv.logs(read_timeout=10, connect_timeout=2)
            except (BotoCoreError, OSError):
                self.unacked.append(bid)
                client = srv.logs(read_timeout=10, connect_timeout=2)
            time.sleep(0.01)
        return None


def event_key(message: str) -> str:
    return message.split(" ", 1)[0]


def check_ingest(srv: CampaignServer, group: str, sources: list, label: str) -> dict:
    """test_crash.check(), counting instead of asserting: returns the figures and evidence."""
    logs = srv.logs(read_timeout=120)
    # Counted page by page (the harness's filter_all / get_all_forward, without keeping every event).
    ids, via_filter = Counter(), Counter()
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for e in page["events"]:
            ids[e["eventId"]] += 1
            via_filter[event_key(e["message"])] += 1
    dup_event_ids = [i for i, n in ids.items() if n > 1]
    del ids
    via_get = Counter()
    for s in sources:
        token = None
        for _ in range(1_000_000):
            kw = {"nextToken": token} if token else {}
            r = logs.get_log_events(logGroupName=group, logStreamName=s.stream, startFromHead=True,
                                    limit=5000, **kw)
            via_get.update(event_key(e["message"]) for e in r["events"])
            if r["nextForwardToken"] == token:
                break
            token = r["nextForwardToken"]
        else:
            raise InvariantBroken(f"{label}: GetLogEvents on {s.stream} never returned the same forward token")
    disagree = sorted(k for k in set(via_filter) | set(via_get) if via_filter[k] != via_get[k])
    lost, duplicated, partial, known = [], [], [], set()
    unacked_whole = 0
    acked_events = 0
    for s in sources:
        for bid in s.acked:
            for j in range(s.sizes[bid]):
                key = f"{bid}-e{j:03d}"
                known.add(key)
                acked_events += 1
                n = via_filter[key]
                if n == 0:
                    lost.append(key)
                elif n > 1:
                    duplicated.append((key, n))
        for bid in s.unacked:
            counts = []
            for j in range(s.sizes[bid]):
                key = f"{bid}-e{j:03d}"
                known.add(key)
                counts.append(via_filter[key])
                if via_filter[key] > 1:
                    duplicated.append((key, via_filter[key]))
            if counts and min(counts) >= 1:
                unacked_whole += 1
            if len(set(counts)) > 1:
                partial.append((bid, f"{sum(1 for c in counts if c)} of {len(counts)} events present"))
    stray = sorted(set(via_filter) - known)
    return {"label": label, "stored": sum(via_filter.values()), "acked_events": acked_events,
            "unacked_whole": unacked_whole,
            "lost": lost, "duplicated": duplicated, "partial": partial, "stray": stray,
            "disagree": disagree, "dup_event_ids": dup_event_ids}


def ingest_problems(r: dict, seed: int) -> list[str]:
    out = []
    where = f"{r['label']} (seed {seed})"
    if r["lost"]:
        out.append(f"{where}: {len(r['lost'])} acknowledged events lost, e.g. {r['lost'][:5]}")
    if r["duplicated"]:
        out.append(f"{where}: {len(r['duplicated'])} events stored more than once, e.g. {r['duplicated'][:5]}")
    if r["partial"]:
        out.append(f"{where}: {len(r['partial'])} unacknowledged batches partially stored, e.g. {r['partial'][:5]}")
    if r["stray"]:
        out.append(f"{where}: {len(r['stray'])} events nobody wrote, e.g. {r['stray'][:5]}")
    if r["disagree"]:
        out.append(f"{where}: FilterLogEvents and GetLogEvents disagree on {len(r['disagree'])} events, "
                   f"e.g. {r['disagree'][:5]}")
    if r["dup_event_ids"]:
        out.append(f"{where}: {len(r['dup_event_ids'])} eventIds returned twice by FilterLogEvents, "
                   f"e.g. {r['dup_event_ids'][:5]}")
    return out


# ----- load: deliveries --------------------------------------------------------------------------

class Webhook:
    """The API destination's endpoint: records every complete delivery (200 always)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()      # campaign id -> deliveries
        self.event_ids: dict[str, set[str]] = defaultdict(set)   # campaign id -> EventBridge ids seen
        self.malformed = 0
        self.auth_headers: Counter[str] = Counter()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    event = json.loads(body)
                    detail = event.get("detail")
                    if isinstance(detail, str):
                        detail = json.loads(detail)
                    cid = detail["cid"]
                except Exception:
                    with hook.lock:
                        hook.malformed += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with hook.lock:
                    hook.received[cid] += 1
                    hook.event_ids[cid].add(str(event.get("id")))
                    hook.auth_headers[self.headers.get("Authorization", "")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = serve_in_background(Handler)
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def snapshot(self) -> tuple[Counter, dict]:
        with self.lock:
            return Counter(self.received), {k: set(v) for k, v in self.event_ids.items()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LoadThread(threading.Thread):
    """A load loop paused (between requests) while the server is down, like test_crash.Writer."""

    def __init__(self, srv: CampaignServer, seed: int):
        super().__init__(daemon=True)
        self.srv = srv
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.paused = threading.Event()
        self.unexpected: list[str] = []
        self.errors = 0

    def run(self):
        while not self.stop.is_set():
            if self.pause.is_set():
                self.paused.set()
                time.sleep(0.01)
                continue
            self.paused.clear()
            try:
                self.step()
            except Exception as e:  # a bug of the loop itself must not kill the thread silently
                self.unexpected.append(f"{type(e).__name__}: {e}")
                time.sleep(0.1)

    def note_client_error(self, what: str, e: ClientError) -> None:
        self.errors += 1
        if e.response["ResponseMetadata"].get("HTTPStatusCode", 500) < 500:
            self.unexpected.append(f"{what}: {e!r}")


class EventsPutter(LoadThread):
    """PutEvents of 1-5 entries every 20-150 ms, each with a unique id in its Detail."""

    def __init__(self, srv, seed):
        super().__init__(srv, seed)
        self.client = None
        self.seq = 0
        self.acked: dict[str, str] = {}        # campaign id -> EventId
        self.unacked: list[str] = []           # sent without an EventId (call failed or entry failed)
        self.entry_errors: Counter[str] = Counter()

    def step(self):
        if self.client is None:
            self.client = self.srv.client("events", read_timeout=10, connect_timeout=2)
        cids = []
        for _ in range(self.rng.randint(1, 5)):
            cids.append(f"ev{self.seq:06d}")
            self.seq += 1
        entries = [{"Source": "campaign", "DetailType": "crash-campaign", "Detail": json.dumps({"cid": c})}
                   for c in cids]
        try:
            r = self.client.put_events(Entries=entries)
            for cid, e in zip(cids, r["Entries"]):
                if e.get("EventId"):
                    self.acked[cid] = e["EventId"]
                else:
                    self.unacked.append(cid)
                    self.entry_errors[e.get("ErrorCode", "?")] += 1
            if len(r["Entries"]) != len(cids):
                self.unexpected.append(f"PutEvents answered {len(r['Entries'])} entries for {len(cids)}")
        except ClientError as e:
            self.unacked.extend(cids)
            self.note_client_error(f"PutEvents {cids[0]}..", e)
            self.client = None
            time.sleep(0.02)
        except (BotoCoreError, OSError):
            self.unacked.extend(cids)
            self.errors += 1
            self.client = None
            time.sleep(0.02)
        time.sleep(self.rng.uniform(0.02, 0.15))


class TaskStarter(LoadThread):
    """RunTask about every second; records the task ARNs RunTask answered."""

    def __init__(self, srv, seed, cluster, family, started_by):
        super().__init__(srv, seed)
        self.cluster, self.family, self.started_by = cluster, family, started_by
        self.client = None
        self.arns: list[str] = []
        self.unanswered = 0                    # RunTask calls without an answer (a task may exist)
        self.failures: list = []               # RunTask answered with failures
        self.next_at = time.monotonic()

    def step(self):
        if time.monotonic() < self.next_at:
            time.sleep(max(0.0, min(0.05, self.next_at - time.monotonic())))
            return
        self.next_at = time.monotonic() + self.rng.uniform(0.8, 1.2)
        if self.client is None:
            self.client = self.srv.client("ecs", read_timeout=10, connect_timeout=2)
        try:
            r = self.client.run_task(cluster=self.cluster, taskDefinition=self.family, startedBy=self.started_by)
            self.arns.extend(t["taskArn"] for t in r.get("tasks", []))
            if r.get("failures"):
                self.failures.extend(r["failures"])
        except ClientError as e:
            self.unanswered += 1
            self.note_client_error("RunTask", e)
            self.client = None
        except (BotoCoreError, OSError):
            self.unanswered += 1
            self.errors += 1
            self.client = None


# ----- the campaign ------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p * (len(v) - 1)))))]


def fmt_times(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.0f} / {pct(values, 0.95):.0f} / {max(values):.0f} ms"


def describe_all(ecs, cluster: str, arns: list[str]) -> dict[str, dict]:
    out = {}
    for i in range(0, len(arns), 100):
        r = ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])
        for t in r["tasks"]:
            out[t["taskArn"]] = t
    return out


def list_all_tasks(ecs, cluster: str, started_by: str) -> set[str]:
    arns = set()
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, startedBy=started_by,
                                                             desiredStatus=desired):
            arns.update(page["taskArns"])
    return arns


def processes_with(markers: list[str]) -> list[tuple[int, str]]:
    """Every process (not this one) whose command line contains one of `markers`: (pid, cmdline)."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd and any(m in cmd for m in markers):
            found.append((int(d), cmd))
    return found


def kill_leftovers(markers: list[str]) -> list[str]:
    """SIGKILL every process (not this one) whose command line contains one of `markers`."""
    killed = []
    for pid, cmd in processes_with(markers):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(f"{pid}: {cmd[:120]}")
        except (ProcessLookupError, PermissionError):
            pass
    return killed


class Campaign:
    def __init__(self, args):
        self.args = args
        self.kills = args.kills
        self.seed = args.seed if args.seed is not None else int(time.time())
        self.rng = random.Random(self.seed)
        self.check_every = 1 if self.kills < 20 else 10
        self.work = Path(tempfile.mkdtemp(prefix="lookout-crash-campaign-"))
        self.marker = f"lookout-campaign-{uuid.uuid4().hex[:12]}"
        self.cluster = "campaign"
        self.family = f"campaign-{self.marker[-12:]}"
        self.group = f"/campaign/ingest-{self.marker[-12:]}"
        self.srv = CampaignServer(self.work, extra_args=SERVER_ARGS)
        self.hook: Webhook | None = None
        self.writers: list[Writer] = []
        self.putter: EventsPutter | None = None
        self.starter: TaskStarter | None = None
        self.probe = Probe("probe")
        self.ready_ms: list[float] = []
        self.ack_ms: list[float] = []
        self.checks: list[dict] = []
        self.problems: list[str] = []
        self.rounds_done = 0
        self.results: dict = {}

    @property
    def threads(self) -> list:
        return [t for t in [*self.writers, self.putter, self.starter] if t is not None]

    # -- setup --
    def setup(self) -> None:
        os.environ["LOOKOUT_BIN"] = str(self.args.lookout_bin)
        log(f"work dir {self.work}; seed {self.seed}; {self.kills} kills; binary {self.args.lookout_bin}")
        self.srv.start()
        log(f"lookout on {self.srv.endpoint} (ready in {(self.srv.ready_at - self.srv.spawned_at) * 1000:.0f} ms)")
        logs = self.srv.logs()
        logs.create_log_group(logGroupName=self.group)
        for s in ("w0", "w1", "probe"):
            logs.create_log_stream(logGroupName=self.group, logStreamName=s)

        self.hook = Webhook()
        ev = self.srv.client("events")
        conn = ev.create_connection(
            Name=f"campaign-{self.marker[-12:]}", AuthorizationType="BASIC",
            AuthParameters={"BasicAuthParameters": {"Username": "campaign", "Password": "secret"}})["ConnectionArn"]
        dest = ev.create_api_destination(Name=f"campaign-{self.marker[-12:]}", ConnectionArn=conn,
                                         InvocationEndpoint=self.hook.url, HttpMethod="POST")["ApiDestinationArn"]
        rule = f"campaign-{self.marker[-12:]}"
        ev.put_rule(Name=rule, EventPattern=json.dumps({"source": ["campaign"]}))
        ev.put_targets(Rule=rule, Targets=[{"Id": "hook", "Arn": dest}])

        ecs = self.srv.client("ecs")
        ecs.create_cluster(clusterName=self.cluster)
        script = (f": {self.marker}; for i in $(seq 1 {TASK_LINES}); do echo line $i; sleep 0.1; done")
        ecs.register_task_definition(family=self.family, containerDefinitions=[{
            "name": "main", "image": "busybox", "essential": True, "command": ["sh", "-c", script],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": TASK_GROUP, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "campaign", "awslogs-create-group": "true"}}}])

        self.writers = [Writer(self.srv, self.group, f"w{i}", i, self.seed) for i in range(2)]
        self.putter = EventsPutter(self.srv, self.seed * 10 + 7)
        self.starter = TaskStarter(self.srv, self.seed * 10 + 8, self.cluster, self.family, self.marker[-12:])
        for t in self.threads:
            t.start()

    # -- pause / resume --
    def pause_load(self) -> None:
        for t in self.threads:
            t.pause.set()
        deadline = time.monotonic() + PAUSE_TIMEOUT
        for t in self.threads:
            if not t.paused.wait(max(0.1, deadline - time.monotonic())):
                raise RuntimeError(f"{type(t).__name__} did not pause within {PAUSE_TIMEOUT:.0f} s")

    def resume_load(self) -> None:
        for t in self.threads:
            t.pause.clear()

    def stop_load(self) -> None:
        for t in self.threads:
            t.stop.set()
            t.pause.clear()
        for t in self.threads:
            t.join(30)

    # -- one restart, timed --
    def restart(self, label: str, clean: bool = False) -> None:
        client = self.srv.logs(read_timeout=10, connect_timeout=2)
        try:
            if clean:
                self.srv.stop(timeout=30)
            self.srv.start()
        except ServerStartError as e:
            raise InvariantBroken(f"{label} (seed {self.seed}): lookout did not come back: {e}") from None
        ready = (self.srv.ready_at - self.srv.spawned_at) * 1000
        acked_at = self.probe.first_ack(self.srv, client, self.group, FIRST_ACK_TIMEOUT)
        if acked_at is None:
            raise InvariantBroken(f"{label} (seed {self.seed}): /ready was 200 but no PutLogEvents was "
                                  f"acknowledged within {FIRST_ACK_TIMEOUT:.0f} s; output:\n{self.srv.output(3000)}")
        ack = (acked_at - self.srv.spawned_at) * 1000
        if not clean:
            self.ready_ms.append(ready)
            self.ack_ms.append(ack)
        log(f"{label}: ready in {ready:.0f} ms, first ack in {ack:.0f} ms")

    def verify_ingest(self, label: str) -> dict:
        t0 = time.monotonic()
        r = check_ingest(self.srv, self.group, [*self.writers, self.probe], label)
        self.checks.append(r)
        log(f"{label}: ingest check of {r['stored']} stored events ({r['acked_events']} acknowledged) "
            f"in {time.monotonic() - t0:.1f} s")
        problems = ingest_problems(r, self.seed)
        if problems:
            raise InvariantBroken("\n".join(problems))
        return r

    # -- the rounds --
    def run_rounds(self) -> None:
        for k in range(1, self.kills + 1):
            time.sleep(self.rng.uniform(0.3, 2.0))
            if not self.srv.alive():
                raise InvariantBroken(f"round {k} (seed {self.seed}): lookout died on its own before the kill "
                                      f"(exit {self.srv.proc.returncode}); output:\n{self.srv.output(3000)}")
            self.srv.kill9()
            self.rounds_done = k
            self.pause_load()
            self.restart(f"round {k}/{self.kills}")
            if k % self.check_every == 0 or k == self.kills:
                self.verify_ingest(f"after kill {k}")
            self.resume_load()
        # Load after the last restart, so that tasks also run to their end (exit 0) and their logs
        # can be checked, and the server shows it works on after the campaign.
        log(f"load for {self.args.tail_secs:.0f} s more after the last restart")
        time.sleep(self.args.tail_secs)
        if not self.srv.alive():
            raise InvariantBroken(f"after the last round (seed {self.seed}): lookout died on its own "
                                  f"(exit {self.srv.proc.returncode}); output:\n{self.srv.output(3000)}")

    # -- the end --
    def settle_and_verify(self) -> None:
        self.stop_load()
        unexpected = [u for t in [*self.threads, self.probe] for u in t.unexpected]
        if unexpected:
            self.problems.append(f"unexpected answers (4xx or loop errors) during the load: {len(unexpected)}, "
                                 f"e.g. {unexpected[:3]}")
        log("load stopped; waiting for the deliveries and tasks to settle")
        self.wait_settled(SETTLE_TIMEOUT)
        log("clean stop and restart")
        self.restart("final clean restart", clean=True)
        try:
            self.results["ingest"] = self.verify_ingest("after the final clean restart")
        except InvariantBroken as e:  # go on: the deliveries and tasks are still worth verifying
            self.problems.append(str(e))
            self.results["ingest"] = self.checks[-1]
        self.wait_settled(60)
        self.results["deliveries"] = self.verify_deliveries()
        self.results["tasks"] = self.verify_tasks()

    def pending_deliveries(self) -> int | None:
        try:
            r = self.srv.admin_get("/_lookout/events/deliveries", {"state": "pending", "limit": 100000})
            return len(r.json()["deliveries"]) if r.status_code == 200 else None
        except Exception:
            return None

    def wait_settled(self, timeout: float) -> None:
        """Until every acknowledged PutEvents entry was delivered, no delivery is pending and no
        task is other than STOPPED — or the timeout."""
        ecs = self.srv.client("ecs", read_timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            received, _ = self.hook.snapshot()
            missing = [c for c in self.putter.acked if not received[c]]
            pending = self.pending_deliveries()
            try:
                arns = sorted(set(self.starter.arns) | list_all_tasks(ecs, self.cluster, self.marker[-12:]))
                tasks = describe_all(ecs, self.cluster, arns)
                not_stopped = [a for a in arns if tasks.get(a, {}).get("lastStatus") != "STOPPED"]
            except (ClientError, BotoCoreError) as e:
                not_stopped = [f"? ({e})"]
            if not missing and pending == 0 and not not_stopped:
                return
            if time.monotonic() > deadline:
                log(f"not settled after {timeout:.0f} s: {len(missing)} deliveries missing, {pending} pending, "
                    f"{len(not_stopped)} tasks not STOPPED")
                return
            time.sleep(0.5)

    def verify_deliveries(self) -> dict:
        time.sleep(1.0)  # a late duplicate still counts
        received, event_ids = self.hook.snapshot()
        acked = self.putter.acked
        lost = sorted(c for c in acked if not received[c])
        dup_events = {c: n for c, n in received.items() if n > 1}
        known = set(acked) | set(self.putter.unacked)
        stray = sorted(c for c in received if c not in known)
        wrong_id = sorted(c for c in acked if received[c] and event_ids.get(c) != {acked[c]})
        try:
            dead = self.srv.admin_get("/_lookout/events/deliveries", {"state": "dead-lettered", "limit": 1000})
            dead_n = len(dead.json()["deliveries"])
        except Exception:
            dead_n = None
        r = {"sent": self.putter.seq, "acked": len(acked), "unacked": len(self.putter.unacked),
             "unacked_delivered": sum(1 for c in self.putter.unacked if received[c]),
             "delivered_distinct": sum(1 for c in received if c in known), "lost": lost,
             "dup_events": len(dup_events), "dup_extra": sum(n - 1 for n in dup_events.values()),
             "dup_max": max(dup_events.values(), default=1), "stray": stray, "wrong_id": wrong_id,
             "malformed": self.hook.malformed, "dead_lettered": dead_n, "pending": self.pending_deliveries(),
             "entry_errors": dict(self.putter.entry_errors), "auth": dict(self.hook.auth_headers)}
        if lost:
            self.problems.append(f"deliveries (seed {self.seed}): {len(lost)} acknowledged PutEvents entries never "
                                 f"reached the webhook, e.g. {[(c, acked[c]) for c in lost[:5]]}")
        if stray:
            self.problems.append(f"deliveries: {len(stray)} events nobody sent reached the webhook, e.g. {stray[:5]}")
        if wrong_id:
            self.problems.append(f"deliveries: {len(wrong_id)} entries delivered under another id than the "
                                 f"acknowledged EventId, e.g. {[(c, acked[c], event_ids.get(c)) for c in wrong_id[:3]]}")
        if dead_n:
            self.problems.append(f"deliveries: {dead_n} dead-lettered although the webhook always answers 200")
        return r

    def verify_tasks(self) -> dict:
        ecs = self.srv.client("ecs", read_timeout=30)
        listed = list_all_tasks(ecs, self.cluster, self.marker[-12:])
        arns = sorted(set(self.starter.arns) | listed)
        tasks = describe_all(ecs, self.cluster, arns)
        missing = [a for a in self.starter.arns if a not in tasks]
        stuck = {a: tasks[a]["lastStatus"] for a in arns if a in tasks and tasks[a]["lastStatus"] != "STOPPED"}
        exit0, reasons = [], Counter()
        for a in arns:
            t = tasks.get(a)
            if not t or t["lastStatus"] != "STOPPED":
                continue
            cs = t.get("containers", [])
            if cs and all(c.get("exitCode") == 0 for c in cs):
                exit0.append(a)
            else:
                why = "; ".join(f"{c.get('reason') or 'no reason'} (exit {c.get('exitCode')})" for c in cs)
                reasons[f"{t.get('stoppedReason') or '—'} — {why}"] += 1
        # The log of every task that exited 0 ran within one life of the server: all 40 lines, once.
        lines: dict[str, Counter] = defaultdict(Counter)
        for e in filter_all(self.srv.logs(read_timeout=120), logGroupName=TASK_GROUP):
            lines[e["logStreamName"].rsplit("/", 1)[-1]][e["message"].strip()] += 1
        want = Counter(f"line {i}" for i in range(1, TASK_LINES + 1))
        incomplete = [a for a in exit0 if lines[a.rsplit("/", 1)[-1]] != want]
        dup_lines = [a for a in arns if any(n > 1 for n in lines[a.rsplit("/", 1)[-1]].values())]
        # Every task is STOPPED: none of their processes may still run (the sh carries the marker).
        alive = [f"{pid}: {cmd[:160]}" for pid, cmd in processes_with([self.marker])]
        r = {"started": len(self.starter.arns), "unanswered": self.starter.unanswered, "listed": len(listed),
             "unknown": len(set(listed) - set(self.starter.arns)), "exit0": len(exit0),
             "restarted": sum(reasons.values()), "reasons": reasons, "stuck": stuck, "missing": missing,
             "failures": self.starter.failures, "incomplete_logs": incomplete, "dup_lines": dup_lines,
             "alive": alive}
        if stuck:
            self.problems.append(f"tasks (seed {self.seed}): {len(stuck)} not STOPPED after the settle wait and a "
                                 f"clean restart: {list(stuck.items())[:5]}")
        if missing:
            self.problems.append(f"tasks: {len(missing)} tasks that RunTask answered are not described: {missing[:5]}")
        if self.starter.failures:
            self.problems.append(f"tasks: RunTask answered failures: {self.starter.failures[:3]}")
        return r

    # -- report --
    def report(self, wall: float) -> str:
        ing = self.results.get("ingest") or (self.checks[-1] if self.checks else None)
        d, t = self.results.get("deliveries"), self.results.get("tasks")
        ws = [*self.writers, self.probe]
        rows = [("seed", str(self.seed)), ("kills", f"{self.rounds_done} of {self.kills}"),
                ("duration", f"{wall:.0f} s"),
                ("ingest checks", f"{len(self.checks)} (every {self.check_every} round(s), the last one and after the "
                                  f"clean restart)")]
        if ing:
            rows += [("acknowledged batches / events",
                      f"{sum(len(w.acked) for w in ws)} / {ing['acked_events']}"),
                     ("unacknowledged batches (stored whole / absent)",
                      f"{ing['unacked_whole']} / {sum(len(w.unacked) for w in ws) - ing['unacked_whole']}"),
                     ("events stored", str(ing["stored"])),
                     ("**events lost** (must be 0)", str(len(ing["lost"]))),
                     ("**duplicate events** (must be 0)", str(len(ing["duplicated"]))),
                     ("**partial unacknowledged batches** (must be 0)", str(len(ing["partial"]))),
                     ("stray events / Filter≠Get disagreements (must be 0)",
                      f"{len(ing['stray'])} / {len(ing['disagree'])}")]
        if d:
            rows += [("deliveries: PutEvents entries sent / acknowledged", f"{d['sent']} / {d['acked']}"),
                     ("deliveries: acknowledged entries delivered", str(d["acked"] - len(d["lost"]))),
                     ("**deliveries lost** (must be 0)", str(len(d["lost"]))),
                     ("deliveries: duplicates (allowed)",
                      f"{d['dup_events']} events delivered more than once, {d['dup_extra']} extra deliveries "
                      f"(at most {d['dup_max']}× one event)"),
                     ("deliveries: unacknowledged entries delivered anyway",
                      f"{d['unacked_delivered']} of {d['unacked']}"),
                     ("deliveries: dead-lettered / pending / stray / wrong id",
                      f"{d['dead_lettered']} / {d['pending']} / {len(d['stray'])} / {len(d['wrong_id'])}")]
        if t:
            rows += [("tasks: started (RunTask answered) / unanswered RunTask calls / found only by ListTasks",
                      f"{t['started']} / {t['unanswered']} / {t['unknown']}"),
                     ("tasks: stopped with exit 0", str(t["exit0"])),
                     ("tasks: stopped otherwise (restarts)", str(t["restarted"]))]
            for reason, n in t["reasons"].most_common():
                rows.append((f"&nbsp;&nbsp;{n} ×", reason.replace("|", "\\|")))
            rows += [("**tasks stuck** (not STOPPED; must be 0)", str(len(t["stuck"]))),
                     ("tasks: exit-0 tasks with an incomplete log / tasks with a duplicated line / task "
                      "processes alive at the end (expected 0, not enforced)",
                      f"{len(t['incomplete_logs'])} / {len(t['dup_lines'])} / {len(t['alive'])}")]
        rows += [("recovery: spawn → /ready 200 (median / p95 / max)", fmt_times(self.ready_ms)),
                 ("recovery: spawn → first acknowledged PutLogEvents", fmt_times(self.ack_ms))]
        out = ["| figure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
        notes = []
        if t and t["incomplete_logs"]:
            notes.append(f"tasks that exited 0 with an incomplete log: {t['incomplete_logs'][:5]}")
        if t and t["dup_lines"]:
            notes.append(f"tasks with a log line stored twice: {t['dup_lines'][:5]}")
        if t and t["alive"]:
            notes.append(f"task processes still alive although every task is STOPPED: {t['alive'][:5]}")
        if t and t["unknown"]:
            notes.append(f"{t['unknown']} task(s) exist whose RunTask call got no answer (the kill landed during it)")
        if d and d["malformed"]:
            notes.append(f"{d['malformed']} requests to the webhook were not a complete event (cut by a kill?)")
        expected_auth = "Basic " + base64.b64encode(b"campaign:secret").decode()
        if d and set(d["auth"]) - {expected_auth}:
            notes.append(f"deliveries with another Authorization header than {expected_auth!r}: "
                         f"{ {k: n for k, n in d['auth'].items() if k != expected_auth} }")
        if notes:
            out += ["", "Notes:"] + [f"- {n}" for n in notes]
        return "\n".join(out)

    def cleanup(self) -> None:
        for t in self.threads:
            t.stop.set()
            t.pause.clear()
        try:
            self.srv.stop(timeout=15)
        except Exception:
            pass
        self.srv.kill_group()
        if self.hook:
            self.hook.close()
        time.sleep(0.3)
        killed = kill_leftovers([str(self.work), self.marker])
        if killed:
            log(f"killed {len(killed)} leftover processes: {killed[:5]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50, help="kill -9 rounds (default 50)")
    ap.add_argument("--quick", action="store_true", help="10 kills")
    ap.add_argument("--seed", type=int, help="random seed (default: the time; printed)")
    ap.add_argument("--lookout-bin", default=os.environ.get("LOOKOUT_BIN", str(REPO / "target/release/lookout")))
    ap.add_argument("--tail-secs", type=float, default=10.0,
                    help="load after the last restart, before settling (default 10)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory even when all is well")
    args = ap.parse_args()
    if args.quick:
        args.kills = 10
    if args.kills < 1:
        ap.error("--kills must be at least 1")
    if not Path(args.lookout_bin).is_file():
        ap.error(f"no lookout binary at {args.lookout_bin}")
    c = Campaign(args)
    t0 = time.monotonic()
    status = 0
    try:
        c.setup()
        c.run_rounds()
        c.settle_and_verify()
        if c.problems:
            raise InvariantBroken("\n".join(c.problems))
    except InvariantBroken as e:
        status = 1
        message = str(e)
    except Exception as e:  # the campaign could not run: not a verdict on lookout
        status = 2
        import traceback
        message = f"the campaign could not run (after {c.rounds_done} kills, seed {c.seed}): " + "".join(
            traceback.format_exception(e))
    finally:
        c.cleanup()
    wall = time.monotonic() - t0
    print(f"## lookout crash campaign: {c.rounds_done} × kill -9 under mixed load (seed {c.seed})\n")
    print(c.report(wall))
    print()
    if status == 0:
        print("All invariants held.")
        if not args.keep:
            import shutil
            shutil.rmtree(c.work, ignore_errors=True)
        else:
            print(f"work directory: {c.work}")
    else:
        print(f"**{'INVARIANT BROKEN' if status == 1 else 'CAMPAIGN FAILED'}** (seed {c.seed}, after "
              f"{c.rounds_done} kills):\n\n{message}\n\nwork directory kept: {c.work} "
              f"(server logs server-N.log, data in data/)")
    return status


if __name__ == "__main__":
    sys.exit(main())
