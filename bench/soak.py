"""Soak test (issue #7): one `lookout serve` under a steady mixed load for a bounded time (10 minutes
by default), sampled every few seconds — memory, file descriptors, threads, log store, deliveries,
tasks — to show whether they stay flat. Figures only: no timing assertions.

    .venv/bin/python bench/soak.py [--minutes M | --quick] [--sample-secs S] [--lookout-bin PATH]
                                   [--events-per-sec N] [--keep]

The server: `lookout serve --runtime process --no-tls --delivery-retry-base-ms 200` on a free
loopback port with a fresh data directory, signatures checked (the default key test / test). The
load, steady (paced, not flat out: a realistic steady state that leaves CPU headroom), for the
whole duration:

- logs: two PutLogEvents writers, 10 batches a second each (--events-per-sec in all, default
  3,000), over 3 groups × 2 streams; messages of 50-300 bytes, a third of them JSON, ~2% ERROR;
- a reader, every second: FilterLogEvents with a pattern (`ERROR`, or `{ $.status = 500 }`) over
  the last 5 minutes of a group, and GetLogEvents of a stream's latest events;
- EventBridge: PutEvents at ~20 entries/s on the default bus; rule `soak-ok` matches all of them
  and targets an API destination on a loopback webhook answering 200; rule `soak-fail` matches one
  in four and targets an API destination answering 500 (RetryPolicy 3 retries, 60 s), so retries
  and dead letters accumulate;
- ECS: RunTask every ~5 s of a short task (process runtime: `sh -c 'for i in $(seq 1 20); do echo t
  $i; done'`, awslogs into /soak/tasks with awslogs-create-group);
- SNS: a topic with an http subscription to the webhook (confirmed by GETting the SubscribeURL the
  webhook receives), Publish at ~2/s;
- the console, signed in with the key: `GET /` (Accept: text/html) and
  `/console/logs/search?group=...&pattern=ERROR`, alternately every 3 s.

Each sample: elapsed time, RSS of the server (its process tree, as bench/servers.py measures it:
task processes included while they run) and of the server process alone, its CPU use over the
sample, log events ingested so far and per second over the sample (`lookout_ingest_events_total`),
raw message bytes ingested so far (`lookout_ingest_bytes_total`), part files on disk
(`lookout_store_disk_bytes`), memtable (`lookout_store_memory_bytes`), decoded-block cache
(`lookout_store_block_cache_bytes`), EventBridge deliveries
pending (new + retrying) and dead-lettered (in the finished store, which keeps the last 10,000),
SNS deliveries pending, tasks by status, open file descriptors (/proc/<pid>/fd) and threads
(/proc/<pid>/status).

Prints on stdout a markdown table of the samples and a summary: RSS at 1 minute vs at the end, max
RSS, the least-squares slope of RSS over the second half (MB/min), fds and threads first vs last,
requests and errors by operation and code (client side, and the server's own counts). Progress on
stderr. Exit status: 0 normally (whatever the figures), 1 when the server died or a request got a
5xx other than ServiceUnavailable/Throttling, 2 when the soak itself could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port, serve_in_background  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY, SECRET, REGION = "test", "test", "us-east-1"
GROUPS = [f"/soak/app-{i}" for i in range(3)]
STREAMS = [(g, f"worker-{j}") for g in GROUPS for j in range(2)]
TASK_GROUP = "/soak/tasks"
CLUSTER = "soak"
FAMILY = "soak-task"
# 5xx codes that mean "overloaded, retry later": allowed under load.
OVERLOAD_CODES = {"ServiceUnavailable", "ServiceUnavailableException", "Throttling", "ThrottlingException",
                  "503"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----- request accounting ------------------------------------------------------------------------

class Stats:
    """Every request the load made, by operation and outcome; the 5xx that break the soak."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_op: dict[str, Counter] = defaultdict(Counter)
        self.bad: list[str] = []          # 5xx other than ServiceUnavailable/Throttling (first 20)
        self.bad_count = 0

    def record(self, op: str, outcome: str, status: int | None = None, detail: str = "") -> None:
        with self.lock:
            self.by_op[op][outcome] += 1
            if status is not None and status >= 500 and outcome.split(" ", 1)[-1] not in OVERLOAD_CODES:
                self.bad_count += 1
                if len(self.bad) < 20:
                    self.bad.append(f"{time.strftime('%H:%M:%S')} {op}: {outcome} {detail[:200]}")

    def call(self, op: str, fn, **kw):
        """Calls a boto3 operation; records its outcome; the response, or None when it failed."""
        try:
            r = fn(**kw)
            self.record(op, str(r.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)))
            return r
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = e.response.get("Error", {}).get("Code", "?")
            self.record(op, f"{status} {code}", status, str(e))
            if code in OVERLOAD_CODES:
                time.sleep(0.2)
            return None
        except (BotoCoreError, OSError) as e:
            self.record(op, f"no answer ({type(e).__name__})")
            time.sleep(0.2)
            return None

    def http(self, op: str, session: requests.Session, url: str, **kw) -> requests.Response | None:
        try:
            r = session.get(url, timeout=30, allow_redirects=False, **kw)
            self.record(op, str(r.status_code), r.status_code, r.text[:200] if r.status_code >= 500 else "")
            return r
        except requests.RequestException as e:
            self.record(op, f"no answer ({type(e).__name__})")
            return None

    def snapshot(self) -> dict[str, Counter]:
        with self.lock:
            return {op: Counter(c) for op, c in self.by_op.items()}


def client(endpoint: str, service: str):
    """A boto3 client without retries (every answer is seen and counted as it is)."""
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=5,
                 max_pool_connections=4)
    s = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    return s.client(service, endpoint_url=endpoint, config=cfg)


# ----- the webhook -------------------------------------------------------------------------------

class Webhook:
    """Loopback HTTP endpoint (keep-alive): /ok answers 200, /fail 500, /sns 200 (and keeps the
    SubscribeURL of a SubscriptionConfirmation)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.subscribe_urls: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                path = self.path.split("?", 1)[0]
                kind = path
                if path == "/sns":
                    kind = "/sns " + (self.headers.get("x-amz-sns-message-type") or "?")
                    if kind == "/sns SubscriptionConfirmation":
                        try:
                            url = json.loads(body)["SubscribeURL"]
                            with hook.lock:
                                hook.subscribe_urls.append(url)
                        except (ValueError, KeyError):
                            pass
                with hook.lock:
                    hook.hits[kind] += 1
                code = 500 if path == "/fail" else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = serve_in_background(Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.hits)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----- the load ----------------------------------------------------------------------------------

class Paced(threading.Thread):
    """Calls step() every `interval` seconds (no catching up after a slow step: a steady rate)."""

    def __init__(self, name: str, interval: float, stats: Stats, seed: int):
        super().__init__(name=name, daemon=True)
        self.interval, self.stats = interval, stats
        self.rng = random.Random(seed)
        self.stop_ev = threading.Event()
        self.loop_errors: list[str] = []

    def run(self):
        next_at = time.monotonic() + self.rng.uniform(0, self.interval)
        while not self.stop_ev.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop_ev.wait(delay):
                break
            next_at = max(next_at + self.interval, time.monotonic())
            try:
                self.step()
            except Exception as e:  # a bug of the loop itself: counted, and the loop goes on
                if len(self.loop_errors) < 5:
                    self.loop_errors.append(f"{type(e).__name__}: {e}")
                self.stats.record(f"(loop {self.name})", type(e).__name__)
                time.sleep(0.2)

    def step(self):
        raise NotImplementedError


WORDS = ("job queue worker batch shard retry commit flush upload download parse render invoice "
         "customer order payment report export import cache lookup request response timeout").split()
PATHS = ["/api/orders", "/api/users", "/api/reports", "/healthz", "/api/invoices/export"]


class LogWriter(Paced):
    """PutLogEvents of `batch` events into its streams in turn, 10 batches a second."""

    def __init__(self, idx: int, endpoint: str, stats: Stats, batch: int, streams):
        super().__init__(f"writer-{idx}", 0.1, stats, 100 + idx)
        self.logs = client(endpoint, "logs")
        self.batch, self.streams = batch, streams
        self.seq = 0
        self.turn = 0

    def message(self, ts: int) -> str:
        r = self.rng
        self.seq += 1
        roll = r.random()
        level = "ERROR" if roll < 0.02 else ("WARN" if roll < 0.07 else "INFO")
        if r.random() < 1 / 3:
            status = 500 if level == "ERROR" else r.choice((200, 200, 200, 201, 204, 404))
            doc = {"level": level, "ts": ts, "path": r.choice(PATHS), "status": status,
                   "latency_ms": r.randint(1, 2500), "seq": self.seq, "worker": self.name}
            pad = r.randint(0, 180)
            if pad > 10:
                doc["msg"] = " ".join(r.choice(WORDS) for _ in range(pad // 7))[:pad]
            return json.dumps(doc)
        head = f"{level} [{self.name}] seq={self.seq} "
        target = r.randint(50, 300)
        words = []
        n = len(head)
        while n < target:
            w = r.choice(WORDS)
            words.append(w)
            n += len(w) + 1
        return (head + " ".join(words))[:target]

    def step(self):
        group, stream = self.streams[self.turn % len(self.streams)]
        self.turn += 1
        ts = int(time.time() * 1000)
        events = [{"timestamp": ts, "message": self.message(ts)} for _ in range(self.batch)]
        self.stats.call("logs:PutLogEvents", self.logs.put_log_events, logGroupName=group,
                        logStreamName=stream, logEvents=events)


class Reader(Paced):
    """Every second: FilterLogEvents with a pattern over the last 5 minutes, and GetLogEvents."""

    def __init__(self, endpoint: str, stats: Stats):
        super().__init__("reader", 1.0, stats, 200)
        self.logs = client(endpoint, "logs")
        self.turn = 0

    def step(self):
        self.turn += 1
        group, stream = STREAMS[self.turn % len(STREAMS)]
        pattern = "ERROR" if self.turn % 2 else "{ $.status = 500 }"
        now = int(time.time() * 1000)
        self.stats.call("logs:FilterLogEvents", self.logs.filter_log_events, logGroupName=group,
                        filterPattern=pattern, startTime=now - 300_000, limit=100)
        self.stats.call("logs:GetLogEvents", self.logs.get_log_events, logGroupName=group, logStreamName=stream,
                        limit=100)


class EventsPutter(Paced):
    """PutEvents of one entry, 20 a second; one in four with status "failed" (matches soak-fail)."""

    def __init__(self, endpoint: str, stats: Stats):
        super().__init__("events", 0.05, stats, 300)
        self.events = client(endpoint, "events")
        self.seq = 0
        self.entry_errors: Counter[str] = Counter()

    def step(self):
        self.seq += 1
        detail = {"seq": self.seq, "status": "failed" if self.seq % 4 == 0 else "ok", "job": f"job-{self.seq % 50}"}
        r = self.stats.call("events:PutEvents", self.events.put_events, Entries=[
            {"Source": "soak.app", "DetailType": "Job Finished", "Detail": json.dumps(detail)}])
        if r:
            for e in r.get("Entries", []):
                if not e.get("EventId"):
                    self.entry_errors[e.get("ErrorCode", "?")] += 1


class TaskStarter(Paced):
    """RunTask every ~5 s."""

    def __init__(self, endpoint: str, stats: Stats):
        super().__init__("tasks", 5.0, stats, 400)
        self.ecs = client(endpoint, "ecs")
        self.started = 0
        self.failures: Counter[str] = Counter()

    def step(self):
        r = self.stats.call("ecs:RunTask", self.ecs.run_task, cluster=CLUSTER, taskDefinition=FAMILY,
                            startedBy="soak")
        if r:
            self.started += len(r.get("tasks", []))
            for f in r.get("failures", []):
                self.failures[f.get("reason", "?")] += 1


class Publisher(Paced):
    """SNS Publish, 2 a second."""

    def __init__(self, endpoint: str, stats: Stats, topic_arn: str):
        super().__init__("sns", 0.5, stats, 500)
        self.sns = client(endpoint, "sns")
        self.topic_arn = topic_arn
        self.seq = 0

    def step(self):
        self.seq += 1
        self.stats.call("sns:Publish", self.sns.publish, TopicArn=self.topic_arn, Subject=f"soak alert {self.seq}",
                        Message=json.dumps({"alert": "queue depth", "seq": self.seq, "value": self.seq % 97}))


class Console(Paced):
    """The console, signed in: the overview and a search, alternately every 3 s."""

    def __init__(self, endpoint: str, stats: Stats):
        super().__init__("console", 3.0, stats, 600)
        self.endpoint = endpoint
        self.session = requests.Session()
        self.session.headers["Accept"] = "text/html"
        self.turn = 0

    def sign_in(self) -> None:
        r = self.session.post(self.endpoint + "/console/login", data={"key_id": KEY, "secret": SECRET, "next": "/"},
                              headers={"Origin": self.endpoint}, allow_redirects=False, timeout=30)
        if r.status_code != 303 or "lookout_session" not in self.session.cookies:
            raise RuntimeError(f"console sign-in answered {r.status_code}: {r.text[:300]}")

    def step(self):
        self.turn += 1
        if self.turn % 2:
            self.stats.http("console:GET /", self.session, self.endpoint + "/")
        else:
            group = GROUPS[(self.turn // 2) % len(GROUPS)]
            self.stats.http("console:GET /console/logs/search", self.session, self.endpoint + "/console/logs/search",
                            params={"group": group, "pattern": "ERROR"})


# ----- sampling ----------------------------------------------------------------------------------

def parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "_bucket{" in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def cpu_secs(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


TASK_ABBREV = {"PROVISIONING": "prov", "PENDING": "pend", "ACTIVATING": "act", "RUNNING": "run",
               "DEACTIVATING": "deact", "STOPPING": "stopping", "DEPROVISIONING": "deprov", "STOPPED": "stop"}


def take_sample(srv: Server, t: float, prev: dict | None) -> dict:
    pid = srv.proc.pid
    m = parse_metrics(requests.get(srv.endpoint + "/metrics", timeout=30).text)
    st = proc_status(pid)
    s = {
        "t": t,
        "rss": (srv.rss_bytes() or 0) / 1e6,
        "rss_self": int(st["VmRSS"].split()[0]) * 1024 / 1e6,
        "cpu": cpu_secs(pid),
        "events": int(m.get("lookout_ingest_events_total", 0)),
        "ingested": m.get("lookout_ingest_bytes_total", 0) / 1e6,
        "disk": m.get("lookout_store_disk_bytes", 0) / 1e6,
        "mem": m.get("lookout_store_memory_bytes", 0) / 1e6,
        "cache": m.get("lookout_store_block_cache_bytes", 0) / 1e6,
        "eb_new": int(m.get('lookout_event_deliveries_pending{state="new"}', 0)),
        "eb_retry": int(m.get('lookout_event_deliveries_pending{state="retrying"}', 0)),
        "eb_dead": int(m.get('lookout_event_deliveries_finished{outcome="dead_lettered"}', 0)),
        "sns_pending": int(m.get('lookout_sns_deliveries{state="pending"}', 0)),
        "tasks": {k.split('"')[1]: int(v) for k, v in m.items() if k.startswith("lookout_tasks{")},
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(st["Threads"]),
        "requests": {k: v for k, v in m.items() if k.startswith("lookout_requests_total{")},
    }
    if prev is not None and t > prev["t"]:
        dt = t - prev["t"]
        s["rate"] = (s["events"] - prev["events"]) / dt
        s["cpu_pct"] = 100 * (s["cpu"] - prev["cpu"]) / dt
    else:
        s["rate"], s["cpu_pct"] = None, None
    return s


def fmt_tasks(tasks: dict[str, int]) -> str:
    parts = [f"{TASK_ABBREV.get(k, k.lower())} {n}" for k, n in sorted(tasks.items(), key=lambda kv: kv[0] != "RUNNING")
             if n]
    return ", ".join(parts) or "—"


def samples_table(samples: list[dict]) -> str:
    head = ("| t (s) | RSS MB (tree) | RSS MB (server) | CPU % | events ingested | events/s | ingested MB | disk MB "
            "| memtable MB | block cache MB | EB pending new+retrying | EB dead-lettered | SNS pending | tasks | fds "
            "| threads |")
    rows = [head, "|" + "---:|" * 16]
    for s in samples:
        rate = "—" if s["rate"] is None else f"{s['rate']:,.0f}"
        cpu = "—" if s["cpu_pct"] is None else f"{s['cpu_pct']:.0f}"
        rows.append(f"| {s['t']:.0f} | {s['rss']:.1f} | {s['rss_self']:.1f} | {cpu} | {s['events']:,} | {rate} "
                    f"| {s['ingested']:.1f} | {s['disk']:.1f} | {s['mem']:.2f} | {s['cache']:.1f} | {s['eb_new']}+{s['eb_retry']} "
                    f"| {s['eb_dead']:,} | {s['sns_pending']} | {fmt_tasks(s['tasks'])} | {s['fds']} | {s['threads']} |")
    return "\n".join(rows)


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def summary(samples: list[dict], duration: float, stats: Stats, hook: Webhook, loads: dict, subscribed: str,
            server_note: str) -> str:
    load = [s for s in samples if s["t"] > 0]
    first, last = (load[0] if load else samples[0]), samples[-1]
    at_1min = next((s for s in samples if s["t"] >= 60), last)
    second_half = [s for s in samples if s["t"] >= duration / 2]
    rss_slope = slope_per_min([(s["t"], s["rss"]) for s in second_half])
    self_slope = slope_per_min([(s["t"], s["rss_self"]) for s in second_half])
    mem_slope = slope_per_min([(s["t"], s["mem"]) for s in second_half])
    fd_slope = slope_per_min([(s["t"], s["fds"]) for s in second_half])
    rates = [s["rate"] for s in load if s["rate"] is not None]
    cpus = [s["cpu_pct"] for s in load if s["cpu_pct"] is not None]
    fmt = lambda v, unit: "—" if v is None else f"{v:+.2f} {unit}"  # noqa: E731
    rows = [
        ("duration of the load", f"{duration:.0f} s, sampled every {samples[1]['t'] - samples[0]['t']:.0f} s"
         if len(samples) > 1 else f"{duration:.0f} s"),
        ("RSS (tree) at rest before the load / at 1 min / at the end",
         f"{samples[0]['rss']:.1f} / {at_1min['rss']:.1f} (t={at_1min['t']:.0f} s) / {last['rss']:.1f} MB"),
        ("RSS (server process alone) at 1 min / at the end", f"{at_1min['rss_self']:.1f} / {last['rss_self']:.1f} MB"),
        ("max RSS (tree) / (server alone)",
         f"{max(s['rss'] for s in samples):.1f} MB (t={max(samples, key=lambda s: s['rss'])['t']:.0f} s) / "
         f"{max(s['rss_self'] for s in samples):.1f} MB"),
        (f"RSS slope over the second half ({len(second_half)} samples, least squares): tree / server alone",
         f"{fmt(rss_slope, 'MB/min')} / {fmt(self_slope, 'MB/min')}"),
        ("memtable: at 1 min / at the end / max / slope over the second half",
         f"{at_1min['mem']:.2f} / {last['mem']:.2f} / {max(s['mem'] for s in samples):.2f} MB / "
         f"{fmt(mem_slope, 'MB/min')}"),
        ("open fds: first / last / max / slope over the second half",
         f"{first['fds']} / {last['fds']} / {max(s['fds'] for s in samples)} / {fmt(fd_slope, 'per min')}"),
        ("threads: first / last / max",
         f"{first['threads']} / {last['threads']} / {max(s['threads'] for s in samples)}"),
        ("log events ingested / mean rate (min–max of the samples)",
         f"{last['events']:,} / {last['events'] / max(duration, 1):,.0f} per s"
         + (f" ({min(rates):,.0f}–{max(rates):,.0f})" if rates else "")),
        ("RSS (server alone) growth from 1 min to the end / raw log bytes ingested meanwhile",
         f"{last['rss_self'] - at_1min['rss_self']:+.1f} MB / {last['ingested'] - at_1min['ingested']:.1f} MB"),
        ("raw log bytes ingested / part files on disk at the end", f"{last['ingested']:.1f} MB / {last['disk']:.1f} MB"),
        ("server CPU (one core = 100%): mean / max of the samples",
         f"{sum(cpus) / len(cpus):.0f}% / {max(cpus):.0f}%" if cpus else "—"),
    ]
    h = hook.snapshot()
    rows += [
        ("EventBridge: PutEvents entries / refused entries",
         f"{loads['events'].seq:,} / {sum(loads['events'].entry_errors.values())}"
         + (f" {dict(loads['events'].entry_errors)}" if loads['events'].entry_errors else "")),
        ("EventBridge: webhook /ok deliveries (200) / /fail attempts (500)", f"{h['/ok']:,} / {h['/fail']:,}"),
        ("EventBridge: pending at the end (new+retrying) / dead-lettered (finished store)",
         f"{last['eb_new']}+{last['eb_retry']} / {last['eb_dead']:,}"),
        ("SNS: subscription / Publish calls / notifications received / pending at the end",
         f"{subscribed} / {loads['sns'].seq:,} / {h['/sns Notification']:,} / {last['sns_pending']}"),
        ("ECS: tasks started / RunTask failures / tasks at the end",
         f"{loads['tasks'].started} / {sum(loads['tasks'].failures.values())}"
         + (f" {dict(loads['tasks'].failures)}" if loads['tasks'].failures else "") + f" / {fmt_tasks(last['tasks'])}"),
        ("server", server_note),
    ]
    out = ["| figure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]

    # Requests and errors by operation and code, as the load saw them.
    by_op = stats.snapshot()
    total = sum(sum(c.values()) for c in by_op.values())
    errors = Counter()
    for c in by_op.values():
        for outcome, n in c.items():
            if not outcome.startswith("2"):
                errors[outcome] += n
    out += ["", f"Requests made by the load: {total:,}; not 2xx: {sum(errors.values()):,}"
            + (f" ({', '.join(f'{k}: {n}' for k, n in errors.most_common())})" if errors else "") + "\n",
            "| operation | requests | by outcome |", "|---|---:|---|"]
    for op in sorted(by_op):
        c = by_op[op]
        out.append(f"| {op} | {sum(c.values()):,} | {', '.join(f'{k}: {n:,}' for k, n in c.most_common())} |")

    # The server's own count (lookout_requests_total), by code.
    codes: Counter[str] = Counter()
    for k, v in last["requests"].items():
        code = k.split('code="', 1)[1].split('"', 1)[0] if 'code="' in k else "?"
        codes[code] += int(v)
    if codes:
        out += ["", "Server's own count (`lookout_requests_total`, APIs only) by status: "
                + ", ".join(f"{k}: {n:,}" for k, n in sorted(codes.items()))]
    loop_errors = [e for t in loads.values() for e in t.loop_errors]
    if loop_errors:
        out += ["", f"Load loop errors (bugs of this script): {loop_errors}"]
    return "\n".join(out)


# ----- setup -------------------------------------------------------------------------------------

def setup(endpoint: str, hook: Webhook) -> tuple[str, str]:
    """Log groups and streams, rules and API destinations, the cluster and task definition, the SNS
    topic and its confirmed subscription. Returns (topic ARN, subscription state)."""
    logs = client(endpoint, "logs")
    for g in GROUPS:
        logs.create_log_group(logGroupName=g)
    for g, s in STREAMS:
        logs.create_log_stream(logGroupName=g, logStreamName=s)

    ev = client(endpoint, "events")
    conn = ev.create_connection(Name="soak-hook", AuthorizationType="API_KEY", AuthParameters={
        "ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key", "ApiKeyValue": "soak-secret"}})["ConnectionArn"]
    for name, path, retry in (("soak-ok", "/ok", None),
                              ("soak-fail", "/fail", {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 60})):
        dest = ev.create_api_destination(Name=name, ConnectionArn=conn, InvocationEndpoint=hook.url(path),
                                         HttpMethod="POST")["ApiDestinationArn"]
        pattern = {"source": ["soak.app"]}
        if name == "soak-fail":
            pattern["detail"] = {"status": ["failed"]}
        ev.put_rule(Name=name, EventPattern=json.dumps(pattern))
        target = {"Id": "hook", "Arn": dest}
        if retry:
            target["RetryPolicy"] = retry
        r = ev.put_targets(Rule=name, Targets=[target])
        if r.get("FailedEntryCount"):
            raise RuntimeError(f"PutTargets {name}: {r}")

    ecs = client(endpoint, "ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(family=FAMILY, containerDefinitions=[{
        "name": "main", "image": "busybox", "essential": True,
        "command": ["sh", "-c", "for i in $(seq 1 20); do echo t $i; done"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": TASK_GROUP, "awslogs-region": REGION, "awslogs-stream-prefix": "soak",
            "awslogs-create-group": "true"}}}])

    sns = client(endpoint, "sns")
    topic = sns.create_topic(Name="soak-alerts")["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=hook.url("/sns"))["SubscriptionArn"]
    deadline = time.monotonic() + 30
    while not hook.subscribe_urls and time.monotonic() < deadline:
        time.sleep(0.1)
    if not hook.subscribe_urls:
        raise RuntimeError("the webhook got no SubscriptionConfirmation within 30 s")
    r = requests.get(hook.subscribe_urls[0], timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"GET SubscribeURL answered {r.status_code}: {r.text[:300]}")
    if sub == "pending confirmation" or not sub.startswith("arn:"):
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        sub = next((s["SubscriptionArn"] for s in subs if s["Endpoint"] == hook.url("/sns")), sub)
    state = "?"
    if sub.startswith("arn:"):
        attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        state = "confirmed" if attrs.get("PendingConfirmation") == "false" else "PendingConfirmation"
    if state != "confirmed":
        raise RuntimeError(f"the SNS subscription is not confirmed after GETting its SubscribeURL ({state})")
    return topic, state


# ----- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="duration of the load (default 10)")
    ap.add_argument("--quick", action="store_true", help="2 minutes")
    ap.add_argument("--sample-secs", type=float, default=10.0, help="sampling interval (default 10)")
    ap.add_argument("--events-per-sec", type=int, default=3000,
                    help="log events per second over both writers (default 3000)")
    ap.add_argument("--lookout-bin", default=os.environ.get("LOOKOUT_BIN", str(REPO / "target/release/lookout")))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (data and server log)")
    args = ap.parse_args()
    if args.quick:
        args.minutes = 2.0
    if args.minutes <= 0 or args.sample_secs <= 0:
        ap.error("--minutes and --sample-secs must be positive")
    lookout_bin = Path(args.lookout_bin).resolve()
    if not lookout_bin.is_file():
        ap.error(f"no lookout binary at {lookout_bin}")
    duration = args.minutes * 60

    work = Path(tempfile.mkdtemp(prefix="lookout-soak-"))
    # The server reads ./lookout.toml and LOOKOUT_* from its environment: neither may change the setup.
    for k in [k for k in os.environ if k.startswith("LOOKOUT_") or k.startswith("AWS_")]:
        del os.environ[k]
    os.chdir(work)
    port = free_port()
    srv = Server("lookout", [str(lookout_bin), "serve", "--runtime", "process", "--no-tls",
                             "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"),
                             "--delivery-retry-base-ms", "200"],
                 port, "/ready", True, work / "server.log", work / "data")
    stats = Stats()
    hook: Webhook | None = None
    loads: dict[str, Paced] = {}
    samples: list[dict] = []
    status, message, subscribed = 0, "", "?"
    died = None
    t_load = time.monotonic()
    try:
        srv.start()
        hook = Webhook()
        log(f"lookout on {srv.endpoint} (pid {srv.proc.pid}), webhook on :{hook.port}, work dir {work}")
        topic, subscribed = setup(srv.endpoint, hook)
        per_writer = max(1, args.events_per_sec // 2 // 10)
        loads = {
            "writer-0": LogWriter(0, srv.endpoint, stats, per_writer, STREAMS[0::2]),
            "writer-1": LogWriter(1, srv.endpoint, stats, per_writer, STREAMS[1::2]),
            "reader": Reader(srv.endpoint, stats),
            "events": EventsPutter(srv.endpoint, stats),
            "tasks": TaskStarter(srv.endpoint, stats),
            "sns": Publisher(srv.endpoint, stats, topic),
            "console": Console(srv.endpoint, stats),
        }
        loads["console"].sign_in()
        samples.append(take_sample(srv, 0.0, None))
        log(f"setup done; {args.minutes:g} min of load ({per_writer * 20:,} log events/s), a sample every "
            f"{args.sample_secs:g} s")
        t_load = time.monotonic()
        for t in loads.values():
            t.start()
        k = 1
        while True:
            t_next = k * args.sample_secs
            if t_next > duration + 1e-6:
                break
            time.sleep(max(0.0, t_load + t_next - time.monotonic()))
            if not srv.alive():
                died = f"lookout exited with {srv.proc.returncode} at t={time.monotonic() - t_load:.0f} s"
                break
            s = take_sample(srv, time.monotonic() - t_load, samples[-1])
            samples.append(s)
            log(f"t={s['t']:.0f}s rss={s['rss']:.1f}MB events={s['events']:,} ({s['rate']:,.0f}/s) "
                f"cpu={s['cpu_pct']:.0f}% mem={s['mem']:.2f}MB cache={s['cache']:.1f}MB eb={s['eb_new']}+{s['eb_retry']} "
                f"dead={s['eb_dead']} sns={s['sns_pending']} tasks={fmt_tasks(s['tasks'])} fds={s['fds']} "
                f"threads={s['threads']} bad5xx={stats.bad_count}")
            k += 1
    except Exception as e:
        import traceback
        status = 2
        message = "the soak could not run: " + "".join(traceback.format_exception(e))
    finally:
        for t in loads.values():
            t.stop_ev.set()
        for t in loads.values():
            if t.is_alive():
                t.join(30)
        if died is None and srv.proc is not None and not srv.alive():
            died = f"lookout exited with {srv.proc.returncode}"
        server_note = "alive at the end, stopped with SIGTERM"
        if died:
            server_note = f"**DIED**: {died}"
        elif srv.proc is not None:
            srv.stop()
            server_note += f" (exit {srv.proc.returncode})"
        if hook:
            hook.close()
    duration_run = (samples[-1]["t"] if samples else 0.0)

    print(f"## lookout soak: {duration_run / 60:.1f} min of steady mixed load, a sample every {args.sample_secs:g} s\n")
    print(f"Binary {lookout_bin}; {os.cpu_count()} cores. Load: {args.events_per_sec:,} log events/s target over 2 "
          f"writers and {len(STREAMS)} streams, a reader (FilterLogEvents + GetLogEvents) every second, PutEvents "
          f"~20/s (2 rules: 200 and 500), RunTask every ~5 s, SNS Publish ~2/s to a confirmed http subscription, "
          f"a console page every 3 s.\n")
    if samples:
        print(samples_table(samples))
        print()
        if loads:
            print(summary(samples, duration_run, stats, hook, loads, subscribed, server_note))
            print()
    if died:
        status = max(status, 1)
        print(f"**lookout died**: {died}\n\nlast lines of its log:\n{srv.log_tail(40)}\n")
    if stats.bad_count:
        status = max(status, 1)
        print(f"**{stats.bad_count} request(s) got a 5xx other than ServiceUnavailable/Throttling**, e.g.:\n"
              + "\n".join(f"- {b}" for b in stats.bad[:10]) + "\n")
    if status == 2:
        print(f"**SOAK FAILED TO RUN**\n\n{message}")
    if status == 0 and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work} (server.log, data/)")
    return status


if __name__ == "__main__":
    sys.exit(main())
