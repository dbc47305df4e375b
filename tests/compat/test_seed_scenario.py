"""The seed scenario, end to end, with real components only: a real SMTP server (aiosmtpd), real
containers (Podman through lookout's Docker runtime), the real binary, boto3.

A schedule `rate(1 minute)` starts a batch job (an ECS task whose work is SIGKILLed: exit 137 — PID 1
of a container cannot be killed from inside, so the job's shell runs the work as a child);
a second job exits 0. The alert rule users write on "ECS Task State Change" routes failures to an
SNS topic with a confirmed email subscription. Exactly one mail arrives, naming the failed task and
its exit code; the successful task causes none.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from lookout_harness import make_server, start_smtp, unique, wait_for

ALERT_PATTERN = {
    "source": ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    "detail": {
        "clusterArn": ["arn:aws:ecs:us-east-1:000000000000:cluster/default"],
        "lastStatus": ["STOPPED"],
        "stoppedReason": ["Essential container in task exited"],
        "containers": {"exitCode": [1, 137, 139, 255]},
    },
}




@pytest.fixture(scope="module")
def smtp():
    box, controller = start_smtp()
    yield box
    controller.stop()


def test_a_scheduled_job_that_is_killed_wakes_someone_up_exactly_once(tmp_path, smtp):
    srv = make_server(tmp_path, extra_args=["--runtime", "docker", "--smtp-url", f"smtp://127.0.0.1:{smtp.port}"])
    srv.start()
    try:
        ev, ecs, sns = srv.client("events"), srv.client("ecs"), srv.client("sns")
        # The on-call address, confirmed through the link in the confirmation mail.
        topic = sns.create_topic(Name=unique("job-alerts"))["TopicArn"]
        oncall = f"{unique('oncall')}@example.com"
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=oncall)
        confirmation = wait_for(lambda: smtp.to(oncall), what="the confirmation mail")[0]
        link = re.search(r"(http://\S+/sns/confirm\?\S+)", confirmation.get_content()).group(1)
        assert requests.get(link, timeout=10).status_code == 200

        # The alert rule users write, its message shaped by an input transformer.
        ev.put_rule(Name="job-failed", EventPattern=json.dumps(ALERT_PATTERN))
        ev.put_targets(Rule="job-failed", Targets=[{
            "Id": "page-oncall", "Arn": topic,
            "InputTransformer": {
                "InputPathsMap": {"task": "$.detail.taskArn", "group": "$.detail.group",
                                  "code": "$.detail.containers[0].exitCode"},
                "InputTemplate": "Job <group> failed: task <task> exited with code <code>."}}])

        # Two jobs: one killed (137), one fine (0). The schedule starts the failing one.
        ecs.register_task_definition(family="nightly-import", containerDefinitions=[
            {"name": "main", "image": "localhost/busybox:latest",
             "command": ["sh", "-c", "echo importing; sh -c 'kill -9 $$'; exit $?"]}])
        ecs.register_task_definition(family="nightly-report", containerDefinitions=[
            {"name": "main", "image": "localhost/busybox:latest", "command": ["sh", "-c", "echo fine"]}])
        ev.put_rule(Name="nightly-import-schedule", ScheduleExpression="rate(1 minute)")
        ev.put_targets(Rule="nightly-import-schedule", Targets=[{
            "Id": "run", "Arn": "arn:aws:ecs:us-east-1:000000000000:cluster/default",
            "EcsParameters": {"TaskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/nightly-import:1"}}])
        fine = ecs.run_task(taskDefinition="nightly-report")["tasks"][0]["taskArn"]

        failed = wait_for(lambda: ecs.list_tasks(startedBy="events-rule/nightly-import-schedule",
                                                 desiredStatus="STOPPED")["taskArns"],
                          timeout=100, interval=0.5, what="the scheduled job to run and stop")
        ev.disable_rule(Name="nightly-import-schedule")
        t = ecs.describe_tasks(tasks=failed)["tasks"][0]
        assert t["containers"][0]["exitCode"] == 137
        assert ecs.describe_tasks(tasks=[fine])["tasks"][0]["containers"][0]["exitCode"] == 0

        alerts = wait_for(lambda: [m for m in smtp.to(oncall) if "failed" in m["Subject"] or "failed" in m.get_content()],
                          what="the alert mail")
        time.sleep(3)  # anything else would have arrived by now
        mails = smtp.to(oncall)
        assert len(mails) == 2, [m["Subject"] for m in mails]  # the confirmation and one alert
        body = alerts[0].get_content()
        assert f"task {failed[0]} exited with code 137" in body
        assert "Job family:nightly-import failed" in body
        assert fine not in body
    finally:
        srv.stop()

