"""AWS CLI v1 (`aws logs ...`) as a subprocess against lookout."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookout_harness import now_ms, unique


def aws_bin():
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.exists():
        return str(venv_aws)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the AWS CLI (v1) is not installed: run scripts/setup-python.sh")
    return found


def aws(server, *args, endpoint_flag=True, check=True):
    cmd = [aws_bin(), "logs", *args, "--output", "json"]
    env = server.env
    if endpoint_flag:
        cmd += ["--endpoint-url", server.endpoint]
        env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def out_json(p):
    return json.loads(p.stdout) if p.stdout.strip() else {}


def test_cli_round_trip(server, tmp_path):
    group = unique("/compat/cli")
    aws(server, "create-log-group", "--log-group-name", group, "--tags", "team=obs")
    aws(server, "create-log-stream", "--log-group-name", group, "--log-stream-name", "s1")
    t = now_ms()
    events = [{"timestamp": t - 3, "message": "hello ERROR one"},
              {"timestamp": t - 2, "message": "hello two"},
              {"timestamp": t - 1, "message": "ERROR three"}]
    f = tmp_path / "events.json"
    f.write_text(json.dumps(events))
    put = out_json(aws(server, "put-log-events", "--log-group-name", group, "--log-stream-name", "s1",
                       "--log-events", f"file://{f}"))
    assert put.get("nextSequenceToken")
    assert "rejectedLogEventsInfo" not in put

    got = out_json(aws(server, "get-log-events", "--log-group-name", group, "--log-stream-name", "s1",
                       "--start-from-head"))
    assert [e["message"] for e in got["events"]] == [e["message"] for e in events]
    assert got["nextForwardToken"] and got["nextBackwardToken"]

    filt = out_json(aws(server, "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR"))
    assert [e["message"] for e in filt["events"]] == ["hello ERROR one", "ERROR three"]
    assert all(e["eventId"] for e in filt["events"])

    desc = out_json(aws(server, "describe-log-groups", "--log-group-name-prefix", group))
    assert [g["logGroupName"] for g in desc["logGroups"]] == [group]

    streams = out_json(aws(server, "describe-log-streams", "--log-group-name", group))
    assert [s["logStreamName"] for s in streams["logStreams"]] == ["s1"]

    tags = out_json(aws(server, "list-tags-log-group", "--log-group-name", group))
    assert tags["tags"] == {"team": "obs"}


def test_cli_with_aws_endpoint_url_env(server):
    group = unique("/compat/cli-env")
    aws(server, "create-log-group", "--log-group-name", group, endpoint_flag=False)
    desc = out_json(aws(server, "describe-log-groups", "--log-group-name-prefix", group, endpoint_flag=False))
    assert [g["logGroupName"] for g in desc["logGroups"]] == [group]


def test_cli_paginates_automatically(server, logs):
    prefix = unique("/compat/cli-pages") + "/"
    names = [f"{prefix}{i:02d}" for i in range(60)]
    for n in names:
        logs.create_log_group(logGroupName=n)
    desc = out_json(aws(server, "describe-log-groups", "--log-group-name-prefix", prefix, "--page-size", "7"))
    assert [g["logGroupName"] for g in desc["logGroups"]] == names
    assert "nextToken" not in desc


def test_cli_filter_paginates(server, logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms() - 10_000
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": t + i, "message": f"m{i:04d}"} for i in range(2500)])
    filt = out_json(aws(server, "filter-log-events", "--log-group-name", group, "--page-size", "400"))
    assert [e["message"] for e in filt["events"]] == [f"m{i:04d}" for i in range(2500)]


def test_cli_errors(server):
    missing = unique("/compat/missing")
    p = aws(server, "describe-log-streams", "--log-group-name", missing, check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr
    assert "The specified log group does not exist." in p.stderr
    group = unique("/compat/cli-dup")
    aws(server, "create-log-group", "--log-group-name", group)
    p = aws(server, "create-log-group", "--log-group-name", group, check=False)
    assert p.returncode != 0
    assert "ResourceAlreadyExistsException" in p.stderr
