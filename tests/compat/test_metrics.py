"""Prometheus metrics at /metrics (issue #7): requests by service, operation and status with
latencies, log intake and WAL syncs, deliveries and tasks — read by a real scrape after real
boto3 traffic."""

from __future__ import annotations

import re

import botocore.exceptions
import pytest
import requests

from lookout_harness import now_ms, peer, unique

pytestmark = pytest.mark.skipif(peer() == "moto", reason="lookout's own endpoint")


def scrape(server) -> dict[str, float]:
    r = requests.get(server.endpoint + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    # Every sample belongs to a declared family.
    families = set(re.findall(r"^# TYPE (\S+) ", r.text, re.M))
    for name in samples:
        base = re.sub(r"(_bucket|_sum|_count)$", "", name.split("{")[0])
        assert name.split("{")[0] in families or base in families, name
    return samples


def test_requests_intake_and_state_are_counted(server, logs):
    before = scrape(server)
    group = unique("/metrics/g")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": now_ms(), "message": f"line {i}"} for i in range(25)])
    with pytest.raises(botocore.exceptions.ClientError):
        logs.create_log_group(logGroupName=group)
    server.client("sns").list_topics()
    after = scrape(server)

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    ok = 'lookout_requests_total{service="logs",operation="PutLogEvents",code="200"}'
    assert delta(ok) == 1
    assert delta('lookout_requests_total{service="logs",operation="CreateLogGroup",code="400"}') == 1
    assert delta('lookout_requests_total{service="sns",operation="ListTopics",code="200"}') == 1
    assert delta('lookout_request_duration_seconds_count{service="logs",operation="PutLogEvents"}') == 1
    assert after['lookout_request_duration_seconds_bucket{service="logs",operation="PutLogEvents",le="+Inf"}'] \
        == after['lookout_request_duration_seconds_count{service="logs",operation="PutLogEvents"}']
    assert delta("lookout_ingest_events_total") >= 25
    assert delta("lookout_wal_syncs_total") >= 1
    for family in ("lookout_store_disk_bytes", "lookout_store_memory_bytes",
                   'lookout_event_deliveries_pending{state="retrying"}', 'lookout_sns_deliveries{state="failed"}',
                   'lookout_event_deliveries_total{outcome="dead_lettered"}', 'lookout_event_delivery_failed_attempts_total'):
        assert family in after, family
