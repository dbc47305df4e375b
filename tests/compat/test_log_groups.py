"""CreateLogGroup, DeleteLogGroup, DescribeLogGroups."""

import uuid

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, unique

NAME_PATTERN = r"[\.\-_/#A-Za-z0-9]+"


def describe_one(logs, name):
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    match = [g for g in groups if g["logGroupName"] == name]
    assert len(match) == 1, groups
    return match[0]


def test_create_and_describe_fields(server, logs):
    name = unique("/compat/create")
    logs.create_log_group(logGroupName=name)
    g = describe_one(logs, name)
    assert g["arn"] == server.group_arn(name, star=True)
    assert g["logGroupArn"] == server.group_arn(name)
    assert isinstance(g["creationTime"], int) and g["creationTime"] > 1_600_000_000_000
    assert g["storedBytes"] >= 0
    assert g["metricFilterCount"] == 0
    assert g["logGroupClass"] == "STANDARD"
    assert "retentionInDays" not in g


def test_create_with_tags(server, logs):
    name = unique("/compat/tagged")
    tags = {"team": "obs", "env": "test", "k-with.chars/ok": "v@1"}
    logs.create_log_group(logGroupName=name, tags=tags)
    assert logs.list_tags_for_resource(resourceArn=server.group_arn(name))["tags"] == tags
    assert logs.list_tags_log_group(logGroupName=name)["tags"] == tags


def test_create_with_log_group_class(logs):
    name = unique("/compat/ia")
    logs.create_log_group(logGroupName=name, logGroupClass="INFREQUENT_ACCESS")
    assert describe_one(logs, name)["logGroupClass"] == "INFREQUENT_ACCESS"


def test_create_already_exists(logs, group):
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=group)
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log group already exists")


@pytest.mark.parametrize("name", ["aws/compat-" + uuid.uuid4().hex[:8]])
def test_create_aws_prefix_refused(logs, name):
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=name)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=name)
    assert error_of(e)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize("bad", ["has space", "colon:inside", "star*", "quote'", "é-accent", "semi;colon"])
def test_create_bad_name_pattern(logs, bad):
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=bad)
    code, msg = error_of(e)
    assert code == "InvalidParameterException"
    assert msg == (f"1 validation error detected: Value '{bad}' at 'logGroupName' failed to satisfy "
                   f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}")


def test_create_name_too_long(raw_logs):
    name = "a" * 513
    with pytest.raises(ClientError) as e:
        raw_logs.create_log_group(logGroupName=name)
    code, msg = error_of(e)
    assert code == "InvalidParameterException"
    assert msg.startswith("1 validation error detected: Value '")
    assert "at 'logGroupName' failed to satisfy constraint: Member must have length less than or equal to 512" in msg


def test_create_name_max_length_ok(logs):
    name = "/compat/" + uuid.uuid4().hex + "x" * (512 - 8 - 32)
    assert len(name) == 512
    logs.create_log_group(logGroupName=name)
    assert describe_one(logs, name)["logGroupName"] == name


def test_all_name_characters_ok(logs):
    name = "/compat/." + uuid.uuid4().hex + "-_/#AZaz09"
    logs.create_log_group(logGroupName=name)
    assert describe_one(logs, name)["logGroupName"] == name


def test_delete_log_group(logs):
    name = unique("/compat/del")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    logs.put_log_events(logGroupName=name, logStreamName="s",
                        logEvents=[{"timestamp": 1_700_000_000_000 + 10**9, "message": "gone soon"}])
    logs.delete_log_group(logGroupName=name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=name, logStreamName="s")
    assert error_of(e)[0] == "ResourceNotFoundException"
    # re-created: empty, no stream left over
    logs.create_log_group(logGroupName=name)
    assert logs.describe_log_streams(logGroupName=name)["logStreams"] == []


def test_delete_missing_group(logs):
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName=unique("/compat/missing"))
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


# ----- DescribeLogGroups -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def family(logs):
    """Groups under one unique prefix, with names chosen to test ASCII ordering."""
    base = "/compat/fam-" + uuid.uuid4().hex[:10] + "/"
    suffixes = ["b", "a", "B", "A", "_x", "#h", "-d", ".p", "0", "9z", "aa", "ab", "Zz", "zz", "a/b"]
    names = [base + s for s in suffixes]
    for n in names:
        logs.create_log_group(logGroupName=n)
    return base, sorted(names, key=lambda s: s.encode())


def test_describe_prefix_and_ascii_order(logs, family):
    base, names = family
    got = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=base)["logGroups"]]
    assert got == names
    got = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=base + "a")["logGroups"]]
    assert got == [base + "a", base + "a/b", base + "aa", base + "ab"]


def test_describe_pattern_is_substring(logs, family):
    base, names = family
    marker = base.split("/")[2]  # fam-<hex>
    got = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePattern=marker)["logGroups"]]
    assert got == names
    # a substring in the middle of the name, not a prefix
    middle = marker[4:12]
    got = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePattern=middle)["logGroups"]]
    assert got == names


def test_describe_prefix_and_pattern_is_error(logs, family):
    base, _ = family
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix=base, logGroupNamePattern="fam")
    assert error_of(e)[0] == "InvalidParameterException"


def test_describe_limit_and_next_token(logs, family):
    base, names = family
    got, token, pages = [], None, 0
    while True:
        args = dict(logGroupNamePrefix=base, limit=4)
        if token:
            args["nextToken"] = token
        r = logs.describe_log_groups(**args)
        pages += 1
        assert len(r["logGroups"]) <= 4
        got += [g["logGroupName"] for g in r["logGroups"]]
        token = r.get("nextToken")
        if not token:
            break
        assert pages < 20
    assert got == names
    assert pages >= 4


@pytest.mark.parametrize("limit", [0, 51])
def test_describe_limit_out_of_range(raw_logs, limit):
    with pytest.raises(ClientError) as e:
        raw_logs.describe_log_groups(limit=limit)
    assert error_of(e)[0] == "InvalidParameterException"


def test_describe_no_match_returns_empty_list(logs):
    r = logs.describe_log_groups(logGroupNamePrefix=unique("/compat/none"))
    assert r["logGroups"] == []
    assert "nextToken" not in r


def test_describe_first_result_is_the_group_vector_healthcheck(logs, family):
    base, names = family
    # Vector's healthcheck: DescribeLogGroups(limit=1, prefix=group): the first result must be the group
    r = logs.describe_log_groups(logGroupNamePrefix=names[0], limit=1)
    assert [g["logGroupName"] for g in r["logGroups"]] == [names[0]]


def test_paginator_collects_120_groups_exactly_once(logs):
    base = "/compat/many-" + uuid.uuid4().hex[:10] + "/"
    names = [f"{base}{i:03d}" for i in range(120)]
    for n in names:
        logs.create_log_group(logGroupName=n)
    got = []
    pages = 0
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=base):
        pages += 1
        got += [g["logGroupName"] for g in page["logGroups"]]
    assert got == names
    assert pages >= 3  # at most 50 per page
    got_small = []
    for page in logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=base, PaginationConfig={"PageSize": 7}):
        assert len(page["logGroups"]) <= 7
        got_small += [g["logGroupName"] for g in page["logGroups"]]
    assert got_small == names
