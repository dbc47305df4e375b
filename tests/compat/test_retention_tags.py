"""PutRetentionPolicy / DeleteRetentionPolicy, TagResource / UntagResource / ListTagsForResource and
the older TagLogGroup / UntagLogGroup / ListTagsLogGroup."""

import pytest
from botocore.exceptions import ClientError

from lookout_harness import error_of, unique

ALLOWED_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                2557, 2922, 3288, 3653]


def describe(logs, name):
    [g] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return g


def test_retention_set_and_delete(logs, group):
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    assert describe(logs, group)["retentionInDays"] == 7
    logs.put_retention_policy(logGroupName=group, retentionInDays=30)
    assert describe(logs, group)["retentionInDays"] == 30
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in describe(logs, group)


def test_retention_all_allowed_values(logs, group):
    for d in ALLOWED_DAYS:
        logs.put_retention_policy(logGroupName=group, retentionInDays=d)
        assert describe(logs, group)["retentionInDays"] == d


@pytest.mark.parametrize("days", [0, 2, 4, 10, 366, 3654, -1])
def test_retention_invalid_days(raw_logs, group, days):
    with pytest.raises(ClientError) as e:
        raw_logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert error_of(e)[0] == "InvalidParameterException"
    assert "retentionInDays" not in describe(raw_logs, group)


def test_retention_missing_group(logs):
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=unique("/compat/missing"), retentionInDays=7)
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as e:
        logs.delete_retention_policy(logGroupName=unique("/compat/missing"))
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_tag_resource_with_arn_without_star(server, logs, group):
    arn = server.group_arn(group)
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    logs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    logs.tag_resource(resourceArn=arn, tags={"b": "3", "c": ""})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1", "b": "3", "c": ""}
    logs.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "3", "c": ""}
    # the same tags through the older API
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"b": "3", "c": ""}


def test_tag_log_group_old_api(server, logs, group):
    logs.tag_log_group(logGroupName=group, tags={"x": "1", "y": "2"})
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"x": "1", "y": "2"}
    logs.untag_log_group(logGroupName=group, tags=["x"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"y": "2"}
    assert logs.list_tags_for_resource(resourceArn=server.group_arn(group))["tags"] == {"y": "2"}


def test_tag_missing_group(server, logs):
    missing = unique("/compat/missing")
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=server.group_arn(missing), tags={"a": "1"})
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_for_resource(resourceArn=server.group_arn(missing))
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_log_group(logGroupName=missing)
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_more_than_50_tags(server, raw_logs, group):
    arn = server.group_arn(group)
    with pytest.raises(ClientError) as e:
        raw_logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(51)})
    assert error_of(e)[0] in ("InvalidParameterException", "TooManyTagsException")
    assert raw_logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    # 50 is fine, one more (cumulative) is not
    raw_logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    with pytest.raises(ClientError) as e:
        raw_logs.tag_resource(resourceArn=arn, tags={"one-more": "v"})
    assert error_of(e)[0] in ("InvalidParameterException", "TooManyTagsException")
    assert len(raw_logs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    # overwriting an existing key does not count as a new tag
    raw_logs.tag_resource(resourceArn=arn, tags={"k0": "new"})
    assert raw_logs.list_tags_for_resource(resourceArn=arn)["tags"]["k0"] == "new"


def test_create_with_more_than_50_tags(raw_logs):
    name = unique("/compat/tags51")
    with pytest.raises(ClientError) as e:
        raw_logs.create_log_group(logGroupName=name, tags={f"k{i}": "v" for i in range(51)})
    assert error_of(e)[0] in ("InvalidParameterException", "TooManyTagsException")
    assert raw_logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []


def test_tags_reset_when_group_recreated(server, logs):
    name = unique("/compat/retag")
    logs.create_log_group(logGroupName=name, tags={"a": "1"})
    logs.delete_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name)
    assert logs.list_tags_for_resource(resourceArn=server.group_arn(name))["tags"] == {}
