"""ECS tasks through boto3 against the real binary, with both runtimes: real containers through
Podman's Docker-compatible API (`--runtime docker`, image localhost/busybox:latest, built by
scripts/setup-podman.sh) and local processes (`--runtime process`). The same commands run in both:
busybox's `sh` in the image, the host's `sh` as a process.

Covered: success, non-zero exit, StopTask (SIGTERM, then SIGKILL after stopTimeout → 137), a missing
image, a non-essential sidecar, logs readable while the task runs, a missing log group, the API's
shapes, filters, pagination and errors, and kill -9 of lookout while tasks run.
"""

from __future__ import annotations

import os
import time

import botocore.exceptions
import pytest

from lookout_harness import make_server, unique

IMAGE = "localhost/busybox:latest"


def start_server(tmp_path_factory, runtime: str):
    srv = make_server(tmp_path_factory.mktemp(f"tasks-{runtime}"), extra_args=["--runtime", runtime])
    srv.start()
    return srv


@pytest.fixture(scope="module", params=["docker", "process"])
def srv(request, tmp_path_factory):
    s = start_server(tmp_path_factory, request.param)
    s.runtime = request.param
    yield s
    s.stop()


@pytest.fixture(scope="module")
def docker_srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "docker")
    yield s
    s.stop()


def clients(s):
    return s.client("ecs"), s.client("logs")


def container(name: str, script: str, group: str, *, create_group: bool = True, **extra) -> dict:
    options = {"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}
    if create_group:
        options["awslogs-create-group"] = "true"
    return {"name": name, "image": IMAGE, "command": ["sh", "-c", script],
            "logConfiguration": {"logDriver": "awslogs", "options": options}, **extra}


def register(ecs, containers: list[dict], family: str | None = None) -> str:
    family = family or unique("fam")
    ecs.register_task_definition(family=family, containerDefinitions=containers)
    return family


def run(ecs, family: str, **kw) -> dict:
    r = ecs.run_task(taskDefinition=family, **kw)
    assert r["failures"] == []
    assert len(r["tasks"]) == kw.get("count", 1)
    return r["tasks"][0]


def wait_stopped(ecs, arn: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
        if t["lastStatus"] == "STOPPED":
            return t
        time.sleep(0.1)
    raise AssertionError(f"task {arn} did not stop within {timeout} s: {t}")


def wait_status(ecs, arn: str, status: str, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
        if t["lastStatus"] == status:
            return t
        assert t["lastStatus"] != "STOPPED", t
        time.sleep(0.05)
    raise AssertionError(f"task {arn} never reached {status}")


def messages(logs, group: str, container_name: str, task_arn: str) -> list[str]:
    stream = f"ecs/{container_name}/{task_arn.rsplit('/', 1)[1]}"
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_a_task_that_succeeds_has_its_output_in_the_log_stream(srv):
    ecs, logs = clients(srv)
    group = unique("/tasks/ok")
    fam = register(ecs, [container("main", "echo first line; echo second line; echo 'with  spaces'", group)])
    t = run(ecs, fam, startedBy="compat-test")
    assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
    assert t["taskArn"].startswith("arn:aws:ecs:us-east-1:000000000000:task/default/")
    assert len(t["taskArn"].rsplit("/", 1)[1]) == 32
    assert t["group"] == f"family:{fam}" and t["startedBy"] == "compat-test"
    done = wait_stopped(ecs, t["taskArn"])
    assert done["stopCode"] == "EssentialContainerExited"
    assert done["stoppedReason"] == "Essential container in task exited"
    assert done["containers"][0]["exitCode"] == 0
    assert done["containers"][0]["lastStatus"] == "STOPPED"
    assert done["desiredStatus"] == "STOPPED"
    for k in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
        assert k in done, k
    assert done["createdAt"] <= done["startedAt"] <= done["stoppedAt"]
    assert done["version"] > t["version"]
    assert messages(logs, group, "main", t["taskArn"]) == ["first line", "second line", "with  spaces"]


def test_a_non_zero_exit_code_is_reported(srv):
    ecs, logs = clients(srv)
    group = unique("/tasks/fail")
    fam = register(ecs, [container("main", "echo about to fail >&2; exit 3", group)])
    done = wait_stopped(ecs, run(ecs, fam)["taskArn"])
    assert done["containers"][0]["exitCode"] == 3
    assert done["stopCode"] == "EssentialContainerExited"
    assert messages(logs, group, "main", done["taskArn"]) == ["about to fail"]


def test_stop_task_sends_sigterm_then_sigkill_after_stop_timeout(srv):
    ecs, _ = clients(srv)
    group = unique("/tasks/stop")
    stubborn = register(ecs, [container("main", "trap '' TERM; echo up; while true; do sleep 1; done", group,
                                        stopTimeout=2)])
    t = run(ecs, stubborn)
    wait_status(ecs, t["taskArn"], "RUNNING")
    stopped = ecs.stop_task(task=t["taskArn"], reason="compat: stop it")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    began = time.time()
    done = wait_stopped(ecs, t["taskArn"])
    assert time.time() - began >= 1.5, "the container had stopTimeout=2 s to end after SIGTERM"
    assert done["containers"][0]["exitCode"] == 137
    assert done["stopCode"] == "UserInitiated"
    assert done["stoppedReason"] == "compat: stop it"
    # Stopping a stopped task is harmless.
    assert ecs.stop_task(task=t["taskArn"])["task"]["lastStatus"] == "STOPPED"


def test_a_non_essential_sidecar_does_not_stop_the_task_but_is_stopped_with_it(srv):
    ecs, logs = clients(srv)
    group = unique("/tasks/pair")
    fam = register(ecs, [
        container("main", "sleep 2; echo main done; exit 1", group),
        container("sidecar", "echo sidecar up; while true; do sleep 1; done", group, essential=False),
        container("oneshot", "echo oneshot; exit 5", group, essential=False),
    ])
    t = run(ecs, fam)
    # The one-shot sidecar ends first and the task keeps running.
    deadline = time.time() + 30
    while True:
        d = ecs.describe_tasks(tasks=[t["taskArn"]])["tasks"][0]
        one = next(c for c in d["containers"] if c["name"] == "oneshot")
        if one["lastStatus"] == "STOPPED":
            break
        assert time.time() < deadline
        time.sleep(0.05)
    assert one["exitCode"] == 5
    assert d["lastStatus"] == "RUNNING", d
    done = wait_stopped(ecs, t["taskArn"])
    by_name = {c["name"]: c for c in done["containers"]}
    assert by_name["main"]["exitCode"] == 1
    assert by_name["sidecar"]["exitCode"] in (137, 143), by_name["sidecar"]
    assert done["stopCode"] == "EssentialContainerExited"
    assert messages(logs, group, "sidecar", t["taskArn"]) == ["sidecar up"]
    assert messages(logs, group, "main", t["taskArn"]) == ["main done"]


def test_output_is_readable_while_the_task_still_runs(srv):
    ecs, logs = clients(srv)
    group = unique("/tasks/live")
    fam = register(ecs, [container("main", "echo early; sleep 5; echo late", group)])
    t = run(ecs, fam)
    deadline = time.time() + 4
    seen = []
    while time.time() < deadline:
        try:
            seen = messages(logs, group, "main", t["taskArn"])
        except botocore.exceptions.ClientError:
            seen = []
        if seen:
            break
        time.sleep(0.05)
    assert seen == ["early"]
    assert ecs.describe_tasks(tasks=[t["taskArn"]])["tasks"][0]["lastStatus"] == "RUNNING"
    wait_stopped(ecs, t["taskArn"])
    assert messages(logs, group, "main", t["taskArn"]) == ["early", "late"]


def test_a_missing_log_group_without_create_group_fails_the_task_to_start(srv):
    ecs, _ = clients(srv)
    group = unique("/tasks/absent")
    fam = register(ecs, [container("main", "echo never", group, create_group=False)])
    done = wait_stopped(ecs, run(ecs, fam)["taskArn"])
    assert done["stopCode"] == "TaskFailedToStart"
    assert "The specified log group does not exist." in done["stoppedReason"]
    assert group in done["stoppedReason"]
    assert "exitCode" not in done["containers"][0]


def test_a_missing_image_fails_the_task_to_start_naming_the_image(docker_srv):
    ecs, _ = clients(docker_srv)
    fam = register(ecs, [{"name": "main", "image": "localhost/does-not-exist:1.0", "command": ["true"]}])
    done = wait_stopped(ecs, run(ecs, fam)["taskArn"])
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("CannotPullContainerError")
    assert "localhost/does-not-exist:1.0" in done["stoppedReason"]
    assert "localhost/does-not-exist:1.0" in done["containers"][0]["reason"]


def test_command_overrides_environment_and_working_directory(srv):
    ecs, logs = clients(srv)
    group = unique("/tasks/env")
    workdir = "/tmp" if srv.runtime == "process" else "/bin"
    fam = register(ecs, [container("main", "echo never", group, workingDirectory=workdir,
                                   environment=[{"name": "A", "value": "from-def"}, {"name": "B", "value": "b"}])])
    t = run(ecs, fam, overrides={"containerOverrides": [{
        "name": "main", "command": ["sh", "-c", "echo $A $B; pwd"],
        "environment": [{"name": "A", "value": "from-override"}]}]})
    assert t["overrides"]["containerOverrides"][0]["command"] == ["sh", "-c", "echo $A $B; pwd"]
    done = wait_stopped(ecs, t["taskArn"])
    assert done["containers"][0]["exitCode"] == 0
    assert messages(logs, group, "main", t["taskArn"]) == ["from-override b", workdir]


def test_task_definitions_revisions_and_errors(srv):
    ecs, _ = clients(srv)
    fam = unique("defs")
    c = {"name": "main", "image": IMAGE, "command": ["true"]}
    arns = [ecs.register_task_definition(family=fam, containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]
            for _ in range(3)]
    assert arns == [f"arn:aws:ecs:us-east-1:000000000000:task-definition/{fam}:{r}" for r in (1, 2, 3)]
    d = ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]
    assert d["revision"] == 3 and d["status"] == "ACTIVE"
    assert d["containerDefinitions"][0]["essential"] is True
    ecs.deregister_task_definition(taskDefinition=f"{fam}:3")
    assert ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]["revision"] == 2
    assert ecs.describe_task_definition(taskDefinition=arns[2])["taskDefinition"]["status"] == "INACTIVE"
    listed = ecs.list_task_definitions(familyPrefix=fam)["taskDefinitionArns"]
    assert listed == arns[:2]
    assert ecs.list_task_definitions(familyPrefix=fam, sort="DESC")["taskDefinitionArns"] == arns[:2][::-1]
    assert ecs.list_task_definitions(familyPrefix=fam, status="INACTIVE")["taskDefinitionArns"] == [arns[2]]
    pages = list(ecs.get_paginator("list_task_definitions").paginate(familyPrefix=fam, PaginationConfig={"PageSize": 1}))
    assert [p["taskDefinitionArns"] for p in pages] == [[arns[0]], [arns[1]]]
    assert fam in ecs.list_task_definition_families(familyPrefix=fam)["families"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_task_definition(taskDefinition=unique("nothing"))
    assert e.value.response["Error"]["Code"] == "ClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition=unique("nothing"))
    assert e.value.response["Error"]["Code"] == "ClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.register_task_definition(family=fam, containerDefinitions=[{**c, "essential": False}])
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert "essential" in e.value.response["Error"]["Message"]


def test_clusters_and_task_errors(srv):
    ecs, _ = clients(srv)
    name = unique("cluster")
    created = ecs.create_cluster(clusterName=name)["cluster"]
    assert created["clusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"
    assert created["status"] == "ACTIVE"
    assert ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"] == created["clusterArn"]
    arns = ecs.list_clusters()["clusterArns"]
    assert created["clusterArn"] in arns and "arn:aws:ecs:us-east-1:000000000000:cluster/default" in arns
    d = ecs.describe_clusters(clusters=[name, "default", "nope-" + name])
    assert [c["clusterName"] for c in d["clusters"]] == [name, "default"]
    assert d["failures"] == [{"arn": f"arn:aws:ecs:us-east-1:000000000000:cluster/nope-{name}", "reason": "MISSING"}]
    assert ecs.delete_cluster(cluster=name)["cluster"]["status"] == "INACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=name, taskDefinition="x")
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    # DescribeTasks: unknown tasks are MISSING failures, never an error.
    r = ecs.describe_tasks(tasks=["0" * 32, "arn:aws:ecs:us-east-1:000000000000:task/default/" + "1" * 32])
    assert r["tasks"] == []
    assert [f["reason"] for f in r["failures"]] == ["MISSING", "MISSING"]
    assert r["failures"][0]["arn"] == "arn:aws:ecs:us-east-1:000000000000:task/default/" + "0" * 32
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.stop_task(task="0" * 32)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    raw = srv.client("ecs", validate=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        raw.run_task(taskDefinition="x", count=11)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        raw.describe_tasks(tasks=[])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_list_tasks_filters_and_pages(srv):
    ecs, _ = clients(srv)
    group = unique("/tasks/list")
    fam = register(ecs, [container("main", "while true; do sleep 1; done", group, stopTimeout=1)])
    other = register(ecs, [container("main", "exit 0", group)])
    who = unique("starter")
    running = [run(ecs, fam, startedBy=who)["taskArn"] for _ in range(3)]
    quick = run(ecs, other, startedBy=who)["taskArn"]
    wait_stopped(ecs, quick)
    mine = ecs.list_tasks(startedBy=who)["taskArns"]
    assert sorted(mine) == sorted(running)
    assert ecs.list_tasks(startedBy=who, desiredStatus="STOPPED")["taskArns"] == [quick]
    assert sorted(ecs.list_tasks(family=fam)["taskArns"]) == sorted(running)
    pages = list(ecs.get_paginator("list_tasks").paginate(startedBy=who, PaginationConfig={"PageSize": 2}))
    assert [len(p["taskArns"]) for p in pages] == [2, 1]
    for arn in running:
        ecs.stop_task(task=arn)
    for arn in running:
        assert wait_stopped(ecs, arn)["stopCode"] == "UserInitiated"
    assert ecs.list_tasks(startedBy=who)["taskArns"] == []


def test_run_task_count_and_client_token(srv):
    ecs, _ = clients(srv)
    group = unique("/tasks/count")
    fam = register(ecs, [container("main", "echo hi", group)])
    r = ecs.run_task(taskDefinition=fam, count=3)
    assert len({t["taskArn"] for t in r["tasks"]}) == 3 and r["failures"] == []
    token = unique("token")
    a = ecs.run_task(taskDefinition=fam, clientToken=token)["tasks"][0]["taskArn"]
    b = ecs.run_task(taskDefinition=fam, clientToken=token)["tasks"][0]["taskArn"]
    assert a == b
    for t in r["tasks"]:
        wait_stopped(ecs, t["taskArn"])
    wait_stopped(ecs, a)


@pytest.mark.parametrize("runtime", ["docker", "process"])
def test_kill_9_while_tasks_run_never_leaves_a_task_running(runtime, new_server):
    """lookout dies mid-task. With containers it reattaches and keeps streaming (no line lost or
    duplicated); local processes cannot be reattached, so the task is stopped with a reason."""
    s = new_server(extra_args=["--runtime", runtime])
    ecs, logs = clients(s)
    group = unique("/tasks/restart")
    script = "for i in $(seq 1 25); do echo line $i; sleep 0.2; done"
    fam = register(ecs, [container("main", script, group)])
    t = run(ecs, fam)
    wait_status(ecs, t["taskArn"], "RUNNING")
    time.sleep(1.5)
    s.kill9()
    time.sleep(1.0)
    s.restart()
    ecs, logs = clients(s)
    done = wait_stopped(ecs, t["taskArn"], timeout=60)
    lines = messages(logs, group, "main", t["taskArn"])
    if runtime == "docker":
        assert done["containers"][0]["exitCode"] == 0, done
        assert lines == [f"line {i}" for i in range(1, 26)], lines
    else:
        assert "exitCode" not in done["containers"][0]
        assert "lookout restarted" in done["containers"][0]["reason"]
        assert lines == [f"line {i}" for i in range(1, len(lines) + 1)] and len(lines) >= 3
        # The orphaned process was killed: its pid file is gone with it and nothing still writes.
        time.sleep(1)
        assert messages(logs, group, "main", t["taskArn"]) == lines


def test_the_cli_runs_follows_lists_and_reads_tasks(srv):
    """`lookout tasks run --follow` prints the output and exits with the container's code."""
    import subprocess

    from lookout_harness import lookout_bin

    ecs, _ = clients(srv)
    group = unique("/tasks/cli")
    fam = register(ecs, [container("main", "echo cli one; sleep 1; echo cli two; exit 4", group)])

    def cli(*args, timeout=60):
        return subprocess.run([str(lookout_bin()), "tasks", *args], env=srv.env, capture_output=True, text=True,
                              timeout=timeout)

    r = cli("run", fam, "--follow")
    assert r.returncode == 4, r
    assert r.stdout.splitlines() == ["cli one", "cli two"]
    assert "main exited 4" in r.stderr
    r = cli("run", fam, "--env", "WHO=override", "--", "sh", "-c", "echo hello $WHO")
    assert r.returncode == 0, r
    task_id = r.stdout.strip()
    assert len(task_id) == 32
    wait_stopped(ecs, task_id)
    r = cli("logs", task_id)
    assert r.stdout.splitlines() == ["hello override"], r
    r = cli("list", "--family", fam)
    rows = r.stdout.splitlines()
    assert rows[0].split()[:4] == ["TASK", "DEFINITION", "STATUS", "EXIT"]
    assert rows[1].startswith(task_id) and " STOPPED " in rows[1] and " 0 " in rows[1]
    assert any(" 4 " in row for row in rows[2:])
    r = cli("logs", "0" * 32)
    assert r.returncode == 1 and "no task" in r.stderr
