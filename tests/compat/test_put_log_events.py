"""PutLogEvents: whole-batch rejections, partial rejections, tokens, concurrency.

lookout's documented choice for rejectedLogEventsInfo: `tooOldLogEventEndIndex` and
`expiredLogEventEndIndex` are EXCLUSIVE end indexes (= the number of leading rejected events),
`tooNewLogEventStartIndex` is the inclusive index of the first event too far in the future.
"""

import threading

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, get_all_forward, now_ms, put_events, unique

LIMIT = 1_048_576
DAY = 86_400_000
HOUR = 3_600_000


@pytest.fixture
def stream(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    return group, "s"


def stored(logs, group, stream="s"):
    return [(e["timestamp"], e["message"]) for e in get_all_forward(logs, group, stream)]


def test_put_basic(logs, stream):
    group, s = stream
    t = now_ms()
    r = put_events(logs, group, s, [(t - 2, "one"), (t - 1, "two"), (t - 1, "three")])
    assert isinstance(r["nextSequenceToken"], str) and r["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in r
    assert stored(logs, group) == [(t - 2, "one"), (t - 1, "two"), (t - 1, "three")]


def test_rejected_info_absent_on_raw_body(server, logs, stream):
    group, s = stream
    r = server.raw("PutLogEvents", {"logGroupName": group, "logStreamName": s,
                                    "logEvents": [{"timestamp": now_ms(), "message": "m"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "rejectedLogEventsInfo" not in body  # not even null: watchtower tests the key
    assert body.get("nextSequenceToken")


def test_sequence_token_ignored(logs, stream):
    group, s = stream
    t = now_ms()
    r1 = put_events(logs, group, s, [(t, "a")], sequenceToken="bogus-token-123")
    r2 = put_events(logs, group, s, [(t, "b")], sequenceToken="bogus-token-123")  # reused / stale
    r3 = put_events(logs, group, s, [(t, "c")], sequenceToken=r1["nextSequenceToken"])
    r4 = put_events(logs, group, s, [(t, "d")])
    for r in (r1, r2, r3, r4):
        assert r["nextSequenceToken"]
    assert [m for _, m in stored(logs, group)] == ["a", "b", "c", "d"]


def test_missing_stream(logs, group):
    with pytest.raises(ClientError) as e:
        put_events(logs, group, "nope", [(now_ms(), "m")])
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_missing_group(logs):
    with pytest.raises(ClientError) as e:
        put_events(logs, unique("/compat/missing"), "nope", [(now_ms(), "m")])
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def _sized_events(t, total, n):
    """n events whose sum(len(utf8) + 26) == total."""
    per = total // n
    sizes = [per - 26] * n
    sizes[-1] += total - per * n
    return [{"timestamp": t, "message": "x" * sz} for sz in sizes]


def test_batch_exactly_at_size_limit_is_accepted(logs, stream):
    group, s = stream
    t = now_ms()
    evs = _sized_events(t, LIMIT, 8)
    assert sum(len(e["message"]) + 26 for e in evs) == LIMIT
    r = logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert "rejectedLogEventsInfo" not in r
    assert len(get_all_forward(logs, group, s)) == 8


def test_batch_over_size_limit(logs, stream):
    group, s = stream
    evs = _sized_events(now_ms(), LIMIT + 1, 8)
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert error_of(e) == ("InvalidParameterException",
                           "Upload too large: 1048577 bytes exceeds limit of 1048576")
    assert stored(logs, group) == []


def test_batch_size_counts_utf8_bytes_and_26_per_event(logs, stream):
    group, s = stream
    t = now_ms()
    # 4000 events of 85 euro signs: 255 bytes (85 chars) each; 4000 * (255 + 26) = 1,124,000 bytes
    evs = [{"timestamp": t, "message": "€" * 85} for _ in range(4000)]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert error_of(e) == ("InvalidParameterException",
                           "Upload too large: 1124000 bytes exceeds limit of 1048576")
    # 10,000 one-byte events: 270,000 bytes counted, accepted
    evs = [{"timestamp": t, "message": "m"} for _ in range(10_000)]
    r = logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert "rejectedLogEventsInfo" not in r


def test_event_of_256_kib_is_accepted(logs, stream):
    group, s = stream
    msg = "y" * (262_144 - 26)
    logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=[{"timestamp": now_ms(), "message": msg}])
    [(_, got)] = stored(logs, group)
    assert got == msg


def test_too_many_events(raw_logs, logs, stream):
    group, s = stream
    t = now_ms()
    evs = [{"timestamp": t, "message": "m"} for _ in range(10_001)]
    with pytest.raises(ClientError) as e:
        raw_logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert error_of(e)[0] == "InvalidParameterException"
    assert stored(logs, group) == []


def test_out_of_order(logs, stream):
    group, s = stream
    t = now_ms()
    with pytest.raises(ClientError) as e:
        put_events(logs, group, s, [(t, "a"), (t - 1, "b")])
    assert error_of(e) == ("InvalidParameterException",
                           "Log events in a single PutLogEvents request must be in chronological order.")
    assert stored(logs, group) == []


def test_span_over_24_hours(logs, stream):
    group, s = stream
    t = now_ms()
    with pytest.raises(ClientError) as e:
        put_events(logs, group, s, [(t - 24 * HOUR - 1000, "a"), (t, "b")])
    assert error_of(e) == ("InvalidParameterException",
                           "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    assert stored(logs, group) == []


def test_span_just_under_24_hours_ok(logs, stream):
    group, s = stream
    t = now_ms()
    r = put_events(logs, group, s, [(t - 24 * HOUR + 60_000, "a"), (t, "b")])
    assert "rejectedLogEventsInfo" not in r
    assert len(stored(logs, group)) == 2


def test_too_old_and_too_new_partial_rejection(logs, stream):
    group, s = stream
    t = now_ms()
    evs = [(t - 15 * DAY, "old0"), (t - 15 * DAY + 1, "old1"), (t - 1000, "ok2"), (t, "ok3"),
           (t + 3 * HOUR, "new4"), (t + 3 * HOUR + 1, "new5")]
    r = put_events(logs, group, s, evs)
    info = r["rejectedLogEventsInfo"]
    assert info.get("tooOldLogEventEndIndex") == 2  # exclusive: events 0 and 1 are too old
    assert info.get("tooNewLogEventStartIndex") == 4  # inclusive
    assert "expiredLogEventEndIndex" not in info
    assert r["nextSequenceToken"]
    assert stored(logs, group) == [(t - 1000, "ok2"), (t, "ok3")]


def test_too_old_only(logs, stream):
    group, s = stream
    t = now_ms()
    r = put_events(logs, group, s, [(t - 20 * DAY, "old"), (t, "ok")])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    assert stored(logs, group) == [(t, "ok")]


def test_too_new_only(logs, stream):
    group, s = stream
    t = now_ms()
    r = put_events(logs, group, s, [(t, "ok"), (t + 5 * HOUR, "new")])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert stored(logs, group) == [(t, "ok")]


def test_all_rejected_is_still_200(logs, stream):
    group, s = stream
    t = now_ms()
    r = put_events(logs, group, s, [(t - 20 * DAY, "old"), (t - 20 * DAY, "old")])
    assert r["rejectedLogEventsInfo"].get("tooOldLogEventEndIndex") == 2
    assert r["nextSequenceToken"]
    assert stored(logs, group) == []


def test_expired_by_retention(logs, stream):
    group, s = stream
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    t = now_ms()
    r = put_events(logs, group, s, [(t - 2 * DAY, "exp0"), (t - 2 * DAY + 5, "exp1"), (t, "ok")])
    info = r["rejectedLogEventsInfo"]
    assert info.get("expiredLogEventEndIndex") == 2
    assert "tooNewLogEventStartIndex" not in info
    assert stored(logs, group) == [(t, "ok")]


def test_parallel_puts_to_one_stream(server, stream):
    group, s = stream
    t = now_ms()
    errors = []

    def worker(w):
        c = server.logs()
        try:
            for b in range(15):
                evs = [{"timestamp": t, "message": f"w{w}-b{b}-e{i}"} for i in range(20)]
                c.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    logs = server.logs()
    msgs = [m for _, m in stored(logs, group)]
    assert sorted(msgs) == sorted(f"w{w}-b{b}-e{i}" for w in range(8) for b in range(15) for i in range(20))
    # within one writer's batch, order is preserved
    for w in range(8):
        for b in range(15):
            mine = [m for m in msgs if m.startswith(f"w{w}-b{b}-")]
            assert mine == [f"w{w}-b{b}-e{i}" for i in range(20)]


def test_unicode_and_newlines_round_trip(logs, stream):
    group, s = stream
    t = now_ms()
    msgs = ["line1\nline2\ttab", "emoji 🚀 and 中文", '{"json": "yes", "n": 1}', "trailing space ", "\x01ctl"]
    put_events(logs, group, s, [(t, m) for m in msgs])
    assert [m for _, m in stored(logs, group)] == msgs
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == msgs


def test_limit_counts_decoded_bytes_not_json_bytes(logs, stream):
    # quotes and control characters double (or x6) in JSON: the request body is far above 1 MiB,
    # but the batch is exactly at the limit once decoded
    group, s = stream
    t = now_ms()
    per = LIMIT // 4 - 26
    evs = [{"timestamp": t, "message": '"' * per}, {"timestamp": t, "message": "\\" * per},
           {"timestamp": t, "message": "\x01" * per}, {"timestamp": t, "message": "\n" * per}]
    assert sum(len(e["message"].encode()) + 26 for e in evs) == LIMIT
    r = logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=evs)
    assert "rejectedLogEventsInfo" not in r
    assert [m for _, m in stored(logs, group)] == [e["message"] for e in evs]
