#!/usr/bin/env python3
"""lookout vs moto: a first, small CloudWatch Logs benchmark (W1 ingest + W3 filter, quick size).

Starts each server in turn on a free loopback port (the real `lookout serve`, then `moto_server`),
replays the SAME pre-built workload against each, and prints the figures side by side with the
ratio lookout/moto. See bench/README.md.

    .venv/bin/python bench/logs_bench.py            # 200,000 events, 100 streams, 8 clients
    .venv/bin/python bench/logs_bench.py --quick    # 20,000 events: seconds; keeps the harness alive

Only the standard library and boto3. Exits non-zero only when a server fails to start or requests
fail (HTTP status other than 200, transport errors, partially rejected batches) -- never on speed.
A peer returning the wrong events is reported beside its figure, not as a failure.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from servers import Server, free_port, log

REPO = Path(__file__).resolve().parent.parent

GROUP = "/bench/loghub-mix"
TARGET = "Logs_20140328."
NEEDLE = "NEEDLEX"  # planted in 1 % of the text events
UNIQUE = "UNIQTOKEN7Q3ZV9K"  # planted in exactly one event
JSON_PATTERN = "{ $.status = 503 && $.latency > 1000 }"
JSON_FRACTION = 0.10
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576  # sum(UTF-8 message bytes + 26)
EVENT_OVERHEAD = 26
FILTER_LIMIT = 10_000
DUMMY_AUTH = (
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/logs/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0"
)


# --------------------------------------------------------------------------------------------
# workload
# --------------------------------------------------------------------------------------------

DIGITS = re.compile(r"\d{3,}")
HEADER_KEEP = 24


def default_loghub_dir() -> Path:
    env = os.environ.get("LOGHUB_DIR")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared" / "data" / "loghub", Path("/work/shared/data/loghub")):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data" / "loghub"


def load_templates(loghub: Path) -> list[tuple[str, list[tuple[list[str], list[int]]]]]:
    """Per system: the lines split around digit runs of length >= 3 (the variable fields)."""
    systems = []
    files = sorted(loghub.glob("*.log"))
    if not files:
        raise SystemExit(f"no *.log files in {loghub} (set --loghub or LOGHUB_DIR)")
    for f in files:
        tmpls = []
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                if NEEDLE in line or UNIQUE in line:
                    raise SystemExit(f"needle token already present in {f}")
                # the line header (first HEADER_KEEP chars: mostly the timestamp) stays as in the
                # real file; digit runs after it become fresh random digits on every use
                parts, runs, pos = [], [], 0
                for m in DIGITS.finditer(line, HEADER_KEEP):
                    parts.append(line[pos:m.start()])
                    runs.append(m.end() - m.start())
                    pos = m.end()
                parts.append(line[pos:])
                tmpls.append((parts, runs))
        name = f.name.split("_")[0].lower()
        systems.append((name, tmpls))
    return systems


def render(rng: random.Random, tmpl: tuple[list[str], list[int]]) -> str:
    parts, runs = tmpl
    if not runs:
        return parts[0]
    out = [parts[0]]
    for n, lit in zip(runs, parts[1:]):
        out.append(str(rng.randrange(10**n)).zfill(n))
        out.append(lit)
    return "".join(out)


STATUSES = [200, 201, 204, 301, 400, 404, 429, 500, 503]
STATUS_W = [78, 5, 3, 2, 2, 4, 1, 1, 4]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
PATHS = ["/api/v1/orders", "/api/v1/users", "/api/v2/search", "/healthz", "/api/v1/cart", "/login",
         "/api/v1/payments", "/static/app.js"]
EXTRA = {
    "service": lambda r: r.choice(["checkout", "search", "auth", "billing", "gateway"]),
    "region": lambda r: r.choice(["us-east-1", "eu-west-1", "ap-south-1"]),
    "host": lambda r: f"ip-10-{r.randrange(256)}-{r.randrange(256)}-{r.randrange(256)}",
    "pod": lambda r: f"web-{r.getrandbits(40):010x}",
    "traceId": lambda r: f"1-{r.getrandbits(32):08x}-{r.getrandbits(96):024x}",
    "spanId": lambda r: f"{r.getrandbits(64):016x}",
    "userId": lambda r: r.randrange(1, 5_000_000),
    "bytes": lambda r: int(r.lognormvariate(8, 1.5)),
    "retry": lambda r: r.randrange(4),
    "cache": lambda r: r.choice(["hit", "miss", "stale"]),
    "version": lambda r: f"1.{r.randrange(20)}.{r.randrange(10)}",
    "ua": lambda r: r.choice(["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "aws-sdk-go/1.55.5",
                              "Boto3/1.43.11 Python/3.11.7"]),
    "tls": lambda r: r.choice([True, False]),
    "shard": lambda r: r.randrange(64),
}
EXTRA_KEYS = list(EXTRA)


def json_message(rng: random.Random, text: str) -> tuple[str, bool]:
    status = rng.choices(STATUSES, STATUS_W)[0]
    latency = int(rng.lognormvariate(6.3, 1.2))  # median ~545 ms, ~30 % above 1000
    level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
    ev = {
        "level": level,
        "status": status,
        "latency": latency,
        "requestId": "%08x-%04x-4%03x-%04x-%012x" % (
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
            0x8000 | rng.getrandbits(14), rng.getrandbits(48)),
        "ip": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
    }
    k = rng.randrange(0, 13)  # 5..17 fields from here, +method/path/msg below for some
    for key in rng.sample(EXTRA_KEYS, k):
        ev[key] = EXTRA[key](rng)
    if rng.random() < 0.7:
        ev["method"] = rng.choice(METHODS)
        ev["path"] = rng.choice(PATHS)
    if rng.random() < 0.5:
        ev["msg"] = text[:200]
    return json.dumps(ev, separators=(",", ":")), (status == 503 and latency > 1000)


class Workload:
    def __init__(self, args: argparse.Namespace):
        t0 = time.perf_counter()
        rng = random.Random(args.seed)
        systems = load_templates(args.loghub)
        n, s = args.events, args.streams
        self.group = GROUP
        # streams: Zipf(1) popularity; each is one system's log, cycling from a random offset
        self.streams = []
        cursors = []
        for k in range(s):
            name, tmpls = systems[k % len(systems)]
            self.streams.append(f"{name}/{k:04d}/{rng.getrandbits(48):012x}")
            cursors.append(rng.randrange(len(tmpls)))
        weights = [1.0 / (k + 1) for k in range(s)]
        cum = list(itertools.accumulate(weights))
        owner = rng.choices(range(s), cum_weights=cum, k=n)
        is_json = [rng.random() < JSON_FRACTION for _ in range(n)]
        text_idx = [i for i in range(n) if not is_json[i]]
        n_needle = n // 100
        chosen = rng.sample(text_idx, n_needle + 1)
        needles = set(chosen[:n_needle])
        unique_at = chosen[n_needle]

        now_ms = int(time.time() * 1000)
        t_first = now_ms - 59 * 60_000  # spread over the last hour
        span = 58 * 60_000
        per_stream: list[list[tuple[int, str]]] = [[] for _ in range(s)]
        raw_bytes = 0
        json_expected = 0
        for i in range(n):
            k = owner[i]
            name, tmpls = systems[k % len(systems)]
            text = render(rng, tmpls[cursors[k] % len(tmpls)])
            cursors[k] += 1
            if is_json[i]:
                msg, hit = json_message(rng, text)
                json_expected += hit
            else:
                msg = text
                if i in needles or i == unique_at:
                    tok = NEEDLE if i in needles else UNIQUE
                    sp = [m.start() for m in re.finditer(" ", msg)]
                    if sp:
                        p = rng.choice(sp)
                        msg = f"{msg[:p]} {tok}{msg[p:]}"
                    else:
                        msg = f"{msg} {tok}"
            ts = t_first + (i * span) // n
            per_stream[k].append((ts, msg))

        # batches: per stream, <= 10,000 events and <= 1 MiB; sent in order of first timestamp
        batches = []  # (first_ts, stream, events, raw bytes)
        for k, evs in enumerate(per_stream):
            cur, cur_bytes = [], 0
            for ts, msg in evs:
                b = len(msg.encode("utf-8"))
                raw_bytes += b
                if cur and (len(cur) >= MAX_BATCH_EVENTS or cur_bytes + b + EVENT_OVERHEAD > MAX_BATCH_BYTES):
                    batches.append((cur[0]["timestamp"], k, cur, cur_bytes))
                    cur, cur_bytes = [], 0
                cur.append({"timestamp": ts, "message": msg})
                cur_bytes += b + EVENT_OVERHEAD
            if cur:
                batches.append((cur[0]["timestamp"], k, cur, cur_bytes))
        batches.sort(key=lambda b: (b[0], b[1]))
        self.bodies = [
            json.dumps({"logGroupName": GROUP, "logStreamName": self.streams[k], "logEvents": evs},
                       separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            for _, k, evs, _ in batches
        ]
        # reference compressor on the same stream-grouped blocks: zlib level 1 over each batch's
        # messages joined by newlines
        zsize = 0
        for _, _, evs, _ in batches:
            zsize += len(zlib.compress("\n".join(e["message"] for e in evs).encode("utf-8"), 1))
        self.zlib1_bytes = zsize
        self.batch_events = [len(evs) for _, _, evs, _ in batches]
        self.batch_bytes = [b for *_, b in batches]
        self.n_events = n
        self.raw_bytes = raw_bytes
        self.wire_bytes = sum(len(b) for b in self.bodies)
        self.expected = {"needle": n_needle, "unique": 1, "json": json_expected, "all": n}
        self.streams_used = sum(1 for e in per_stream if e)
        self.build_seconds = time.perf_counter() - t0

    def describe(self) -> dict:
        return {
            "events": self.n_events,
            "streams": len(self.streams),
            "streams_with_events": self.streams_used,
            "batches": len(self.bodies),
            "max_batch_events": max(self.batch_events),
            "max_batch_bytes": max(self.batch_bytes),
            "raw_message_bytes": self.raw_bytes,
            "request_body_bytes": self.wire_bytes,
            "zlib1_batch_bytes": self.zlib1_bytes,
            "zlib1_ratio": round(self.raw_bytes / self.zlib1_bytes, 2),
            "mean_message_bytes": round(self.raw_bytes / self.n_events, 1),
            "expected": self.expected,
            "build_seconds": round(self.build_seconds, 2),
        }


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


def dir_breakdown(path: Path) -> dict[str, int]:
    """Apparent bytes by file kind (extension, else file name) after the server stopped."""
    kinds: dict[str, int] = {}
    for root, _, files in os.walk(path):
        for f in files:
            try:
                size = os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
            kind = f.rsplit(".", 1)[1] if "." in f else f
            kinds[kind] = kinds.get(kind, 0) + size
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def dir_size(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes on disk)."""
    apparent = alloc = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            apparent += st.st_size
            alloc += st.st_blocks * 512
    return apparent, alloc


# --------------------------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------------------------


def headers_for(op: str) -> dict[str, str]:
    return {
        "X-Amz-Target": TARGET + op,
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "Authorization": DUMMY_AUTH,
    }


def boto_client(port: int, read_timeout: float):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "logs", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=read_timeout),
    )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p / 100 * len(v)) - 1))]


def run_ingest(port: int, wl: Workload, clients: int) -> dict:
    hdrs = headers_for("PutLogEvents")
    bodies = wl.bodies
    nxt = itertools.count()  # next() on a count is atomic under the GIL
    lat = [0.0] * len(bodies)
    failures: list[tuple[int, str]] = []
    no_request_id = [0]
    no_seq_token = [0]
    barrier = threading.Barrier(clients + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        barrier.wait()
        while True:
            i = next(nxt)
            if i >= len(bodies):
                break
            t = time.perf_counter()
            try:
                conn.request("POST", "/", body=bodies[i], headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                status = r.status
                has_rid = r.getheader("x-amzn-RequestId") is not None
            except (OSError, http.client.HTTPException) as e:
                lat[i] = time.perf_counter() - t
                failures.append((i, f"{type(e).__name__}: {e}"))
                conn.close()
                continue
            lat[i] = time.perf_counter() - t
            if not has_rid:
                no_request_id[0] += 1
            if status != 200:
                failures.append((i, f"HTTP {status}: {data[:300].decode(errors='replace')}"))
            elif b"rejectedLogEventsInfo" in data:
                failures.append((i, f"partially rejected: {data[:300].decode(errors='replace')}"))
            elif b'"nextSequenceToken"' not in data:
                no_seq_token[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    failed_idx = {i for i, _ in failures}
    ok_events = sum(n for i, n in enumerate(wl.batch_events) if i not in failed_idx)
    return {
        "seconds": secs,
        "requests": len(bodies),
        "failed_requests": len(failures),
        "failures": [f"batch {i}: {m}" for i, m in failures[:20]],
        "events_acknowledged": ok_events,
        "events_per_s": wl.n_events / secs,
        "raw_mb_per_s": wl.raw_bytes / secs / 1e6,
        "wire_mb_per_s": wl.wire_bytes / secs / 1e6,
        "put_p50_ms": pct(lat, 50) * 1000,
        "put_p99_ms": pct(lat, 99) * 1000,
        "put_max_ms": max(lat) * 1000,
        "responses_without_request_id": no_request_id[0],
        "responses_without_sequence_token": no_seq_token[0],
    }


def check_needle(tok: str):
    pat = re.compile(r"(?<![A-Za-z0-9])" + re.escape(tok) + r"(?![A-Za-z0-9])")
    return lambda m: bool(pat.search(m))


def check_json(m: str) -> bool:
    if not m.startswith("{"):
        return False
    try:
        v = json.loads(m)
    except ValueError:
        return False
    if not isinstance(v, dict):
        return False
    st, la = v.get("status"), v.get("latency")
    num = (int, float)
    return (isinstance(st, num) and not isinstance(st, bool) and st == 503
            and isinstance(la, num) and not isinstance(la, bool) and la > 1000)


def run_filter(port: int, pattern: str | None, expected: int, check, all_pages: bool,
               time_cap: float, max_pages: int) -> dict:
    """FilterLogEvents over the whole group with raw HTTP: first page, then (optionally) every page."""
    hdrs = headers_for("FilterLogEvents")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(time_cap, 60))
    res: dict = {"pattern": pattern or "", "expected": expected}
    req = {"logGroupName": GROUP, "limit": FILTER_LIMIT}
    if pattern:
        req["filterPattern"] = pattern
    pages = events = mismatches = 0
    ids: set[str] = set()
    dup_ids = 0
    unsorted = 0
    last_ts = -1
    tokens_seen: set[str] = set()
    server_s = 0.0
    t0 = time.perf_counter()
    note = None
    while True:
        body = json.dumps(req).encode()
        t = time.perf_counter()
        try:
            conn.request("POST", "/", body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            res["error"] = f"{type(e).__name__}: {e}"
            break
        dt = time.perf_counter() - t
        server_s += dt
        if r.status != 200:
            res["error"] = f"HTTP {r.status}: {data[:300].decode(errors='replace')}"
            break
        out = json.loads(data)
        evs = out.get("events", [])
        pages += 1
        events += len(evs)
        for e in evs:
            if check is not None and not check(e.get("message", "")):
                mismatches += 1
            eid = e.get("eventId")
            if eid in ids:
                dup_ids += 1
            ids.add(eid)
            ts = e.get("timestamp", 0)
            if ts < last_ts:
                unsorted += 1
            last_ts = ts
        if pages == 1:
            res["first_page_s"] = dt
            res["first_page_events"] = len(evs)
            res["first_page_mismatching"] = mismatches
            res["first_page_out_of_order"] = unsorted
        tok = out.get("nextToken")
        if not all_pages or not tok:
            break
        if tok in tokens_seen:
            note = "nextToken repeated (pagination loops)"
            break
        tokens_seen.add(tok)
        if time.perf_counter() - t0 > time_cap:
            note = f"stopped after {time_cap:.0f} s"
            break
        if pages >= max_pages:
            note = f"stopped after {max_pages} pages"
            break
        req["nextToken"] = tok
    conn.close()
    res.update({
        "all_pages": all_pages,
        "pages": pages,
        "events": events,
        "seconds": time.perf_counter() - t0,
        "server_seconds": server_s,
        "mismatching_events": mismatches,
        "duplicate_event_ids": dup_ids,
        "out_of_order": unsorted,
    })
    if note:
        res["note"] = note
    res["wrong"] = correctness(res)
    res["wrong_first_page"] = first_page_correctness(res)
    return res


def first_page_correctness(res: dict) -> str | None:
    if "error" in res or "first_page_events" not in res:
        return None
    probs = []
    want = min(res["expected"], FILTER_LIMIT)
    got = res["first_page_events"]
    if got > want:
        probs.append(f"{got} returned, at most {want} expected")
    elif got == 0 and want > 0 and not res["all_pages"]:
        probs.append(f"first page empty, {res['expected']} expected in all")
    if res.get("first_page_mismatching"):
        probs.append(f"{res['first_page_mismatching']} events do not match")
    if res.get("first_page_out_of_order"):
        probs.append(f"{res['first_page_out_of_order']} out of timestamp order")
    return "; ".join(probs) or None


def correctness(res: dict) -> str | None:
    if "error" in res:
        return None
    if not res["all_pages"]:
        return first_page_correctness(res)
    probs = []
    if res["events"] != res["expected"]:
        probs.append(f"{res['events']} returned, {res['expected']} expected")
    if res["mismatching_events"]:
        probs.append(f"{res['mismatching_events']} events do not match")
    if res["duplicate_event_ids"]:
        probs.append(f"{res['duplicate_event_ids']} duplicate eventIds")
    if res["out_of_order"]:
        probs.append(f"{res['out_of_order']} out of timestamp order")
    if res.get("note"):
        probs.append(res["note"])
    return "; ".join(probs) or None


def run_paginator(port: int, pattern: str, expected: int, time_cap: float) -> dict:
    client = boto_client(port, read_timeout=max(time_cap, 60))
    pg = client.get_paginator("filter_log_events")
    t0 = time.perf_counter()
    pages = events = 0
    res: dict = {"pattern": pattern, "expected": expected, "all_pages": True}
    try:
        for page in pg.paginate(logGroupName=GROUP, filterPattern=pattern,
                                PaginationConfig={"PageSize": FILTER_LIMIT}):
            pages += 1
            events += len(page.get("events", []))
            if time.perf_counter() - t0 > time_cap:
                res["note"] = f"stopped after {time_cap:.0f} s"
                break
    except Exception as e:  # botocore raises many kinds
        res["error"] = f"{type(e).__name__}: {e}"
    res.update({"pages": pages, "events": events, "seconds": time.perf_counter() - t0,
                "mismatching_events": 0, "duplicate_event_ids": 0, "out_of_order": 0})
    res["wrong"] = correctness(res)
    return res


def bench_peer(name: str, server: Server, wl: Workload, args: argparse.Namespace) -> dict:
    out: dict = {"name": name}
    server.start()
    try:
        out["rss_idle_bytes"] = server.rss_bytes()
        c = boto_client(server.port, read_timeout=60)
        t = time.perf_counter()
        c.create_log_group(logGroupName=GROUP)
        for s in wl.streams:
            c.create_log_stream(logGroupName=GROUP, logStreamName=s)
        out["setup_seconds"] = time.perf_counter() - t
        log(f"[{name}] created 1 group, {len(wl.streams)} streams in {out['setup_seconds']:.2f} s; "
            f"ingesting {wl.n_events:,} events in {len(wl.bodies)} batches with {args.clients} clients")

        out["ingest"] = ing = run_ingest(server.port, wl, args.clients)
        log(f"[{name}] ingest: {ing['seconds']:.2f} s, {ing['events_per_s']:,.0f} ev/s, "
            f"{ing['raw_mb_per_s']:.1f} MB/s, {ing['failed_requests']} failed requests")
        for f in ing["failures"]:
            log(f"[{name}]   FAILED {f}")
        out["rss_after_ingest_bytes"] = server.rss_bytes()
        if server.data_dir is not None:
            out["data_dir_after_ingest"] = dir_size(server.data_dir)

        cap = args.filter_timeout
        maxp = wl.n_events + 100
        e = wl.expected
        queries = {
            "a_needle": (NEEDLE, e["needle"], check_needle(NEEDLE), True),
            "b_unique": (UNIQUE, e["unique"], check_needle(UNIQUE), True),
            "c_json": (JSON_PATTERN, e["json"], check_json, True),
            "d_none_first": (None, e["all"], None, False),
            "d_none_all": (None, e["all"], None, True),
        }
        out["filter"] = {}
        for key, (pat, exp, chk, allp) in queries.items():
            r = run_filter(server.port, pat, exp, chk, allp, cap, maxp)
            out["filter"][key] = r
            log(f"[{name}] filter {key} {pat or '(none)'!r}: " + fmt_filter_log(r))
        r = run_paginator(server.port, NEEDLE, e["needle"], cap)
        out["filter"]["a_needle_boto3"] = r
        log(f"[{name}] filter a_needle via boto3 paginator: " + fmt_filter_log(r))

        out["rss_end_bytes"] = server.rss_bytes()
        if server.data_dir is not None:
            out["data_dir_end"] = dir_size(server.data_dir)
    finally:
        server.stop()
    if server.data_dir is not None:
        out["data_dir_after_shutdown"] = dir_size(server.data_dir)
        out["data_dir_by_kind"] = dir_breakdown(server.data_dir)
    return out


def fmt_filter_log(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    s = f"{plural(r['pages'], 'page')}, {r['events']} events (expected {r['expected']}) in {r['seconds']:.3f} s"
    if "first_page_s" in r:
        s += f", first page {r['first_page_s'] * 1000:.1f} ms"
    if r.get("wrong"):
        s += f"  WRONG: {r['wrong']}"
    return s


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def fnum(v: float | None, unit: str = "", digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}{unit}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def fsec(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:,.1f} ms" if v < 1 else f"{v:,.2f} s"


def rows_for(p: dict | None, wl: Workload) -> dict[str, tuple[str, float | None]]:
    """metric -> (cell text, numeric value for the ratio)."""
    R: dict[str, tuple[str, float | None]] = {}
    if p is None:
        return R
    ing = p.get("ingest")
    if ing:
        R["ingest events/s (↑)"] = (fnum(ing["events_per_s"]), ing["events_per_s"])
        R["ingest MB/s, message bytes (↑)"] = (fnum(ing["raw_mb_per_s"], "", 1), ing["raw_mb_per_s"])
        R["ingest wall time (↓)"] = (fsec(ing["seconds"]), ing["seconds"])
        R["PutLogEvents p50 (↓)"] = (fnum(ing["put_p50_ms"], " ms", 1), ing["put_p50_ms"])
        R["PutLogEvents p99 (↓)"] = (fnum(ing["put_p99_ms"], " ms", 1), ing["put_p99_ms"])
        fail = f"{ing['failed_requests']} / {ing['requests']}"
        if ing["responses_without_request_id"]:
            fail += f" (wrong: {ing['responses_without_request_id']} responses lack x-amzn-RequestId)"
        if ing.get("responses_without_sequence_token"):
            fail += f" (wrong: {ing['responses_without_sequence_token']} responses lack nextSequenceToken)"
        R["PutLogEvents failed / sent"] = (fail, None)

    def fcell(r: dict | None, field: str) -> tuple[str, float | None]:
        if r is None:
            return ("—", None)
        if "error" in r:
            return ("error: " + r["error"][:120], None)
        if field == "first":
            v = r.get("first_page_s")
            txt = f"{fsec(v)} ({r.get('first_page_events', 0):,} ev)"
            wrong = r.get("wrong_first_page")
        else:
            v = r.get("server_seconds", r["seconds"])  # raw HTTP: time spent waiting on the server
            txt = f"{fsec(v)} ({plural(r['pages'], 'page')}, {r['events']:,}/{r['expected']:,} ev)"
            wrong = r.get("wrong")
        if wrong:
            txt += f" — wrong: {wrong}"
        return (txt, v)

    f = p.get("filter", {})
    R[f"(a) `{NEEDLE}` ~1 %: first page (↓)"] = fcell(f.get("a_needle"), "first")
    R[f"(a) `{NEEDLE}` ~1 %: all pages (↓)"] = fcell(f.get("a_needle"), "all")
    R[f"(a) `{NEEDLE}` via boto3 paginator (↓)"] = fcell(f.get("a_needle_boto3"), "all")
    R["(b) unique token: all pages (↓)"] = fcell(f.get("b_unique"), "all")
    R["(c) `{ $.status = 503 && $.latency > 1000 }`: first page (↓)"] = fcell(f.get("c_json"), "first")
    R["(c) JSON pattern: all pages (↓)"] = fcell(f.get("c_json"), "all")
    R["(d) no pattern: first page, limit 10,000 (↓)"] = fcell(f.get("d_none_first"), "first")
    R["(d) no pattern: all pages (↓)"] = fcell(f.get("d_none_all"), "all")

    for key, label in (("rss_idle_bytes", "RSS idle, before setup (↓)"),
                       ("rss_after_ingest_bytes", "RSS after ingest (↓)"), ("rss_end_bytes", "RSS at end (↓)")):
        v = p.get(key)
        R[label] = (fnum(v / 1e6, " MB", 1) if v else "—", v / 1e6 if v else None)
    for key, label in (("data_dir_after_ingest", "after ingest"), ("data_dir_end", "at end"),
                       ("data_dir_after_shutdown", "after shutdown")):
        d = p.get(key)
        if d:
            app, alloc = d
            ratio = wl.raw_bytes / app if app else float("inf")
            R[f"data dir {label} (raw {wl.raw_bytes / 1e6:.1f} MB)"] = (
                f"{app / 1e6:.1f} MB ({alloc / 1e6:.1f} MB allocated) = {ratio:.2f}x", None)
    kinds = p.get("data_dir_by_kind")
    if kinds:
        R["data dir after shutdown, by file kind"] = (
            ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in kinds.items()), None)
    return R


def print_table(results: dict, wl: Workload) -> None:
    lk = rows_for(results.get("lookout"), wl)
    mo = rows_for(results.get("moto"), wl)
    keys = list(dict.fromkeys(list(lk) + list(mo)))
    print()
    print(f"### lookout vs moto — {wl.n_events:,} events, {len(wl.streams)} streams, "
          f"{len(wl.bodies)} batches, {wl.raw_bytes / 1e6:.1f} MB raw; "
          f"{results['config']['clients']} clients")
    print()
    print("(↑ higher is better, ↓ lower is better; ratio = lookout / moto)")
    print()
    print("| metric | lookout | moto | ratio |")
    print("|---|---|---|---|")
    for k in keys:
        a_txt, a_v = lk.get(k, ("—", None))
        b_txt, b_v = mo.get(k, ("—", None))
        ratio = f"{a_v / b_v:.3g}" if a_v is not None and b_v else ""
        print(f"| {k} | {a_txt} | {b_txt} | {ratio} |")
    print()
    e = wl.expected
    print(f"Expected: `{NEEDLE}` {e['needle']:,} events, unique token {e['unique']}, JSON pattern "
          f"{e['json']:,}, all {e['all']:,}. Workload built in {wl.build_seconds:.1f} s "
          f"(mean message {wl.raw_bytes / wl.n_events:.0f} B, {JSON_FRACTION:.0%} JSON).")
    print(f"Compression reference on the same data: zlib level 1 over each batch's messages "
          f"(stream-grouped, <= 1 MiB) = {wl.raw_bytes / wl.zlib1_bytes:.2f}x.")


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, help="events to ingest (default 200,000; 20,000 with --quick)")
    ap.add_argument("--streams", type=int, default=100, help="log streams, Zipf popularity (default 100)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    ap.add_argument("--quick", action="store_true", help="20,000 events; finishes in seconds")
    ap.add_argument("--skip-moto", action="store_true", help="do not run moto_server")
    ap.add_argument("--skip-lookout", action="store_true", help="do not run lookout (develop against moto)")
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    ap.add_argument("--lookout-bin", default=os.environ.get("LOOKOUT_BIN"),
                    help="lookout binary (env LOOKOUT_BIN; default target/release/lookout)")
    ap.add_argument("--moto-bin", default=os.environ.get("MOTO_SERVER"),
                    help="moto_server executable (default: beside this python, else PATH)")
    ap.add_argument("--loghub", type=Path, default=default_loghub_dir(),
                    help="directory of the Loghub *_2k.log samples (env LOGHUB_DIR)")
    ap.add_argument("--filter-timeout", type=float, default=None,
                    help="stop paginating one query after this many seconds (default 300; 60 quick)")
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--keep-data", action="store_true", help="keep lookout's data dir and server logs")
    args = ap.parse_args()
    if args.events is None:
        args.events = 20_000 if args.quick else 200_000
    if args.filter_timeout is None:
        args.filter_timeout = 60.0 if args.quick else 300.0
    if args.events < 200 or args.streams < 1 or args.clients < 1:
        ap.error("need --events >= 200, --streams >= 1, --clients >= 1")

    peers = []
    if not args.skip_lookout:
        lb = Path(args.lookout_bin) if args.lookout_bin else REPO / "target" / "release" / "lookout"
        if not lb.is_file():
            log(f"lookout binary not found: {lb} (build it, set --lookout-bin / LOOKOUT_BIN, or --skip-lookout)")
            return 2
        peers.append(("lookout", lb))
    if not args.skip_moto:
        mb = args.moto_bin
        if not mb:
            beside = Path(sys.executable).parent / "moto_server"
            mb = str(beside) if beside.is_file() else shutil.which("moto_server")
        if not mb:
            log("moto_server not found (run scripts/setup-python.sh, set --moto-bin, or --skip-moto)")
            return 2
        peers.append(("moto", mb))
    if not peers:
        ap.error("nothing to run (--skip-moto and --skip-lookout)")

    log(f"building workload: {args.events:,} events over {args.streams} streams from {args.loghub}")
    wl = Workload(args)
    d = wl.describe()
    log(f"  {d['batches']} batches (max {d['max_batch_events']} events / {d['max_batch_bytes']:,} B), "
        f"{d['raw_message_bytes'] / 1e6:.1f} MB raw, {d['request_body_bytes'] / 1e6:.1f} MB of bodies, "
        f"built in {d['build_seconds']:.1f} s; expected {d['expected']}")

    results: dict = {"config": {"events": args.events, "streams": args.streams, "clients": args.clients,
                                "quick": args.quick, "seed": args.seed, "cpus": os.cpu_count(),
                                "python": sys.version.split()[0]},
                     "workload": d}
    work = Path(tempfile.mkdtemp(prefix="lookout-bench-"))
    status = 0
    try:
        for name, binary in peers:
            port = free_port()
            if name == "lookout":
                data_dir = work / "lookout-data"
                data_dir.mkdir()
                srv = Server(name, [str(binary), "serve", "--listen", f"127.0.0.1:{port}",
                                    "--data-dir", str(data_dir), "--no-auth"],
                             port, "/health", True, work / f"{name}.log", data_dir)
            else:
                srv = Server(name, [binary, "-H", "127.0.0.1", "-p", str(port)], port, "/moto-api/",
                             False, work / f"{name}.log")
            try:
                results[name] = bench_peer(name, srv, wl, args)
            except RuntimeError as e:
                log(f"[{name}] FAILED TO START: {e}")
                results[name] = {"name": name, "error": str(e).splitlines()[0]}
                status = 1
                continue
            except Exception as e:
                log(f"[{name}] FAILED: {type(e).__name__}: {e}")
                results[name] = {"name": name, "error": f"{type(e).__name__}: {e}"}
                status = 1
                continue
            ing = results[name]["ingest"]
            if ing["failed_requests"]:
                status = 1
            for key, r in results[name]["filter"].items():
                if "error" in r:
                    log(f"[{name}] request failure in filter {key}: {r['error']}")
                    status = 1
    finally:
        if args.keep_data:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print_table(results, wl)
    for name, _ in peers:
        p = results.get(name, {})
        if "error" in p:
            print(f"\n**{name} failed**: {p['error']}")
        elif p.get("ingest", {}).get("failures"):
            print(f"\n**{name}: {p['ingest']['failed_requests']} PutLogEvents failures**, first ones:")
            for f in p["ingest"]["failures"]:
                print(f"- {f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
        log(f"wrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
