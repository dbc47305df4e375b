"""Durability: acknowledged PutLogEvents survive SIGKILL exactly once, unacknowledged batches are
atomic; retention really deletes old data."""

import os
import random
import threading
import time
from collections import Counter

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from lookout_harness import filter_all, get_all_forward, make_group, now_ms, put_events

KILLS = 8
SIZES = [1, 5, 20, 20, 100, 500]  # events per batch, drawn at random
DAY = 86_400_000


class Writer(threading.Thread):
    """Writes batches of random sizes (1-500 events, messages of 10-300 bytes) with unique ids to
    one stream, as fast as the server takes them (with a small pause), recording which batches were
    acknowledged."""

    def __init__(self, srv, group, stream, wid, seed):
        super().__init__(daemon=True)
        self.srv, self.group, self.stream, self.wid = srv, group, stream, wid
        self.rng = random.Random(seed * 10 + wid)
        self.sizes = {}       # batch id -> number of events
        self.acked = []       # batch ids acknowledged with HTTP 200
        self.unacked = []     # batch ids sent without a 200 (error, connection reset, timeout)
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.paused = threading.Event()
        self.unexpected = []
        self.seq = 0

    def run(self):
        logs = self.srv.logs(read_timeout=10, connect_timeout=2)
        while not self.stop.is_set():
            if self.pause.is_set():
                self.paused.set()
                time.sleep(0.01)
                continue
            self.paused.clear()
            bid = f"w{self.wid}-b{self.seq:05d}"
            self.seq += 1
            t = now_ms()
            n = self.rng.choice(SIZES)
            pad = "p" * self.rng.randint(0, 300)
            self.sizes[bid] = n
            evs = [{"timestamp": t, "message": f"{bid}-e{j:03d} {pad}"} for j in range(n)]
            try:
                logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=evs)
                self.acked.append(bid)
            except ClientError as e:
                # a 5xx while shutting down is acceptable, a 4xx is a bug
                self.unacked.append(bid)
                if e.response["ResponseMetadata"].get("HTTPStatusCode", 500) < 500:
                    self.unexpected.append(repr(e))
                time.sleep(0.02)
                logs = self.srv.logs(read_timeout=10, connect_timeout=2)
            except (BotoCoreError, OSError):
                self.unacked.append(bid)
                time.sleep(0.02)
                logs = self.srv.logs(read_timeout=10, connect_timeout=2)
            time.sleep(0.003)


def check(srv, group, writers, label):
    logs = srv.logs()
    events = filter_all(logs, logGroupName=group)
    ids = [e["eventId"] for e in events]
    assert len(set(ids)) == len(ids), f"{label}: duplicate eventIds"
    via_filter = Counter(e["message"].split(" ", 1)[0] for e in events)
    via_get = Counter()
    for w in writers:
        via_get.update(e["message"].split(" ", 1)[0] for e in get_all_forward(logs, group, w.stream, limit=5000))
    assert via_filter == via_get, f"{label}: FilterLogEvents and GetLogEvents disagree"
    for w in writers:
        for bid in w.acked:
            for j in range(w.sizes[bid]):
                n = via_filter[f"{bid}-e{j:03d}"]
                assert n == 1, f"{label}: acknowledged event {bid}-e{j:03d} present {n} times"
        for bid in w.unacked:
            counts = {via_filter[f"{bid}-e{j:03d}"] for j in range(w.sizes[bid])}
            assert counts in ({0}, {1}), f"{label}: unacknowledged batch {bid} partially present: {counts}"
    known = {f"{bid}-e{j:03d}" for w in writers for bid in w.acked + w.unacked for j in range(w.sizes[bid])}
    stray = set(via_filter) - known
    assert not stray, f"{label}: events nobody wrote: {sorted(stray)[:5]}"
    return sum(via_filter.values())


# "wal": kills land while events live only in the write-ahead log (the default 60 s flush never
# comes). "flushing": a flush every second or every MiB, so kills also land in the middle of
# writing parts and committing checkpoints, and restarts replay from a checkpoint.
FLUSH_MODES = {"wal": [], "flushing": ["--flush-interval-secs", "1", "--flush-mib", "1"]}


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(FLUSH_MODES))
def test_acknowledged_writes_survive_sigkill(new_server, mode):
    seed = int(os.environ.get("LOOKOUT_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    srv = new_server(extra_args=FLUSH_MODES[mode])
    logs = srv.logs()
    group = make_group(logs, streams=("w0", "w1"))
    writers = [Writer(srv, group, f"w{i}", i, seed) for i in range(2)]
    for w in writers:
        w.start()
    total = 0
    deadline = time.monotonic() + 90
    try:
        for k in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            srv.kill9()
            for w in writers:
                w.pause.set()
            for w in writers:
                assert w.paused.wait(30), "writer did not pause"
            srv.restart()
            total = check(srv, group, writers, f"after kill {k + 1} (seed {seed})")
            for w in writers:
                w.pause.clear()
            assert time.monotonic() < deadline, "crash test is taking too long"
    finally:
        for w in writers:
            w.stop.set()
            w.pause.clear()
        for w in writers:
            w.join(30)
    for w in writers:
        assert not w.unexpected, w.unexpected[:3]
    acked = sum(len(w.acked) for w in writers)
    assert acked >= KILLS, f"too few batches acknowledged ({acked}): the test did not exercise writes"
    # a final, clean restart: still all there
    srv.stop()
    srv.restart()
    final = check(srv, group, writers, "after a clean restart")
    unacked = sum(len(w.unacked) for w in writers)
    print(f"crash test (seed {seed}): {acked} batches acknowledged, {unacked} not, {final} events stored")
    assert final >= sum(w.sizes[b] for w in writers for b in w.acked)
    assert total <= final


@pytest.mark.slow
def test_retention_deletes_old_data(new_server):
    srv = new_server()
    logs = srv.logs()
    group = make_group(logs, streams=("s",))
    t = now_ms()
    old = [(t - 9 * DAY + i, f"old-{i}") for i in range(20)]
    new = [(t - 1000 + i, f"new-{i}") for i in range(5)]
    put_events(logs, group, "s", old)
    put_events(logs, group, "s", new)
    assert len(filter_all(logs, logGroupName=group)) == 25
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    deadline = time.monotonic() + 30
    while True:
        via_filter = [e["message"] for e in filter_all(logs, logGroupName=group)]
        via_get = [e["message"] for e in get_all_forward(logs, group, "s")]
        if via_filter == [m for _, m in new] and via_get == [m for _, m in new]:
            break
        assert time.monotonic() < deadline, (
            f"9-day-old events still returned 30 s after a 7-day retention: filter={via_filter[:3]}..., "
            f"get={via_get[:3]}...")
        time.sleep(0.5)
    # still deleted after a restart (not merely hidden in memory)
    srv.stop()
    srv.restart()
    logs = srv.logs()
    assert [e["message"] for e in filter_all(logs, logGroupName=group)] == [m for _, m in new]
    assert [e["message"] for e in filter_all(logs, logGroupName=group, startTime=0,
                                             endTime=t - 8 * DAY)] == []


@pytest.mark.parametrize("how", ["kill9", "stop"])
def test_state_survives_restart(new_server, how):
    srv = new_server()
    logs = srv.logs()
    group = make_group(logs, tags={"team": "obs"}, logGroupClass="INFREQUENT_ACCESS")
    other = make_group(logs)
    logs.put_retention_policy(logGroupName=group, retentionInDays=30)
    for s in ("a", "b"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms() - 5000
    put_events(logs, group, "a", [(t + i, f"a{i}") for i in range(100)])
    put_events(logs, group, "b", [(t + i, f"b{i}") for i in range(3)])
    logs.delete_log_group(logGroupName=other)
    groups_before = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    streams_before = logs.describe_log_streams(logGroupName=group)["logStreams"]
    events_before = filter_all(logs, logGroupName=group)
    srv.kill9() if how == "kill9" else srv.stop()
    srv.restart()
    logs = srv.logs()
    groups_after = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    for g in groups_before + groups_after:
        g.pop("storedBytes", None)  # may be recomputed
    assert groups_after == groups_before
    assert groups_after[0]["retentionInDays"] == 30 and groups_after[0]["logGroupClass"] == "INFREQUENT_ACCESS"
    streams_after = logs.describe_log_streams(logGroupName=group)["logStreams"]
    for s in streams_before + streams_after:
        s.pop("storedBytes", None)
        s.pop("uploadSequenceToken", None)
    assert streams_after == streams_before
    assert filter_all(logs, logGroupName=group) == events_before
    assert logs.list_tags_for_resource(resourceArn=srv.group_arn(group))["tags"] == {"team": "obs"}
    assert logs.describe_log_groups(logGroupNamePrefix=other)["logGroups"] == []
    # writes keep working and the group can still be found by identifier
    put_events(logs, group, "b", [(now_ms(), "after restart")])
    assert get_all_forward(logs, group, "b")[-1]["message"] == "after restart"
