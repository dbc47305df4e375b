"""FilterLogEvents: stream selection, time bounds, ordering, eventIds, pagination, filter patterns."""

import json

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, filter_all, make_group, now_ms, put_events, unique


@pytest.fixture(scope="module")
def three(logs):
    """Three streams with interleaved timestamps: 'a' (i%3==0), 'b' (1), 'c/1' (2); 60 events."""
    group = make_group(logs, streams=("a", "b", "c/1"))
    t0 = now_ms() - 600_000
    by_stream = {"a": [], "b": [], "c/1": []}
    for i in range(60):
        s = ["a", "b", "c/1"][i % 3]
        by_stream[s].append((t0 + i * 100, f"msg {i:02d} from {s}"))
    # written stream by stream, so ingestion order differs from timestamp order
    for s in ("c/1", "a", "b"):
        put_events(logs, group, s, by_stream[s])
    allev = sorted([(ts, m, s) for s, evs in by_stream.items() for ts, m in evs])
    return group, t0, allev


def triples(events):
    return [(e["timestamp"], e["message"], e["logStreamName"]) for e in events]


def test_all_sorted_across_streams_and_fields(logs, three):
    group, _, allev = three
    r = logs.filter_log_events(logGroupName=group)
    assert triples(r["events"]) == allev
    assert "nextToken" not in r  # last page
    for e in r["events"]:
        assert set(e) >= {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
        assert isinstance(e["eventId"], str) and e["eventId"]
    assert r.get("searchedLogStreams", []) == []


def test_event_ids_unique_and_stable(logs, three):
    group, _, _ = three
    r1 = logs.filter_log_events(logGroupName=group)["events"]
    r2 = logs.filter_log_events(logGroupName=group)["events"]
    ids = [e["eventId"] for e in r1]
    assert len(set(ids)) == len(ids)
    assert ids == [e["eventId"] for e in r2]
    # the same event seen through a narrower query keeps its id
    by_msg = {e["message"]: e["eventId"] for e in r1}
    for e in logs.filter_log_events(logGroupName=group, logStreamNames=["b"], filterPattern="msg")["events"]:
        assert by_msg[e["message"]] == e["eventId"]


def test_event_ids_distinct_on_equal_timestamps(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.create_log_stream(logGroupName=group, logStreamName="t")
    ts = now_ms()
    put_events(logs, group, "s", [(ts, "same")] * 50)
    put_events(logs, group, "t", [(ts, "same")] * 50)
    evs = filter_all(logs, logGroupName=group)
    assert len(evs) == 100
    assert len({e["eventId"] for e in evs}) == 100


def test_log_stream_names(logs, three):
    group, _, allev = three
    r = logs.filter_log_events(logGroupName=group, logStreamNames=["a", "c/1"])
    assert triples(r["events"]) == [x for x in allev if x[2] in ("a", "c/1")]


def test_log_stream_name_prefix(logs, three):
    group, _, allev = three
    r = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="c/")
    assert triples(r["events"]) == [x for x in allev if x[2] == "c/1"]
    r = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="zz")
    assert r["events"] == []


def test_names_and_prefix_together_is_error(logs, three):
    group, _, _ = three
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, logStreamNames=["a"], logStreamNamePrefix="a")
    assert error_of(e)[0] == "InvalidParameterException"


def test_unknown_stream_name_matches_nothing_or_errors(logs, three):
    group, _, _ = three
    try:
        r = logs.filter_log_events(logGroupName=group, logStreamNames=["no-such-stream"])
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
    else:
        assert r["events"] == []


def test_start_and_end_inclusive(logs, three):
    group, t0, allev = three
    r = logs.filter_log_events(logGroupName=group, startTime=t0 + 500, endTime=t0 + 1500)
    assert triples(r["events"]) == [x for x in allev if t0 + 500 <= x[0] <= t0 + 1500]
    assert len(r["events"]) == 11
    r = logs.filter_log_events(logGroupName=group, startTime=t0 + 501, endTime=t0 + 1499)
    assert len(r["events"]) == 9


def test_limit_and_tokens(logs, three):
    group, _, allev = three
    got, token, pages = [], None, 0
    for _ in range(100):
        args = dict(logGroupName=group, limit=7)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        pages += 1
        assert len(r["events"]) <= 7
        got += triples(r["events"])
        token = r.get("nextToken")
        if not token:
            break
    assert got == allev
    assert pages >= 9


def test_paginator_every_event_once(logs, group):
    streams = ["p0", "p1", "p2"]
    for s in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t0 = now_ms() - 3_000_000
    want = []
    for s_i, s in enumerate(streams):
        for b in range(3):
            evs = [(t0 + (b * 1000 + i) * 3 + s_i, f"{s}-{b}-{i}") for i in range(1000)]
            # some equal timestamps too
            evs += [(evs[-1][0], f"{s}-{b}-dup{k}") for k in range(5)]
            put_events(logs, group, s, evs)
            want += evs
    got = filter_all(logs, logGroupName=group, PaginationConfig={"PageSize": 333})
    msgs = [e["message"] for e in got]
    assert len(msgs) == len(want) == 9045
    assert sorted(msgs) == sorted(m for _, m in want)
    assert [e["timestamp"] for e in got] == sorted(e["timestamp"] for e in got)
    ids = [e["eventId"] for e in got]
    assert len(set(ids)) == len(ids)
    # default page (limit 10,000): same result through the paginator
    assert [e["eventId"] for e in filter_all(logs, logGroupName=group)] == ids


def test_identifier_and_missing_group(server, logs, three):
    group, _, allev = three
    for ident in (server.group_arn(group), server.group_arn(group, star=True), group):
        assert triples(logs.filter_log_events(logGroupIdentifier=ident)["events"]) == allev
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=unique("/compat/missing"))
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_pages_stay_under_one_megabyte(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="big")
    t = now_ms() - 60_000
    big = [(t + i, f"{i:02d}" + "q" * 200_000) for i in range(12)]
    for i in range(0, 12, 4):
        put_events(logs, group, "big", big[i:i + 4])
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=group))
    for p in pages:
        assert sum(len(e["message"]) + 26 for e in p["events"]) <= 1_048_576
    assert [(e["timestamp"], e["message"]) for p in pages for e in p["events"]] == big
    assert len(pages) >= 3


# ----- filter patterns -------------------------------------------------------------------------

CORPUS = [
    "ERROR Failed to process request id=17",                                                   # 0
    "WARN disk almost full",                                                                    # 1
    "INFO request completed in 35 ms",                                                          # 2
    "ERROR WARN mixed severity",                                                                # 3
    "UNAUTHORIZED REQUEST from 10.0.0.1",                                                       # 4
    json.dumps({"level": "error", "user": {"id": 42, "name": "alice"}, "latency": 1500,
                "tags": ["a", "b"], "ok": True}),                                               # 5
    json.dumps({"level": "info", "user": {"id": 7, "name": "bob"}, "latency": 20,
                "ok": False, "missing": None}),                                                 # 6
    '127.0.0.1 frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326',     # 7
    '10.1.1.1 alice [10/Oct/2000:13:55:37 -0700] "POST /login HTTP/1.0" 200 512',              # 8
    "errors are not ERRORs",                                                                    # 9
    "bind: address already in use",                                                            # 10
]

ALL = list(range(len(CORPUS)))
JSON_MSGS = [5, 6]

# (pattern, indexes of CORPUS expected to match). Plain terms match whole words (bounded by
# non-alphanumeric characters or the ends of the message), case-sensitively: see the spec.
PATTERNS = [
    ("", ALL),
    ('" "', ALL),
    ("ERROR", [0, 3]),
    ("ERROR WARN", [3]),
    ("?ERROR ?WARN", [0, 1, 3]),
    ("ERROR -WARN", [0]),
    ("request", [0, 2]),
    ('"Failed to process"', [0]),
    ('"to process request"', [0]),
    ("UNAUTHORIZED", [4]),
    ("AUTHORIZED", []),
    ("%AUTHORIZED%", [4]),
    ("%ERROR|WARN%", [0, 1, 3, 9]),
    ("%^ERROR%", [0, 3]),
    ("%bind:%", [10]),
    ("%id=1[0-9]$%", [0]),
    ('{ $.level = "error" }', [5]),
    ("{ $.level = error }", [5]),
    ('{ $.level != "error" }', [6]),
    ("{ $.user.id = 42 }", [5]),
    ("{ $.user.id != 42 }", [6]),
    ("{ $.latency > 1000 }", [5]),
    ("{ $.latency >= 20 && $.latency < 1000 }", [6]),
    ("{ $.latency <= 20 }", [6]),
    ("{ $.latency = 15e2 }", [5]),
    ("{ $.latency = 1500.0 }", [5]),
    ("{ $.user.id > -1 }", [5, 6]),
    ('{ $.user.name = "al*" }', [5]),
    ('{ $.user.name = "*ob" }', [6]),
    ('{ $.tags[0] = "a" }', [5]),
    ('{ $.tags[1] = "a" }', []),
    ("{ $.ok IS TRUE }", [5]),
    ("{ $.ok IS FALSE }", [6]),
    ("{ $.missing IS NULL }", [6]),
    ("{ $.nothere NOT EXISTS }", [5, 6]),
    ('{ ($.level = "error" && $.latency > 1000) || $.user.id = 7 }', [5, 6]),
    ('{ $.user = "alice" }', []),  # a selector on an object never matches
    ("{ $.user.name = %^al% }", [5]),
    ("[ip, user, timestamp, request, status_code = 40*, bytes]", [7]),
    ("[ip, user, ..., status_code = 200, bytes > 500]", [8]),
    ("[ip, user, timestamp, request, status_code, bytes > 1000]", [7]),
    ("[ip = %^10\\.%, ...]", [8]),
    ('[ip, user = "frank", ...]', [7]),
    ("[ip, user, ..., status_code = 404 || status_code = 200, bytes]", [7, 8]),
]


@pytest.fixture(scope="module")
def corpus(logs):
    group = make_group(logs, streams=("one", "two"))
    t0 = now_ms() - 300_000
    evs = [(t0 + i, m) for i, m in enumerate(CORPUS)]
    put_events(logs, group, "one", evs[0::2])
    put_events(logs, group, "two", evs[1::2])
    return group


@pytest.mark.parametrize("pattern,expected", PATTERNS, ids=[p or "<empty>" for p, _ in PATTERNS])
def test_filter_pattern(logs, corpus, pattern, expected):
    got = filter_all(logs, logGroupName=corpus, filterPattern=pattern)
    got_idx = [CORPUS.index(e["message"]) for e in got]
    assert got_idx == expected, f"pattern {pattern!r}: got {[CORPUS[i] for i in got_idx]}"


INVALID = [
    "{ $.level = ",
    '{ $.level = "x"',
    "[ip, user",
    "%(abc)%",
    "{ level = 1 }",
    '"unterminated',
    "{ $.a === 1 }",
    "%a% %b% %c%",
]


@pytest.mark.parametrize("pattern", INVALID)
def test_invalid_pattern_is_error(logs, corpus, pattern):
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=corpus, filterPattern=pattern)
    code, msg = error_of(e)
    assert code == "InvalidParameterException"
    assert msg


def test_pattern_with_stream_selection_and_time(logs, corpus):
    got = filter_all(logs, logGroupName=corpus, filterPattern="?ERROR ?WARN", logStreamNames=["two"])
    assert [e["message"] for e in got] == [CORPUS[1], CORPUS[3]]


def test_interleaved_is_accepted_and_ignored(logs, three):
    group, _, allev = three
    for flag in (True, False):
        assert triples(logs.filter_log_events(logGroupName=group, interleaved=flag)["events"]) == allev


def test_more_than_100_stream_names_is_error(raw_logs, three):
    group, _, _ = three
    with pytest.raises(ClientError) as e:
        raw_logs.filter_log_events(logGroupName=group, logStreamNames=[f"s{i}" for i in range(101)])
    assert error_of(e)[0] == "InvalidParameterException"


def test_pagination_while_writing_never_duplicates(logs, group):
    """Writes landing during a paginated scan (earlier, equal and later timestamps) must not make
    the scan repeat or skip events that existed when it started."""
    for s in ("x", "y"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t0 = now_ms() - 600_000
    original = []
    for s in ("x", "y"):
        evs = [(t0 + i // 2, f"orig-{s}-{i:04d}") for i in range(2500)]
        put_events(logs, group, s, evs)
        original += [m for _, m in evs]
    got, token, k = [], None, 0
    while True:
        args = dict(logGroupName=group, limit=400)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        got += r["events"]
        token = r.get("nextToken")
        if not token:
            break
        # concurrent writers: before, at and after the scan position
        last_ts = r["events"][-1]["timestamp"] if r["events"] else t0
        put_events(logs, group, "x", [(t0 - 1000, f"early-{k}"), (last_ts, f"tie-{k}")])
        put_events(logs, group, "y", [(t0 + 100_000 + k, f"late-{k}")])
        k += 1
        assert k < 100
    msgs = [e["message"] for e in got]
    assert len(msgs) == len(set(msgs)), "the scan returned an event twice"
    assert [m for m in msgs if m.startswith("orig-")] == sorted(original, key=lambda m: (int(m[-4:]) // 2, m[5], int(m[-4:])))
    ids = [e["eventId"] for e in got]
    assert len(ids) == len(set(ids))
