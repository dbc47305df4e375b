"""Fluent Bit's `cloudwatch_logs` output, built from source, shipping logs into lookout over TLS
(issue #7's proof; heavy tier: `LOOKOUT_HEAVY=1 scripts/test.sh` builds it with
scripts/build-fluent-bit.sh and sets LOOKOUT_FLUENT_BIT).

Fluent Bit 1.8's output always speaks TLS to port 443 and verifies the certificate, so lookout
listens on a loopback address of its own at :443 and Fluent Bit trusts lookout's generated
certificate (`tls.ca_file`). Nothing of Fluent Bit is configured beyond what a user would write
for AWS, plus `endpoint`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from lookout_harness import ACCESS_KEY, SECRET_KEY, LookoutServer, peer, unique, wait_for

FLUENT_BIT = os.environ.get("LOOKOUT_FLUENT_BIT", "")

pytestmark = [
    pytest.mark.skipif(peer() == "moto", reason="TLS on the same port is lookout's"),
    pytest.mark.skipif(not FLUENT_BIT, reason="heavy tier: LOOKOUT_HEAVY=1 scripts/test.sh builds Fluent Bit "
                                              "(scripts/build-fluent-bit.sh) and sets LOOKOUT_FLUENT_BIT"),
]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    # A loopback address of its own, so that port 443 is free whatever else runs here.
    host = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    srv = LookoutServer(tmp_path_factory.mktemp("fluent-bit"), host=host, port=443).start()
    yield srv
    srv.stop()


class FluentBit:
    """One `fluent-bit -c <file>` process; its output is kept for the assertions."""

    def __init__(self, workdir: Path, config: str, secret: str = SECRET_KEY):
        self.workdir = workdir
        self.config_path = workdir / "fluent-bit.conf"
        self.config_path.write_text(config)
        self.log_path = workdir / "fluent-bit.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret,
                    "AWS_EC2_METADATA_DISABLED": "true"})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([FLUENT_BIT, "-c", str(self.config_path)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def output_section(srv: LookoutServer, group: str, stream_setting: str, extra: str = "") -> str:
    return f"""
[OUTPUT]
    Name              cloudwatch_logs
    Match             *
    region            {srv.region}
    log_group_name    {group}
    {stream_setting}
    auto_create_group On
    endpoint          {srv.host}
    tls.ca_file       {srv.data_dir / "tls" / "cert.pem"}
{extra}"""


SERVICE = """
[SERVICE]
    Flush        1
    Log_Level    info
"""


def all_events(logs, group: str) -> list[dict]:
    """Every event of `group` ([] until Fluent Bit has created it)."""
    events, kw = [], {}
    while True:
        try:
            page = logs.filter_log_events(logGroupName=group, **kw)
        except logs.exceptions.ResourceNotFoundException:
            return []
        events += page["events"]
        if "nextToken" not in page:
            return events
        kw = {"nextToken": page["nextToken"]}


def test_tail_ships_every_line_over_tls_exactly_once(tls_server, tmp_path):
    logs = tls_server.logs()
    group = unique("/fluent-bit/tail")
    source = tmp_path / "app.log"
    first = [f"line {i} é {'x' * (i % 50)}" for i in range(1500)]
    first[10] = json.dumps({"level": "ERROR", "msg": "quoted \"text\" and \\ backslash"})
    source.write_text("\n".join(first) + "\n")
    config = SERVICE + f"""
[INPUT]
    Name              tail
    Path              {source}
    Read_from_Head    On
    Refresh_Interval  1
""" + output_section(tls_server, group, "log_stream_name   host-a", "    log_key           log\n")
    fb = FluentBit(tmp_path, config)
    try:
        wait_for(lambda: len(all_events(logs, group)) >= len(first), timeout=60,
                 what=f"{len(first)} lines from Fluent Bit's tail input")
        # Lines appended while it runs follow.
        second = [f"appended {i}" for i in range(500)]
        with open(source, "a") as f:
            f.write("\n".join(second) + "\n")
        wanted = first + second
        wait_for(lambda: len(all_events(logs, group)) >= len(wanted), timeout=60, what="the appended lines")
        time.sleep(3)   # a resent batch would show up by now
    finally:
        fb.stop()
    stored = logs.get_log_events(logGroupName=group, logStreamName="host-a", startFromHead=True, limit=10000)
    assert [e["message"] for e in stored["events"]] == wanted, "lines lost, repeated or reordered"
    out = fb.output()
    assert "Created log group" in out and "Created log stream host-a" in out
    assert "[error]" not in out, out[-3000:]
    assert "failed to flush" not in out, out[-3000:]


def test_records_as_json_with_a_stream_prefix_and_a_filter_pattern(tls_server, tmp_path):
    logs = tls_server.logs()
    group = unique("/fluent-bit/dummy")
    config = SERVICE + """
[INPUT]
    Name    dummy
    Tag     svc.api
    Dummy   {"status": 503, "latency": 1200, "path": "/orders"}
    Rate    5
""" + output_section(tls_server, group, "log_stream_prefix from-fluent-bit-")
    fb = FluentBit(tmp_path, config)
    try:
        wait_for(lambda: len(all_events(logs, group)) >= 10, timeout=60, what="10 records from the dummy input")
    finally:
        fb.stop()
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert streams == ["from-fluent-bit-svc.api"]
    record = json.loads(all_events(logs, group)[0]["message"])
    assert record == {"status": 503, "latency": 1200, "path": "/orders"}
    matched = logs.filter_log_events(logGroupName=group, filterPattern="{ $.status = 503 && $.latency > 1000 }")
    assert len(matched["events"]) >= 10
    assert not logs.filter_log_events(logGroupName=group, filterPattern="{ $.status = 200 }")["events"]


def test_a_wrong_secret_is_refused_and_nothing_is_stored(tls_server, tmp_path):
    logs = tls_server.logs()
    group = unique("/fluent-bit/denied")
    config = SERVICE + """
[INPUT]
    Name    dummy
    Dummy   {"message": "should not arrive"}
""" + output_section(tls_server, group, "log_stream_name   s")
    fb = FluentBit(tmp_path, config, secret="not-the-secret")
    try:
        wait_for(lambda: "InvalidSignatureException" in fb.output(), timeout=60,
                 what="Fluent Bit to report lookout's refusal")
    finally:
        fb.stop()
    assert not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
