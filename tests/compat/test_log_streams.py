"""CreateLogStream, DeleteLogStream, DescribeLogStreams."""

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, make_group, now_ms, put_events, unique


def names(resp):
    return [s["logStreamName"] for s in resp["logStreams"]]


def test_create_and_describe_fields(server, logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="app/web/1")
    [s] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert s["logStreamName"] == "app/web/1"
    assert s["arn"] == server.stream_arn(group, "app/web/1")
    assert isinstance(s["creationTime"], int) and s["creationTime"] > 1_600_000_000_000
    assert s["storedBytes"] == 0
    for absent in ("firstEventTimestamp", "lastEventTimestamp"):
        assert absent not in s, s

    t = now_ms()
    put_events(logs, group, "app/web/1", [(t - 5000, "first"), (t - 1000, "last")])
    [s] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert s["firstEventTimestamp"] == t - 5000
    assert s["lastEventTimestamp"] == t - 1000
    assert s["lastIngestionTime"] >= s["creationTime"]


def test_create_already_exists(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="dup")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="dup")
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log stream already exists")


def test_create_in_missing_group(logs):
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=unique("/compat/missing"), logStreamName="s")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


@pytest.mark.parametrize("bad", ["with:colon", "with*star"])
def test_create_bad_stream_name(logs, group, bad):
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName=bad)
    code, msg = error_of(e)
    assert code == "InvalidParameterException"
    assert "logStreamName" in msg


def test_stream_name_odd_characters_ok(logs, group):
    name = "2024/01/02/[$LATEST] é 空白 #?&=+"
    logs.create_log_stream(logGroupName=group, logStreamName=name)
    assert names(logs.describe_log_streams(logGroupName=group)) == [name]


def test_stream_name_too_long(raw_logs, group):
    with pytest.raises(ClientError) as e:
        raw_logs.create_log_stream(logGroupName=group, logStreamName="s" * 513)
    assert error_of(e)[0] == "InvalidParameterException"


def test_delete_log_stream(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="a")
    logs.create_log_stream(logGroupName=group, logStreamName="b")
    put_events(logs, group, "a", [(now_ms(), "x")])
    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    assert names(logs.describe_log_streams(logGroupName=group)) == ["b"]
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="a")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    assert logs.filter_log_events(logGroupName=group)["events"] == []
    # a re-created stream starts empty
    logs.create_log_stream(logGroupName=group, logStreamName="a")
    assert logs.get_log_events(logGroupName=group, logStreamName="a")["events"] == []


def test_delete_missing_stream(logs, group):
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName=group, logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_delete_stream_missing_group(logs):
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName=unique("/compat/missing"), logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_describe_empty_group_has_log_streams_list(server, group):
    # Vector fails if `logStreams` is absent: check the raw body, not botocore's parse
    r = server.raw("DescribeLogStreams", {"logGroupName": group})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("logStreams") == [], body
    assert "nextToken" not in body


def test_describe_missing_group(logs):
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=unique("/compat/missing"))
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


@pytest.fixture(scope="module")
def streamy(logs):
    """A group whose streams have last events in an order different from their names."""
    group = make_group(logs)
    t = now_ms() - 60_000
    order = {"c": 1, "a": 4, "b/x": 2, "b/y": 5, "B": 3, "d": 0}  # name -> rank of last event time
    for name, rank in order.items():
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put_events(logs, group, name, [(t + rank * 1000, f"event of {name}")])
    by_name = sorted(order, key=lambda s: s.encode())
    by_time = sorted(order, key=lambda s: order[s])
    return group, by_name, by_time


def test_describe_default_order_is_name(logs, streamy):
    group, by_name, _ = streamy
    assert names(logs.describe_log_streams(logGroupName=group)) == by_name
    assert names(logs.describe_log_streams(logGroupName=group, orderBy="LogStreamName")) == by_name
    assert names(logs.describe_log_streams(logGroupName=group, descending=True)) == by_name[::-1]


def test_describe_prefix(logs, streamy):
    group, _, _ = streamy
    assert names(logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="b/")) == ["b/x", "b/y"]
    assert names(logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="zzz")) == []


def test_describe_order_by_last_event_time(logs, streamy):
    group, _, by_time = streamy
    assert names(logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime")) == by_time
    assert names(logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                           descending=True)) == by_time[::-1]


def test_describe_prefix_with_last_event_time_is_error(logs, streamy):
    group, _, _ = streamy
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="b")
    assert error_of(e)[0] == "InvalidParameterException"


def test_describe_by_identifier(server, logs, streamy):
    group, by_name, _ = streamy
    for ident in (group, server.group_arn(group), server.group_arn(group, star=True)):
        assert names(logs.describe_log_streams(logGroupIdentifier=ident)) == by_name, ident


@pytest.mark.parametrize("limit", [0, 51])
def test_describe_limit_out_of_range(raw_logs, streamy, limit):
    group, _, _ = streamy
    with pytest.raises(ClientError) as e:
        raw_logs.describe_log_streams(logGroupName=group, limit=limit)
    assert error_of(e)[0] == "InvalidParameterException"


def test_describe_paginator(logs, group):
    want = [f"s{i:03d}" for i in range(75)]
    for s in reversed(want):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    got = []
    for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
        assert len(page["logStreams"]) <= 50
        got += names(page)
    assert got == want
    got = []
    for page in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, logStreamNamePrefix="s0", PaginationConfig={"PageSize": 9}):
        assert len(page["logStreams"]) <= 9
        got += names(page)
    assert got == [s for s in want if s.startswith("s0")]
    # manual: limit + nextToken, last page without nextToken
    got, token = [], None
    for _ in range(100):
        args = dict(logGroupName=group, limit=10, descending=True)
        if token:
            args["nextToken"] = token
        r = logs.describe_log_streams(**args)
        got += names(r)
        token = r.get("nextToken")
        if not token:
            break
    assert got == want[::-1]


def test_describe_paginator_by_last_event_time(logs, group):
    t = now_ms() - 100_000
    want = []
    for i in range(23):
        name = f"t{(i * 7) % 23:02d}"
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put_events(logs, group, name, [(t + i * 10, "m")])
        want.append(name)
    got = []
    for page in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, orderBy="LastEventTime", descending=True, PaginationConfig={"PageSize": 4}):
        got += names(page)
    assert got == want[::-1]
