"""Runs Apache Airflow's amazon-provider ECS operators, unmodified, outside any scheduler.

Used by test_airflow_ecs.py in a subprocess, because importing Airflow reconfigures logging
(structlog, stdlib root handlers) for the whole process and reads AIRFLOW_HOME once:

    python airflow_runner.py SPEC.json

SPEC.json:
    {"log_path": "...",        # Airflow's task log, written as JSON lines (one log record each)
     "result_path": "...",     # what happened, as JSON (below)
     "ti": {"dag_id": "...", "task_id": "...", "run_id": "...", "map_index": -1},
     "steps": [{"operator": "EcsRegisterTaskDefinitionOperator", "kwargs": {...}},
               {"operator": "EcsRunTaskOperator", "kwargs": {..., "awslogs_fetch_interval": 1}}]}

Each step builds the operator from its kwargs (task_id defaults to ti.task_id;
`awslogs_fetch_interval` is given in seconds) and calls `operator.execute(context)`, as a worker
would. The steps stop at the first exception. The result file holds
    {"steps": [{"operator", "ok", "return", "exc_type", "exc", "traceback"}], "xcom": {key: value}}.

The caller prepares the environment: AIRFLOW_HOME (a temp dir; no metadata database is created or
needed), AIRFLOW_CONN_AWS_DEFAULT with `endpoint_url` and `region_name`, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY. The operators' log goes through Airflow's own task-logging setup
(`airflow.sdk.log.configure_logging(json_output=True)`, what the task runner uses) into log_path,
unbuffered, so a caller can watch it while the operator runs.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import timedelta


class TaskInstance:
    """What an operator reads from context["ti"] outside a scheduler: its identity (the key of
    `reattach`'s deterministic startedBy) and xcom_push, recorded for the caller."""

    def __init__(self, dag_id: str, task_id: str, run_id: str, map_index: int = -1):
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.map_index = map_index
        self.try_number = 1
        self.xcom: dict = {}

    def xcom_push(self, key, value, **_kw):
        self.xcom[key] = value

    def xcom_pull(self, *_a, **_kw):
        return None


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def main(spec_path: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)

    # Airflow's own task-log setup: JSON lines, as the task runner sends to its supervisor.
    log_io = open(spec["log_path"], "wb", buffering=0)
    from airflow.sdk.log import configure_logging

    configure_logging(json_output=True, output=log_io, colored_console_log=False)

    from airflow.providers.amazon.aws.operators import ecs as ecs_operators

    ti = TaskInstance(**spec["ti"])
    context = {"ti": ti, "task_instance": ti}
    results = []
    for step in spec["steps"]:
        name = step["operator"]
        if name not in ("EcsRegisterTaskDefinitionOperator", "EcsRunTaskOperator"):
            raise SystemExit(f"airflow_runner: unsupported operator {name}")
        kwargs = dict(step.get("kwargs", {}))
        kwargs.setdefault("task_id", ti.task_id)
        if "awslogs_fetch_interval" in kwargs:
            kwargs["awslogs_fetch_interval"] = timedelta(seconds=kwargs["awslogs_fetch_interval"])
        res = {"operator": name, "ok": False, "return": None, "exc_type": None, "exc": None,
               "traceback": None}
        results.append(res)
        try:
            op = getattr(ecs_operators, name)(**kwargs)
            res["return"] = _jsonable(op.execute(context))
            res["ok"] = True
        except BaseException as e:  # noqa: BLE001 — AirflowException, ClientError, WaiterError...
            res["exc_type"] = f"{type(e).__module__}.{type(e).__qualname__}"
            res["exc"] = str(e)
            res["traceback"] = traceback.format_exc()
        _write(spec["result_path"], results, ti)
        if not res["ok"]:
            break
    _write(spec["result_path"], results, ti)
    return 0


def _write(path: str, results: list, ti: TaskInstance) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump({"steps": results, "xcom": {k: _jsonable(v) for k, v in ti.xcom.items()}}, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
