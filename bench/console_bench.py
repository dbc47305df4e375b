#!/usr/bin/env python3
"""Console page-load benchmark (issue #6: "pages load in < 100 ms on a group with a million events").

Loads N events (default 1,000,000; --quick 100,000) into one log group of a fresh `lookout serve`
through PutLogEvents, then times each console page the way a browser fetches it (one keep-alive
connection, the whole HTML body read) and prints median / p95 / max per page.

Beside it, the peer: no emulator has a console, so what a console built on moto would wait for is
the API call behind the same page (GetLogEvents for a stream page, FilterLogEvents for a search),
timed against moto_server holding the same events (at most --peer-events, default 200,000:
moto ingests slowly). Figures only; nothing here asserts a time.

    .venv/bin/python bench/console_bench.py [--quick] [--events N] [--no-peer]
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port, log  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GROUP = "/bench/console"
STREAMS = 20
BATCH = 5000
LEVELS = ["INFO"] * 80 + ["DEBUG"] * 14 + ["WARN"] * 5 + ["ERROR"]
PATHS = ["/api/orders", "/api/users", "/health", "/api/cart", "/static/app.js"]


def message(rng: random.Random, i: int) -> str:
    level = rng.choice(LEVELS)
    if i % 5 == 0:
        return json.dumps({"level": level.lower(), "msg": "request done", "path": rng.choice(PATHS),
                           "status": rng.choice([200, 200, 200, 404, 500]), "ms": rng.randint(1, 900), "i": i})
    return (f"{level} [worker-{rng.randint(1, 16)}] {rng.choice(PATHS)} handled in {rng.randint(1, 900)} ms "
            f"user={rng.randint(1000, 9999)} req={i:08x}")


class Api:
    """PutLogEvents / GetLogEvents / FilterLogEvents over one keep-alive connection (unsigned:
    lookout and moto both accept it)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, op: str, body: dict) -> dict:
        self.conn.request("POST", "/", json.dumps(body), {
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Logs_20140328.{op}",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261123/us-east-1/logs/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{op}: HTTP {resp.status} {data[:300]!r}")
        return json.loads(data or b"{}")


def load(api: Api, n: int, t0: int) -> tuple[float, int, int]:
    """N events over STREAMS streams, 1 ms apart; one needle in the middle. Returns
    (seconds, the needle's timestamp, a timestamp in the middle)."""
    rng = random.Random(7)
    api.call("CreateLogGroup", {"logGroupName": GROUP})
    for s in range(STREAMS):
        api.call("CreateLogStream", {"logGroupName": GROUP, "logStreamName": f"worker-{s:02d}"})
    per_stream = n // STREAMS
    needle_ts = t0 + per_stream // 2
    started = time.perf_counter()
    for s in range(STREAMS):
        for off in range(0, per_stream, BATCH):
            events = []
            for k in range(off, min(off + BATCH, per_stream)):
                i = s * per_stream + k
                m = message(rng, i)
                if s == 3 and t0 + k == needle_ts:
                    m = "needle-7f3a9c the one rare line"
                events.append({"timestamp": t0 + k, "message": m})
            api.call("PutLogEvents", {"logGroupName": GROUP, "logStreamName": f"worker-{s:02d}", "logEvents": events})
    return time.perf_counter() - started, needle_ts, t0 + per_stream // 3


def timed(fn, runs: int) -> dict:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median": statistics.median(times), "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
            "max": times[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 events, fewer runs")
    ap.add_argument("--events", type=int)
    ap.add_argument("--peer-events", type=int, default=200_000)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--lookout-bin", default=str(REPO / "target" / "release" / "lookout"))
    args = ap.parse_args()
    n = args.events or (100_000 if args.quick else 1_000_000)
    runs = args.runs or (7 if args.quick else 21)
    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    t0 = int(time.time() * 1000) - 3_600_000
    rows: list[tuple[str, dict, str]] = []
    try:
        port = free_port()
        srv = Server("lookout", [args.lookout_bin, "serve", "--listen", f"127.0.0.1:{port}", "--no-tls",
                                 "--runtime", "process", "--no-auth", "--data-dir", str(work / "data")],
                     port, "/ready", True, work / "lookout.log", work / "data")
        srv.start()
        try:
            api = Api(port)
            secs, needle_ts, mid_ts = load(api, n, t0)
            log(f"[lookout] loaded {n:,} events in {secs:.1f} s ({n / secs:,.0f} events/s)")
            time.sleep(6)  # one overview sample of the intake
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            q = urllib.parse.quote

            def get(path: str) -> bytes:
                conn.request("GET", path, headers={"Accept": "text/html"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: HTTP {resp.status} {body[:300]!r}")
                return body

            stream = f"/console/logs/stream?group={q(GROUP, safe='')}&stream=worker-03"
            found = re.search(r'id="older"[^>]*href="([^"]+)"', get(stream).decode())
            older_href = html.unescape(found.group(1)) if found else None
            pages = [
                ("overview /", "/"),
                ("log groups", "/console/logs"),
                ("group: 20 streams", f"/console/logs/group?group={q(GROUP, safe='')}"),
                ("stream: newest page", stream),
                ("stream: permalink mid-stream", f"{stream}&at={mid_ts}"),
                ("search: ERROR (1%)", f"/console/logs/search?group={q(GROUP, safe='')}&pattern=ERROR"),
                ("search: { $.status = 500 }", f"/console/logs/search?group={q(GROUP, safe='')}&pattern="
                 + q('{ $.status = 500 }', safe='')),
                ("search: rare term, 1 in N", f"/console/logs/search?group={q(GROUP, safe='')}&pattern=needle"),
                ("search: ERROR, last 15 min", f"/console/logs/search?group={q(GROUP, safe='')}&pattern=ERROR&start=15m"),
                ("tail poll (last 60 s)", f"/console/api/tail?group={q(GROUP, safe='')}&since={int(time.time() * 1000) - 60000}"),
                ("tasks", "/console/tasks"),
            ]
            if older_href:
                pages.insert(5, ("stream: one page older", older_href))
            for name, path in pages:
                rows.append((name, timed(lambda p=path: get(p), runs), path))
            rss = srv.rss_bytes()
        finally:
            srv.stop()
        peer_rows: dict[str, dict] = {}
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        if not args.no_peer and moto:
            pn = min(n, args.peer_events)
            port = free_port()
            msrv = Server("moto", [moto, "-H", "127.0.0.1", "-p", str(port)], port, "/moto-api/", False,
                          work / "moto.log")
            msrv.start()
            try:
                mapi = Api(port)
                secs, _, mid = load(mapi, pn, t0)
                log(f"[moto] loaded {pn:,} events in {secs:.1f} s")
                peer_runs = max(3, runs // 4)
                peer_rows["stream: newest page"] = timed(lambda: mapi.call("GetLogEvents", {
                    "logGroupName": GROUP, "logStreamName": "worker-03", "limit": 100}), peer_runs)
                peer_rows["stream: permalink mid-stream"] = timed(lambda: mapi.call("GetLogEvents", {
                    "logGroupName": GROUP, "logStreamName": "worker-03", "startTime": mid, "startFromHead": True,
                    "limit": 100}), peer_runs)
                peer_rows["search: ERROR (1%)"] = timed(lambda: mapi.call("FilterLogEvents", {
                    "logGroupName": GROUP, "filterPattern": "ERROR", "limit": 100}), peer_runs)
                peer_rows["search: rare term, 1 in N"] = timed(lambda: mapi.call("FilterLogEvents", {
                    "logGroupName": GROUP, "filterPattern": "needle", "limit": 100}), peer_runs)
                peer_label = f"moto, same API call, {pn:,} events"
            finally:
                msrv.stop()
        else:
            peer_label = "moto (not run)"
        print(f"\n## Console page loads, {n:,} events in one group ({STREAMS} streams), {runs} loads each\n")
        print(f"lookout RSS after the run: {rss / 1e6:.0f} MB\n" if rss else "")
        print(f"| page | median ms | p95 ms | max ms | {peer_label}: median ms |")
        print("|---|---:|---:|---:|---:|")
        for name, r, _ in rows:
            p = peer_rows.get(name)
            print(f"| {name} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
                  f"{'%.1f' % p['median'] if p else ''} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
