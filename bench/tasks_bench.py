"""T1 of ../shared/design/performance.md, the task half: how long from RunTask until the task is
RUNNING, and from the container's exit until DescribeTasks says STOPPED, through boto3 against the
real `lookout serve` — with real containers (`--runtime docker`: Podman here) and with local
processes (`--runtime process`) — and `moto_server` beside it (which runs nothing: it only moves a
fake task through its states).

Figures only, never asserted. The container runs `sleep S`; "exit → STOPPED" is
stoppedAt − startedAt − S as lookout records them (startedAt is taken right after the engine's
start call returns, so this slightly over-counts), and "client sees STOPPED" is measured by polling
DescribeTasks every 10 ms.

    python3 bench/tasks_bench.py [--quick] [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server, free_port, log  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/busybox:latest"
SLEEP_S = 1.0


def ecs_client(endpoint: str):
    return boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=4))


def measure(endpoint: str, runs: int, label: str) -> dict:
    ecs = ecs_client(endpoint)
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(
        family="t1", cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": IMAGE, "command": ["sh", "-c", f"sleep {SLEEP_S}"], "memory": 64,
                               "essential": True}])
    to_running, exit_to_stopped, seen_stopped, api_ms = [], [], [], []
    for i in range(runs):
        t0 = time.perf_counter()
        r = ecs.run_task(taskDefinition="t1", launchType="FARGATE")
        api_ms.append((time.perf_counter() - t0) * 1000)
        if r.get("failures") or not r.get("tasks"):
            raise RuntimeError(f"[{label}] RunTask failed: {r.get('failures')}")
        arn = r["tasks"][0]["taskArn"]
        running_at = None
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
            now = time.perf_counter()
            if running_at is None and t["lastStatus"] in ("RUNNING", "DEPROVISIONING", "STOPPED"):
                running_at = now
            if t["lastStatus"] == "STOPPED":
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"[{label}] task {arn} never stopped")
        to_running.append((running_at - t0) * 1000)
        seen_stopped.append((now - t0) * 1000)
        if "startedAt" in t and "stoppedAt" in t and label.startswith("lookout"):
            exit_to_stopped.append((t["stoppedAt"].timestamp() - t["startedAt"].timestamp() - SLEEP_S) * 1000)
    return {"label": label, "runs": runs, "api": api_ms, "running": to_running,
            "exit_stopped": exit_to_stopped, "seen_stopped": seen_stopped}


def fmt(values: list[float]) -> str:
    if not values:
        return "—"
    v = sorted(values)
    p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
    return f"{statistics.median(v):.0f} / {p90:.0f} / {v[-1]:.0f}"


def table(results: list[dict]) -> str:
    rows = ["| server | runs | RunTask call (ms) | RunTask → RUNNING seen (ms) | container exit → STOPPED (ms) | RunTask → STOPPED seen (ms, task sleeps 1 s) |",
            "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['label']} | {r['runs']} | {fmt(r['api'])} | {fmt(r['running'])} | "
                    f"{fmt(r['exit_stopped'])} | {fmt(r['seen_stopped'])} |")
    return "\n".join(rows) + "\n\nEach cell: median / p90 / max. Goal (T1): < 300 ms to RUNNING with the image present."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 runs each (keeps the harness working)")
    ap.add_argument("--runs", type=int, help="tasks per server (default 20; quick 3)")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS-tasks.md at the repository root")
    ap.add_argument("--skip-moto", action="store_true")
    ap.add_argument("--lookout-bin", default=os.environ.get("LOOKOUT_BIN", str(REPO / "target/release/lookout")))
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 20)
    work = Path(tempfile.mkdtemp(prefix="lookout-tasks-bench-"))
    results = []
    targets = [("lookout, containers (Podman)", "docker"), ("lookout, local processes", "process")]
    for label, runtime in targets:
        port = free_port()
        srv = Server(label, [args.lookout_bin, "serve", "--listen", f"127.0.0.1:{port}", "--no-tls", "--no-auth",
                             "--data-dir", str(work / runtime), "--runtime", runtime],
                     port, "/ready", True, work / f"{runtime}.log")
        srv.start()
        try:
            results.append(measure(srv.endpoint, runs, label))
        finally:
            srv.stop()
    if not args.skip_moto:
        moto = Path(sys.executable).parent / "moto_server"
        port = free_port()
        srv = Server("moto_server (runs nothing)", [str(moto), "-H", "127.0.0.1", "-p", str(port)], port,
                     "/moto-api/", False, work / "moto.log")
        srv.start()
        try:
            results.append(measure(srv.endpoint, runs, "moto_server (runs nothing)"))
        except Exception as e:  # moto's fake lifecycle is not the point: report and go on
            log(f"[moto] {e}")
        finally:
            srv.stop()
    text = table(results)
    print(text)
    if args.write:
        import platform
        import subprocess
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
        (REPO / "BENCHMARKS-tasks.md").write_text(
            f"# lookout task benchmarks (T1)\n\nProduced by `python3 bench/tasks_bench.py --write` on "
            f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"{time.strftime('%Y-%m-%d')}, commit {commit}.\n"
            f"Podman {subprocess.run(['podman', '--version'], capture_output=True, text=True).stdout.strip()} "
            f"with runc serves the Docker Engine API.\n\n{text}\n\n{__doc__.split(chr(10) + chr(10))[1]}\n")
        log(f"wrote {REPO / 'BENCHMARKS-tasks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
