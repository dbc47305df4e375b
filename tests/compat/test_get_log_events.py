"""GetLogEvents: direction, time bounds, tokens (including the Airflow-style "same token at the
end" contract), limits and the 1 MB page limit."""

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, get_all_forward, make_group, now_ms, put_events, unique

N = 30


@pytest.fixture(scope="module")
def thirty(logs):
    """One stream with 30 events, one second apart: (group, stream, [(ts, msg)])."""
    group = make_group(logs, streams=("s",))
    t0 = now_ms() - 3_600_000
    evs = [(t0 + i * 1000, f"event {i:02d}") for i in range(N)]
    put_events(logs, group, "s", evs[:10])
    put_events(logs, group, "s", evs[10:])
    return group, "s", evs


def pairs(resp):
    return [(e["timestamp"], e["message"]) for e in resp["events"]]


def test_event_fields(logs, thirty):
    group, s, evs = thirty
    r = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True, limit=1)
    [e] = r["events"]
    assert e["timestamp"] == evs[0][0] and e["message"] == evs[0][1]
    assert isinstance(e["ingestionTime"], int) and e["ingestionTime"] >= e["timestamp"]


def test_default_is_newest_page(logs, thirty):
    group, s, evs = thirty
    r = logs.get_log_events(logGroupName=group, logStreamName=s, limit=10)
    assert pairs(r) == evs[-10:]  # newest page, ascending inside the page
    assert r["nextForwardToken"] and r["nextBackwardToken"]
    # walk backwards
    r2 = logs.get_log_events(logGroupName=group, logStreamName=s, limit=10, nextToken=r["nextBackwardToken"])
    assert pairs(r2) == evs[10:20]
    r3 = logs.get_log_events(logGroupName=group, logStreamName=s, limit=10, nextToken=r2["nextBackwardToken"])
    assert pairs(r3) == evs[:10]
    r4 = logs.get_log_events(logGroupName=group, logStreamName=s, limit=10, nextToken=r3["nextBackwardToken"])
    assert pairs(r4) == []


def test_default_without_limit_returns_everything(logs, thirty):
    group, s, evs = thirty
    assert pairs(logs.get_log_events(logGroupName=group, logStreamName=s)) == evs
    assert pairs(logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True)) == evs


def test_forward_from_head(logs, thirty):
    group, s, evs = thirty
    got, token, seen_tokens = [], None, []
    for _ in range(10):
        args = dict(logGroupName=group, logStreamName=s, startFromHead=True, limit=7)
        if token:
            args["nextToken"] = token
        r = logs.get_log_events(**args)
        assert "nextBackwardToken" in r and r["nextBackwardToken"]
        got += pairs(r)
        if r["nextForwardToken"] == token:
            assert r["events"] == []
            break
        token = r["nextForwardToken"]
        seen_tokens.append(token)
    else:
        pytest.fail("forward token never stopped changing")
    assert got == evs


def test_start_inclusive_end_exclusive(logs, thirty):
    group, s, evs = thirty
    r = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True,
                            startTime=evs[5][0], endTime=evs[10][0])
    assert pairs(r) == evs[5:10]
    r = logs.get_log_events(logGroupName=group, logStreamName=s, startTime=evs[5][0], endTime=evs[10][0])
    assert pairs(r) == evs[5:10]
    r = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True,
                            startTime=evs[5][0] + 1, endTime=evs[10][0] + 1)
    assert pairs(r) == evs[6:11]


def test_limit(logs, thirty):
    group, s, evs = thirty
    assert pairs(logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True, limit=5)) == evs[:5]
    assert pairs(logs.get_log_events(logGroupName=group, logStreamName=s, limit=5)) == evs[-5:]


@pytest.mark.parametrize("limit", [0, 10_001])
def test_limit_out_of_range(raw_logs, thirty, limit):
    group, s, _ = thirty
    with pytest.raises(ClientError) as e:
        raw_logs.get_log_events(logGroupName=group, logStreamName=s, limit=limit)
    assert error_of(e)[0] == "InvalidParameterException"


def test_tokens_present_on_empty_stream(server, logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="empty")
    for head in (True, False):
        r = logs.get_log_events(logGroupName=group, logStreamName="empty", startFromHead=head)
        assert r["events"] == []
        assert r["nextForwardToken"] and r["nextBackwardToken"]
    raw = server.raw("GetLogEvents", {"logGroupName": group, "logStreamName": "empty"}).json()
    assert raw["events"] == [] and raw["nextForwardToken"] and raw["nextBackwardToken"]


def test_token_unchanged_at_end_and_later_append_readable(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms() - 10_000
    put_events(logs, group, "s", [(t, "a"), (t + 1, "b")])
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert pairs(r) == [(t, "a"), (t + 1, "b")]
    tok = r["nextForwardToken"]
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, nextToken=tok)
    assert r["events"] == []
    assert r["nextForwardToken"] == tok  # unchanged at the end of the stream
    # a later append is readable through that same token
    put_events(logs, group, "s", [(t + 2, "c"), (t + 2, "d")])
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, nextToken=tok)
    assert pairs(r) == [(t + 2, "c"), (t + 2, "d")]
    tok2 = r["nextForwardToken"]
    assert tok2 != tok
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, nextToken=tok2)
    assert r["events"] == [] and r["nextForwardToken"] == tok2


def test_token_from_empty_stream_reads_later_append(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    tok = r["nextForwardToken"]
    t = now_ms()
    put_events(logs, group, "s", [(t, "first")])
    r = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, nextToken=tok)
    assert pairs(r) == [(t, "first")]


def test_equal_timestamps_keep_ingestion_order(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    msgs = [f"m{i:03d}" for i in range(120)]
    for i in range(0, 120, 40):
        put_events(logs, group, "s", [(t, m) for m in msgs[i:i + 40]])
    got = [e["message"] for e in get_all_forward(logs, group, "s", limit=13)]
    assert got == msgs


def test_missing_stream_and_group(logs, group):
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=unique("/compat/missing"), logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_log_group_identifier(server, logs, thirty):
    group, s, evs = thirty
    for ident in (group, server.group_arn(group), server.group_arn(group, star=True)):
        r = logs.get_log_events(logGroupIdentifier=ident, logStreamName=s, startFromHead=True, limit=3)
        assert pairs(r) == evs[:3], ident


def test_name_and_identifier_together_is_error(server, logs, thirty):
    group, s, _ = thirty
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logGroupIdentifier=server.group_arn(group), logStreamName=s)
    assert error_of(e)[0] == "InvalidParameterException"


def test_pages_stay_under_one_megabyte(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="big")
    t = now_ms() - 60_000
    big = [(t + i, f"{i:02d}" + "z" * 200_000) for i in range(12)]  # ~2.4 MB in total
    put_events(logs, group, "big", big[:4])
    put_events(logs, group, "big", big[4:8])
    put_events(logs, group, "big", big[8:])
    pages = []
    token = None
    for _ in range(50):
        args = dict(logGroupName=group, logStreamName="big", startFromHead=True)
        if token:
            args["nextToken"] = token
        r = logs.get_log_events(**args)
        size = sum(len(e["message"].encode()) + 26 for e in r["events"])
        assert size <= 1_048_576, f"page of {len(r['events'])} events, {size} bytes"
        pages.append(r["events"])
        if r["nextForwardToken"] == token:
            break
        token = r["nextForwardToken"]
    got = [(e["timestamp"], e["message"]) for p in pages for e in p]
    assert got == big
    assert len([p for p in pages if p]) >= 3
    # newest page first: also below 1 MB and ends with the newest event
    r = logs.get_log_events(logGroupName=group, logStreamName="big")
    assert 0 < len(r["events"]) < 12
    assert (r["events"][-1]["timestamp"], r["events"][-1]["message"]) == big[-1]
