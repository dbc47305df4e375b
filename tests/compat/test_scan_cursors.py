"""FilterLogEvents paged through parts (issue #3): each page continues from the store's cursor of
the previous page (the blocks it decoded and their matches beyond it) instead of decoding them
again. Checked through boto3 against the events written: every event once, in order, with the
cursors actually used (/metrics) — and still exact when writes land between pages and when the
server restarts mid-way (a token from before the restart still works)."""

from __future__ import annotations

import random
import re

import pytest
import requests

from lookout_harness import make_server, now_ms, peer

pytestmark = pytest.mark.skipif(peer() == "moto", reason="lookout's store")

STREAMS = 24
EVENTS_PER_STREAM = 1500


def resumed(server) -> float:
    text = requests.get(server.endpoint + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("lookout_store_scan_cursors_resumed_total "):
            return float(line.split()[1])
    raise AssertionError("no lookout_store_scan_cursors_resumed_total in /metrics")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A server whose group lives in several parts: 24 streams x 1,500 events over 3 hours,
    written stream by stream (so every part holds blocks of overlapping time ranges), flushed
    each MiB and by a clean restart."""
    srv = make_server(tmp_path_factory.mktemp("cursors"), extra_args=["--flush-mib", "1"])
    srv.start()
    logs = srv.logs()
    group = "/compat/cursors"
    logs.create_log_group(logGroupName=group)
    rnd = random.Random(3)
    t0 = now_ms() - 4 * 3600_000
    written = []
    for s in range(STREAMS):
        name = f"app/{s:02d}"
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        ts = t0 + rnd.randrange(60_000)
        events = []
        for i in range(EVENTS_PER_STREAM):
            ts += rnd.randrange(1, 14_000)
            level = "ERROR" if rnd.random() < 0.03 else "INFO"
            events.append((ts, f"{level} stream {s} event {i} " + "x" * rnd.randrange(20, 120)))
        for k in range(0, len(events), 500):
            chunk = events[k:k + 500]
            logs.put_log_events(logGroupName=group, logStreamName=name,
                                logEvents=[{"timestamp": t, "message": m} for t, m in chunk])
        written += [(t, name, m) for t, m in events]
    srv.stop()   # a clean stop flushes the rest
    srv.start()
    parts = list((srv.data_dir / "logs" / "parts").rglob("*.part"))
    assert len(parts) >= 3, parts
    yield srv, group, written
    srv.stop()


def page_through(logs, **kw):
    pages, token, out = 0, None, []
    while True:
        args = dict(kw)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        out += [(e["timestamp"], e["logStreamName"], e["message"]) for e in r["events"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            return out, pages


@pytest.mark.parametrize("pattern, limit", [("ERROR", 40), ("", 500), ("%stream 1[0-9] event%", 300)])
def test_pages_continue_from_cursors_and_return_every_event_once(stored, pattern, limit):
    srv, group, written = stored
    logs = srv.logs()
    before = resumed(srv)
    got, pages = page_through(logs, logGroupName=group, filterPattern=pattern, limit=limit)
    if pattern == "ERROR":
        want = [e for e in written if e[2].startswith("ERROR ")]
    elif pattern == "":
        want = written
    else:
        want = [e for e in written if re.search(r"stream 1[0-9] event", e[2])]
    # Timestamps order the result; events of one stream keep their order at equal timestamps.
    assert sorted(got) == sorted(want)
    assert [e[0] for e in got] == sorted(e[0] for e in got)   # in timestamp order
    assert len(set(got)) == len(got)
    assert pages > 5
    # Every page after the first continued from its predecessor's cursor (no merge ran: few parts).
    assert resumed(srv) - before == pages - 1


def test_writes_between_pages_and_a_restart_mid_way(stored):
    srv, group, written = stored
    logs = srv.logs()
    errors = sorted(e for e in written if e[2].startswith("ERROR "))
    end = max(e[0] for e in written)
    got, token, page, ahead = [], None, 0, []
    while True:
        args = dict(logGroupName=group, filterPattern="ERROR", limit=60)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        got += [(e["timestamp"], e["logStreamName"], e["message"]) for e in r["events"]]
        token = r.get("nextToken")
        if not token:
            break
        page += 1
        position = got[-1][0] if got else 0
        # Behind the scan's position (never shown) and after all the data (shown when reached).
        behind = {"timestamp": position - 5000, "message": f"ERROR behind {page}"}
        later = (end + page, "app/00", f"ERROR later {page}")
        logs.put_log_events(logGroupName=group, logStreamName="app/00", logEvents=[behind])
        logs.put_log_events(logGroupName=group, logStreamName="app/00",
                            logEvents=[{"timestamp": later[0], "message": later[2]}])
        ahead.append(later)
        if page == 4:
            srv.restart()   # the cursor is gone; the token's key alone continues the scan
            logs = srv.logs()
    assert page > 10
    assert not [e for e in got if e[2].startswith("ERROR behind")]
    assert sorted(e for e in got if not e[2].startswith("ERROR later")) == errors
    # Written while the scan ran, after everything: all shown, at the end, once.
    assert [e for e in got if e[2].startswith("ERROR later")] == ahead
    assert [e[0] for e in got] == sorted(e[0] for e in got)
