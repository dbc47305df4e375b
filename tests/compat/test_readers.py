"""The two reader patterns real tools use.

(a) Airflow's AwsLogsHook / ECS log fetcher: GetLogEvents(startFromHead=True) following
    nextForwardToken until it stops changing, then polling again with the same token while the task
    still writes.
(b) A collector paging FilterLogEvents over successive [startTime, endTime] windows (limit=1000)
    with a checkpoint = (last timestamp, eventIds seen at that timestamp), surviving a kill -9 of
    lookout in the middle.
"""

import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from lookout_harness import filter_all, make_group, now_ms, put_events


def airflow_get_log_events(logs, group, stream, next_token):
    """One pass of AwsLogsHook.get_log_events: yield events until the forward token stops changing.
    Returns (events, token) where token is where the next pass resumes."""
    out = []
    for _ in range(10_000):
        args = dict(logGroupName=group, logStreamName=stream, startTime=0, startFromHead=True)
        if next_token is not None:
            args["nextToken"] = next_token
        r = logs.get_log_events(**args)
        out.extend(r["events"])
        if next_token != r["nextForwardToken"]:
            next_token = r["nextForwardToken"]
        else:
            return out, next_token
    raise AssertionError("token never stopped changing")


def test_airflow_style_reader_follows_a_writer(server, group):
    logs = server.logs()
    writer_logs = server.logs()
    logs.create_log_stream(logGroupName=group, logStreamName="task/1")
    n_batches, per_batch = 40, 25
    written = []
    done = threading.Event()
    errors = []

    def writer():
        try:
            t = now_ms() - 120_000
            for b in range(n_batches):
                evs = [(t + b * per_batch + i // 3, f"line {b:03d}-{i:02d}") for i in range(per_batch)]
                put_events(writer_logs, group, "task/1", evs)
                written.extend(evs)
                time.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    # the reader's first call happens on the empty stream, before the writer starts
    seen, token = airflow_get_log_events(logs, group, "task/1", None)
    assert seen == [] and token
    th = threading.Thread(target=writer)
    th.start()
    passes = 0
    while not done.is_set():
        evs, token = airflow_get_log_events(logs, group, "task/1", token)
        seen.extend(evs)
        passes += 1
        time.sleep(0.01)
    th.join()
    assert errors == []
    # the writer finished: one last pass catches up
    evs, token = airflow_get_log_events(logs, group, "task/1", token)
    seen.extend(evs)
    got = [(e["timestamp"], e["message"]) for e in seen]
    assert len(got) == len(written) == n_batches * per_batch, "events missed or duplicated"
    assert got == written
    # and a reader starting from scratch sees the same
    fresh, _ = airflow_get_log_events(logs, group, "task/1", None)
    assert [(e["timestamp"], e["message"]) for e in fresh] == written
    assert passes >= 1


class Collector:
    """Checkpointed FilterLogEvents collector: the checkpoint is (ts, ids at ts); each window is
    [checkpoint_ts, window_end] (both inclusive), paged with limit=1000."""

    def __init__(self, server, group):
        self.server = server
        self.group = group
        self.checkpoint_ts = None
        self.ids_at_checkpoint = set()
        self.collected = []  # events in the order they were accepted
        self.pages = 0

    def _client(self):
        return self.server.logs()

    def run_window(self, start, end, crash_after_pages=None, on_crash=None):
        """Collect [max(start, checkpoint), end]. If crash_after_pages is set, call on_crash() after
        that many pages of this window and restart the window from the checkpoint."""
        logs = self._client()
        pages_here = 0
        while True:
            lo = start if self.checkpoint_ts is None else max(start, self.checkpoint_ts)
            token = None
            restarted = False
            while True:
                args = dict(logGroupName=self.group, startTime=lo, endTime=end, limit=1000)
                if token:
                    args["nextToken"] = token
                try:
                    r = logs.filter_log_events(**args)
                except (ClientError, BotoCoreError):
                    if on_crash is None:
                        raise
                    time.sleep(0.2)
                    logs = self._client()
                    restarted = True
                    break
                self.pages += 1
                pages_here += 1
                assert len(r["events"]) <= 1000
                self._accept(r["events"])
                token = r.get("nextToken")
                if crash_after_pages is not None and pages_here == crash_after_pages and on_crash:
                    on_crash()
                    crash_after_pages = None
                    logs = self._client()
                    restarted = True
                    break  # resume from the checkpoint, not from the (pre-crash) token
                if not token:
                    break
            if not restarted:
                return

    def _accept(self, events):
        for e in events:
            ts, eid = e["timestamp"], e["eventId"]
            if self.checkpoint_ts is not None and ts < self.checkpoint_ts:
                raise AssertionError(f"event older than the checkpoint came back: {e}")
            if ts == self.checkpoint_ts and eid in self.ids_at_checkpoint:
                continue  # already collected
            self.collected.append(e)
            if ts != self.checkpoint_ts:
                self.checkpoint_ts = ts
                self.ids_at_checkpoint = set()
            self.ids_at_checkpoint.add(eid)


def test_checkpointed_filter_collector_survives_kill9(new_server):
    srv = new_server()
    logs = srv.logs()
    group = make_group(logs, streams=("s0", "s1", "s2"))
    base = now_ms() - 3_600_000

    def write_range(lo, hi, offset=0):
        # event i has timestamp base + offset + i // 7 (ties of 7 events, spread over the 3 streams)
        per_stream = {0: [], 1: [], 2: []}
        for i in range(lo, hi):
            per_stream[i % 3].append((base + offset + i // 7, f"ev-{i:06d}"))
        for s, evs in per_stream.items():
            for k in range(0, len(evs), 2000):
                put_events(logs, group, f"s{s}", evs[k:k + 2000])

    write_range(0, 6000)
    col = Collector(srv, group)
    crashed = []

    def crash():
        srv.kill9()
        srv.restart()
        crashed.append(True)

    window = 300  # ms of event time: ~2100 events, 3 pages of 1000
    end_phase1 = base + 6000 // 7
    w = base
    k = 0
    while w <= end_phase1:
        col.run_window(w, w + window, crash_after_pages=2 if k == 1 else None, on_crash=crash)
        w += window + 1
        k += 1
    assert crashed, "the collector never crashed lookout"
    # more events after the restart, later than every window collected so far
    logs = srv.logs()
    offset = w - base
    write_range(6000, 9000, offset)
    end_phase2 = base + offset + 9000 // 7
    while w <= end_phase2 + window:
        col.run_window(w, w + window)
        w += window + 1
    msgs = [e["message"] for e in col.collected]
    assert len(msgs) == len(set(msgs)), "an event was collected twice"
    assert sorted(msgs) == [f"ev-{i:06d}" for i in range(9000)], "events were missed"
    ids = [e["eventId"] for e in col.collected]
    assert len(set(ids)) == len(ids)


def test_filter_next_token_survives_restart(new_server):
    srv = new_server()
    logs = srv.logs()
    group = make_group(logs, streams=("a", "b"))
    t = now_ms() - 100_000
    put_events(logs, group, "a", [(t + i, f"a{i:04d}") for i in range(1500)])
    put_events(logs, group, "b", [(t + i, f"b{i:04d}") for i in range(1500)])
    before = filter_all(logs, logGroupName=group)
    r = logs.filter_log_events(logGroupName=group, limit=1000)
    first = r["events"]
    token = r["nextToken"]
    srv.kill9()
    srv.restart()
    logs = srv.logs()
    rest = []
    while token:
        r = logs.filter_log_events(logGroupName=group, limit=1000, nextToken=token)
        rest.extend(r["events"])
        token = r.get("nextToken")
    got = first + rest
    assert [e["eventId"] for e in got] == [e["eventId"] for e in before]
    assert [e["eventId"] for e in filter_all(logs, logGroupName=group)] == [e["eventId"] for e in before]


def test_get_log_events_token_survives_restart(new_server):
    srv = new_server()
    logs = srv.logs()
    group = make_group(logs, streams=("s",))
    t = now_ms() - 100_000
    put_events(logs, group, "s", [(t + i, f"m{i}") for i in range(50)])
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, limit=20)
    tok = r["nextForwardToken"]
    srv.kill9()
    srv.restart()
    logs = srv.logs()
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, limit=100, nextToken=tok)
    assert [e["message"] for e in r["events"]] == [f"m{i}" for i in range(20, 50)]
