"""Apache Airflow's EcsRunTaskOperator (apache-airflow-providers-amazon), unmodified, against lookout.

Each case runs, in a subprocess (airflow_runner.py: importing Airflow reconfigures logging for the
whole process), what a DAG would: EcsRegisterTaskDefinitionOperator, then
EcsRunTaskOperator(...).execute(context) with no scheduler and no metadata database. Airflow
reaches lookout only through its `aws_default` connection (AIRFLOW_CONN_AWS_DEFAULT with
`endpoint_url` and `region_name`; no AWS_ENDPOINT_URL, no AWS_DEFAULT_REGION in its environment).
The operator's own log (Airflow's task-logging setup, JSON lines) is what the assertions read:
the container's lines arrive there through the operator's AwsTaskLogFetcher thread
(GetLogEvents on `{awslogs_stream_prefix}/{container}/{task id}`).

The tasks really run: lookout starts them through the Docker Engine API of Podman
(`/run/podman/podman.sock`, image `localhost/busybox:latest`: FROM scratch, a static busybox,
ENTRYPOINT /bin/busybox, so commands are `["sh", "-c", ...]`); scripts/setup-podman.sh sets both
up. The server is configured through its environment (what `--runtime` and `--docker-host` read),
so that a lookout built without those options still starts:
  LOOKOUT_RUNTIME=docker and DOCKER_HOST=unix:///run/podman/podman.sock
  (LOOKOUT_AIRFLOW_RUNTIME=process runs the same cases with LOOKOUT_RUNTIME=process: the commands
  then run on the host, where `sh -c` means the same);
  LOOKOUT_AIRFLOW_SERVE_ARGS adds `lookout serve` flags (split like a shell would).

Timing: waiter_delay=1 (DescribeTasks every second), awslogs_fetch_interval=1 s, container_name given
(else the operator sleeps 10 s before reading it from DescribeTasks — one slow case covers that).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lookout_harness import LookoutServer, ServerStartError, make_server, unique

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "airflow_runner.py"
IMAGE = "localhost/busybox:latest"
PODMAN_SOCKET = "/run/podman/podman.sock"
CLUSTER = "default"
PREFIX = "ecs"
CONTAINER = "main"
OP_LOGGER = "airflow.task.operators.airflow.providers.amazon.aws.operators.ecs.EcsRunTaskOperator"
# AwsTaskLogFetcher.event_to_str: "[%Y-%m-%d %H:%M:%S,mmm] message"
FETCHED_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] (.*)$", re.S)
TASK_ARN = re.compile(r"^arn:aws:ecs:us-east-1:000000000000:task/default/([0-9a-f]{32})$")
RUNNER_TIMEOUT = 150


def runtime() -> str:
    return os.environ.get("LOOKOUT_AIRFLOW_RUNTIME", "docker")


# ----- lookout with a container runtime ------------------------------------------------------------

def _require_podman() -> None:
    """Podman's API socket and the image the tasks run: scripts/setup-podman.sh sets up both."""
    hint = "run scripts/setup-podman.sh (or set LOOKOUT_AIRFLOW_RUNTIME=process)"
    if not Path(PODMAN_SOCKET).exists():
        pytest.fail(f"no Podman API socket at {PODMAN_SOCKET}: {hint}", pytrace=False)
    podman = shutil.which("podman")
    if podman is None:
        pytest.fail(f"podman is not installed: {hint}", pytrace=False)
    if subprocess.run([podman, "image", "exists", IMAGE]).returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing: {hint}", pytrace=False)


@pytest.fixture(scope="module")
def ecs_server(tmp_path_factory) -> LookoutServer:
    env = {"LOOKOUT_RUNTIME": runtime()}
    if runtime() == "docker":
        _require_podman()
        env["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET}"
    extra = shlex.split(os.environ.get("LOOKOUT_AIRFLOW_SERVE_ARGS", ""))
    srv = make_server(tmp_path_factory.mktemp("airflow-ecs"), extra_args=extra)
    with pytest.MonkeyPatch.context() as mp:  # the server process inherits os.environ
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            srv.start()
        except ServerStartError as e:
            pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture
def alive(ecs_server):
    yield ecs_server
    if not ecs_server.alive():
        pytest.fail(f"lookout died during the test; output:\n{ecs_server.output()}", pytrace=False)


# ----- running Airflow -----------------------------------------------------------------------------

@dataclass
class AirflowRun:
    """One airflow_runner.py process: its result file, its task log records, its own output."""
    workdir: Path
    home: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)
    result: dict = field(default_factory=dict, repr=False)
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "task.log"

    def records(self) -> list[dict]:
        out = []
        if not self.log_path.exists():
            return out
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by SIGKILL
                pass
        return out

    def op_records(self) -> list[dict]:
        return [r for r in self.records() if r.get("logger") == OP_LOGGER]

    def op_events(self) -> list[str]:
        return [r["event"] for r in self.op_records()]

    def container_lines(self) -> list[str]:
        """The task's output lines as the operator logged them (AwsTaskLogFetcher)."""
        return [m.group(1) for e in self.op_events() if (m := FETCHED_LINE.match(e))]

    def text(self) -> str:
        log = "\n".join(f"{r.get('level')} {r.get('logger')}: {r.get('event')}" for r in self.records())
        return (f"--- Airflow task log ({self.log_path})\n{log}\n--- runner stdout\n{self.stdout[-4000:]}"
                f"\n--- runner stderr\n{self.stderr[-4000:]}")

    def step(self, operator: str) -> dict:
        for s in self.result.get("steps", []):
            if s["operator"] == operator:
                return s
        raise AssertionError(f"{operator} never ran; result {self.result}\n{self.text()}")

    def ok(self, operator: str, server: LookoutServer):
        """The step's return value; fails with its traceback, the task log and lookout's output."""
        __tracebackhide__ = True
        s = self.step(operator)
        if not s["ok"]:
            raise AssertionError(f"{operator}.execute raised {s['exc_type']}: {s['exc']}\n{s['traceback']}\n"
                                 f"{self.text()}\n--- lookout output\n{server.output(6000)}")
        return s["return"]

    def failed(self, operator: str, server: LookoutServer) -> dict:
        __tracebackhide__ = True
        s = self.step(operator)
        if s["ok"]:
            raise AssertionError(f"{operator}.execute did not raise (returned {s['return']!r})\n{self.text()}"
                                 f"\n--- lookout output\n{server.output(6000)}")
        return s

    def event(self, pattern: str) -> re.Match:
        """The first operator log record matching `pattern` (re.search)."""
        __tracebackhide__ = True
        for e in self.op_events():
            if m := re.search(pattern, e, re.S):
                return m
        raise AssertionError(f"no operator log record matches {pattern!r}\n{self.text()}")


def airflow_env(server: LookoutServer, home: Path) -> dict[str, str]:
    """Only the `aws_default` connection points Airflow at lookout (endpoint and region)."""
    env = {k: v for k, v in server.env.items()
           if not k.startswith("AIRFLOW") and k not in (
               "AWS_ENDPOINT_URL", "LOOKOUT_ENDPOINT", "AWS_DEFAULT_REGION", "AWS_REGION")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws",
            "extra": {"endpoint_url": server.endpoint, "region_name": server.region}}),
        # server.env already holds dummy AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and an empty
        # AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE of its own.
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_airflow(server: LookoutServer, tmp_path: Path, steps: list[dict], ti: dict | None = None) -> AirflowRun:
    workdir = Path(tempfile.mkdtemp(prefix="airflow-", dir=tmp_path))
    run = AirflowRun(workdir=workdir, home=workdir / "airflow-home")
    run.home.mkdir()
    spec = {
        "log_path": str(run.log_path),
        "result_path": str(workdir / "result.json"),
        "ti": ti or {"dag_id": unique("dag"), "task_id": "ecs_task", "run_id": unique("run"), "map_index": -1},
        "steps": steps,
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    run.proc = subprocess.Popen([sys.executable, str(RUNNER), str(workdir / "spec.json")],
                                stdout=open(workdir / "stdout", "wb"), stderr=open(workdir / "stderr", "wb"),
                                stdin=subprocess.DEVNULL, env=airflow_env(server, run.home),
                                cwd=str(workdir), start_new_session=True)
    return run


def finish_airflow(run: AirflowRun, timeout: float = RUNNER_TIMEOUT) -> AirflowRun:
    try:
        run.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()
        run.stdout = (run.workdir / "stdout").read_text(errors="replace")
        run.stderr = (run.workdir / "stderr").read_text(errors="replace")
        raise AssertionError(f"the Airflow runner did not finish in {timeout}s\n{run.text()}")
    run.stdout = (run.workdir / "stdout").read_text(errors="replace")
    run.stderr = (run.workdir / "stderr").read_text(errors="replace")
    result = run.workdir / "result.json"
    if run.proc.returncode != 0 or not result.exists():
        raise AssertionError(f"the Airflow runner exited with {run.proc.returncode}\n{run.text()}")
    run.result = json.loads(result.read_text())
    return run


def run_airflow(server, tmp_path, steps, ti=None) -> AirflowRun:
    return finish_airflow(start_airflow(server, tmp_path, steps, ti))


def register_step(family: str, group: str, command: list[str]) -> dict:
    """EcsRegisterTaskDefinitionOperator: one essential container logging through awslogs."""
    return {"operator": "EcsRegisterTaskDefinitionOperator", "kwargs": {
        "family": family,
        "container_definitions": [{
            "name": CONTAINER, "image": IMAGE, "essential": True, "memory": 128, "command": command,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": PREFIX, "awslogs-create-group": "true"}},
        }],
    }}


def run_step(family: str, awslogs_group: str, **kw) -> dict:
    """EcsRunTaskOperator with its defaults (launch_type EC2, do_xcom_push on) but fast polling."""
    kwargs = {
        "task_definition": family, "cluster": CLUSTER, "overrides": {},
        "awslogs_group": awslogs_group, "awslogs_stream_prefix": PREFIX, "container_name": CONTAINER,
        "waiter_delay": 1, "waiter_max_attempts": 60, "awslogs_fetch_interval": 1,
    }
    kwargs.update(kw)
    return {"operator": "EcsRunTaskOperator", "kwargs": kwargs}


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def task_id_of(run: AirflowRun) -> str:
    arn = run.result["xcom"].get("ecs_task_arn")
    m = TASK_ARN.match(arn or "")
    assert m, f"xcom ecs_task_arn {arn!r} is not a task ARN of cluster default\n{run.text()}"
    return m.group(1)


def stream_messages(server: LookoutServer, group: str, stream: str) -> list[str]:
    r = server.logs().get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in r["events"]]


def assert_no_fetch_errors(run: AirflowRun) -> None:
    """AwsTaskLogFetcher logs any GetLogEvents error other than ResourceNotFound as a warning."""
    bad = [e for e in run.op_events()
           if "Error on retrieving Cloudwatch log events" in e or "ConnectionClosedError" in e]
    assert not bad, f"GetLogEvents failed while the operator followed the task: {bad}\n{run.text()}"


# ----- cases ---------------------------------------------------------------------------------------

def test_task_exits_0_and_its_lines_reach_airflows_log(alive, tmp_path):
    server = alive
    tag = unique("ok")
    family, group = unique("af"), unique("/compat/airflow")
    # lines over ~2 s on stdout and stderr, so the fetcher (1 s) polls a growing stream
    script = f'echo "first {tag}"; sleep 1; echo "second {tag}" >&2; sleep 1; echo "third {tag}"'
    run = run_airflow(server, tmp_path, [register_step(family, group, sh(script)), run_step(family, group)])

    td_arn = run.ok("EcsRegisterTaskDefinitionOperator", server)
    assert td_arn == f"arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"
    ret = run.ok("EcsRunTaskOperator", server)
    task_id = task_id_of(run)
    run.event(rf"^ECS task ID is: {task_id}$")

    # every line once, in order, through the operator's logger at INFO
    assert run.container_lines() == [f"first {tag}", f"second {tag}", f"third {tag}"], run.text()
    assert all(r["level"] == "info" for r in run.op_records() if FETCHED_LINE.match(r["event"]))
    assert_no_fetch_errors(run)
    # do_xcom_push (the default): execute returns the last line (GetLogEvents startFromHead=False, limit=1)
    assert ret == f"third {tag}"
    stopped = run.event(r"^ECS Task stopped, check status: (.*)$").group(1)
    assert re.search(r"'exitCode': 0\b", stopped) and "'lastStatus': 'STOPPED'" in stopped, stopped

    # the awslogs naming the operator relies on, seen through lookout's Logs API
    assert stream_messages(server, group, f"{PREFIX}/{CONTAINER}/{task_id}") == \
        [f"first {tag}", f"second {tag}", f"third {tag}"]
    # no metadata database was needed
    assert not list(run.home.rglob("*.db")), list(run.home.rglob("*"))


def test_task_exits_3_and_the_operator_raises_with_the_last_lines(alive, tmp_path):
    server = alive
    tag = unique("fail")
    family, group = unique("af"), unique("/compat/airflow")
    script = "; ".join(f'echo "line-{i} {tag}"' for i in range(1, 6)) + "; exit 3"
    run = run_airflow(server, tmp_path, [register_step(family, group, sh(script)),
                                         run_step(family, group, number_logs_exception=3)])

    run.ok("EcsRegisterTaskDefinitionOperator", server)
    s = run.failed("EcsRunTaskOperator", server)
    assert s["exc_type"].endswith(".AirflowException"), s
    # _check_success_task: the container STOPPED with exitCode 3 -> the last number_logs_exception
    # lines, read with GetLogEvents(startFromHead=False, limit=3), oldest first
    assert s["exc"] == ("This task is not in success state - last 3 logs from Cloudwatch:\n"
                        f"line-3 {tag}\nline-4 {tag}\nline-5 {tag}"), s["exc"]
    stopped = run.event(r"^ECS Task stopped, check status: (.*)$").group(1)
    assert re.search(r"'exitCode': 3\b", stopped), stopped
    assert "'stoppedReason': 'Essential container in task exited'" in stopped, stopped
    assert run.container_lines() == [f"line-{i} {tag}" for i in range(1, 6)], run.text()
    assert_no_fetch_errors(run)
    task_id_of(run)


@pytest.mark.parametrize("exit_code", [0, 3])
def test_wrong_awslogs_group_is_only_logged_and_the_exit_code_decides(alive, tmp_path, exit_code):
    """The task definition logs to group A, the operator reads group B. AwsTaskLogFetcher treats
    ResourceNotFoundException as "not there yet": it logs it at INFO on every poll and goes on; the
    outcome is the exit code's, with no lines in Airflow's log (task_log_fetcher.py,
    AwsTaskLogFetcher._get_log_events and get_last_log_messages)."""
    server = alive
    tag = unique("wrong")
    family, group_a, group_b = unique("af"), unique("/compat/airflow-a"), unique("/compat/airflow-b")
    script = f'echo "one {tag}"; sleep 1; echo "two {tag}"; exit {exit_code}'
    run = run_airflow(server, tmp_path, [register_step(family, group_a, sh(script)), run_step(family, group_b)])

    run.ok("EcsRegisterTaskDefinitionOperator", server)
    if exit_code == 0:
        # nothing to return: get_last_log_message() found no stream
        assert run.ok("EcsRunTaskOperator", server) is None
    else:
        s = run.failed("EcsRunTaskOperator", server)
        assert s["exc_type"].endswith(".AirflowException"), s
        assert s["exc"] == "This task is not in success state - last 10 logs from Cloudwatch:\n", s["exc"]
    task_id = task_id_of(run)
    stream = f"{PREFIX}/{CONTAINER}/{task_id}"
    run.event(r"^Cannot find log stream yet, it can take a couple of seconds to show up\. If this error "
              rf"persists, check that the log group and stream are correct: group: {re.escape(group_b)}"
              rf"\tstream: {re.escape(stream)}$")
    # the final read for the xcom value / the exception's lines, logged as a warning
    warnings = [r["event"] for r in run.op_records() if r["level"] == "warning"]
    assert ("Cannot find log stream, check that the log group and stream are correct: "
            f"group: {group_b}\tstream: {stream}") in warnings, run.text()
    assert run.container_lines() == [], run.text()
    assert_no_fetch_errors(run)  # ResourceNotFound is not one of them
    stopped = run.event(r"^ECS Task stopped, check status: (.*)$").group(1)
    assert re.search(rf"'exitCode': {exit_code}\b", stopped), stopped

    # the lines went to group A; group B was never created
    assert stream_messages(server, group_a, stream) == [f"one {tag}", f"two {tag}"]
    assert server.logs().describe_log_groups(logGroupNamePrefix=group_b)["logGroups"] == []


@pytest.mark.slow
def test_reattach_after_the_worker_died(alive, tmp_path):
    """reattach=True: the first worker starts the task and is SIGKILLed; the retry finds it with
    ListTasks(desiredStatus=RUNNING, startedBy=<uuid of dag/task/run/map index>) and follows it to
    the end instead of starting another."""
    server = alive
    tag = unique("reattach")
    family, group = unique("af"), unique("/compat/airflow")
    ti = {"dag_id": unique("dag"), "task_id": "ecs_task", "run_id": unique("run"), "map_index": -1}
    script = f'echo "before {tag}"; sleep 10; echo "after {tag}"'

    first = start_airflow(server, tmp_path, [register_step(family, group, sh(script)),
                                             run_step(family, group, reattach=True)], ti)
    deadline = time.monotonic() + 60
    task_id = None
    while time.monotonic() < deadline and first.proc.poll() is None:
        for e in first.op_events():
            if m := re.match(r"^ECS task ID is: (\S+)$", e):
                task_id = m.group(1)
        if task_id:
            break
        time.sleep(0.1)
    if first.proc.poll() is None:
        os.killpg(first.proc.pid, signal.SIGKILL)  # the worker dies; the task goes on
        first.proc.wait()
    first.stdout = (first.workdir / "stdout").read_text(errors="replace")
    first.stderr = (first.workdir / "stderr").read_text(errors="replace")
    if not task_id:
        result = first.workdir / "result.json"
        steps = json.loads(result.read_text())["steps"] if result.exists() else []
        why = "; ".join(f"{st['operator']}: {st['exc_type']}: {st['exc']}" for st in steps if not st["ok"])
        raise AssertionError(f"the first worker never started the task ({why or 'no error'})\n{first.text()}")
    started_by = first.event(r"^Try to find run with startedBy='([0-9a-f-]+)'$").group(1)
    first.event(r"^No active previously launched task found to reattach$")

    second = run_airflow(server, tmp_path, [run_step(family, group, reattach=True)], ti)
    ret = second.ok("EcsRunTaskOperator", server)
    arn = second.result["xcom"]["ecs_task_arn"]
    assert TASK_ARN.match(arn) and arn.endswith("/" + task_id), arn
    second.event(rf"^Try to find run with startedBy='{started_by}'$")
    second.event(rf"^Reattaching previously launched task: {re.escape(arn)}$")
    assert not [e for e in second.op_events() if e.startswith("ECS Task started")], second.text()
    assert second.container_lines() == [f"before {tag}", f"after {tag}"], second.text()
    assert ret == f"after {tag}"
    assert_no_fetch_errors(second)

    ecs = server.client("ecs")
    assert ecs.list_tasks(cluster=CLUSTER, startedBy=started_by, desiredStatus="RUNNING")["taskArns"] == []
    assert ecs.list_tasks(cluster=CLUSTER, startedBy=started_by, desiredStatus="STOPPED")["taskArns"] == [arn]
    task = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert task["startedBy"] == started_by and task["lastStatus"] == "STOPPED"


@pytest.mark.slow
def test_container_name_read_from_describe_tasks(alive, tmp_path):
    """Without container_name the operator sleeps 10 s, then reads containers[0].name from
    DescribeTasks (the task has stopped by then: it must still be described) to build the stream
    name."""
    server = alive
    tag = unique("noname")
    family, group = unique("af"), unique("/compat/airflow")
    run = run_airflow(server, tmp_path, [register_step(family, group, sh(f'echo "only {tag}"')),
                                         run_step(family, group, container_name=None)])
    run.ok("EcsRegisterTaskDefinitionOperator", server)
    assert run.ok("EcsRunTaskOperator", server) == f"only {tag}"
    assert not [e for e in run.op_events() if e.startswith("Could not find container name")], run.text()
    assert run.container_lines() == [f"only {tag}"], run.text()
    assert_no_fetch_errors(run)
