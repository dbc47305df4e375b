#!/usr/bin/env python3
"""lookout's benchmark suite, W1-W5, with the Rust load generator, moto side by side.

Builds nothing. Expects `target/release/lookout` and `target/release/lookout-bench` (or
`target/bench/release/lookout-bench`). Starts lookout (fresh temp data dir, free port, waits for
GET /health), runs W1 ingest (with a W4 GetLogEvents reader beside it), a kill -9 and restart (W5),
the W3 queries (with `rg -j1` on the same data) and a second kill -9, stops it; then W2 (text and
JSON compression) and W5 retention in fresh servers (bench/storage_ops.py); then the same W1
against `moto_server`, and prints a markdown table. `--write` also writes BENCHMARKS.md at the
repository root. See bench/README.md.

    python3 bench/suite.py --quick           # well under a minute; CI keeps the harness alive with it
    python3 bench/suite.py --write           # W1 1M events / 1,000 streams / 32 clients, W3 10 GB (~15 min)
    python3 bench/suite.py --w3-mb 1000      # W3 at 1 GB, the issue's quick mode (~5 min)

Standard library only. Exits non-zero only if a server fails (to start, or dies) or requests fail;
never because of speed. Wrong answers are flagged in the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import storage_ops
from servers import Server, free_port, log

REPO = Path(__file__).resolve().parent.parent


def run_tool(argv: list[str], label: str, timeout: float) -> tuple[int, str]:
    """Runs lookout-bench; its stdout (the human summary) is echoed to stderr and returned."""
    log(f"[{label}] {' '.join(argv)}")
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"[{label}] timed out after {timeout:.0f} s")
        return 124, ""
    for line in (p.stdout + p.stderr).splitlines():
        log(f"[{label}]   {line}")
    return p.returncode, p.stdout


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


# lookout's default flush interval (`--flush-interval-secs`), which the suite's server keeps.
FLUSH_INTERVAL_S = 60


def wait_until_idle(pid: int, label: str, limit: float = 180.0, window: float = 2.0, busy: float = 0.10,
                    not_before: float = 0.0) -> float:
    """Waits until process `pid` uses less than `busy` cores over `window` seconds (background
    flushes and merges done), at most `limit` seconds, and not before `not_before` (a
    `time.monotonic()` instant); returns the seconds waited."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    started = time.monotonic()
    time.sleep(max(0.0, not_before - started))
    try:
        while time.monotonic() - started < limit:
            before = cpu_seconds()
            time.sleep(window)
            if (cpu_seconds() - before) / window < busy:
                break
    except OSError:
        pass
    waited = time.monotonic() - started
    log(f"[{label}] server idle after {waited:.0f} s (background flushes and merges)")
    return waited


def fsync_probe(directory: Path, n: int = 40) -> float:
    """Milliseconds per 4 KiB write + fdatasync in `directory` (the disk lookout's WAL waits on)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        buf = b"x" * 4096
        t = time.perf_counter()
        for _ in range(n):
            os.write(fd, buf)
            os.fdatasync(fd)
        return (time.perf_counter() - t) / n * 1000
    finally:
        os.close(fd)
        path.unlink()


# ------------------------------------------------------------------------------------------------
# the runs
# ------------------------------------------------------------------------------------------------


def ingest(bench: Path, srv: Server, work: Path, tag: str, events: int, streams: int, clients: int,
           extra: list[str], timeout: float) -> dict:
    out = work / f"{tag}.json"
    argv = [str(bench), "ingest", "--endpoint", srv.endpoint, "--events", str(events), "--streams", str(streams),
            "--clients", str(clients), "--server-pid", str(srv.proc.pid), "--json", str(out), *extra]
    rc, _ = run_tool(argv, tag, timeout)
    res = read_json(out) or {}
    res["exit_code"] = rc
    res["server_alive"] = srv.alive()
    return res


def median_run(runs: list[dict]) -> dict:
    """The run with the median events/s (of an even number, the slower middle one); every run's
    events/s is kept in it as `runs_events_per_s`, in the order they ran."""
    ok = [r for r in runs if r.get("exit_code") == 0 and r.get("events_per_s")]
    if not ok:
        return runs[-1]
    pick = dict(sorted(ok, key=lambda r: r["events_per_s"])[(len(ok) - 1) // 2])
    pick["runs_events_per_s"] = [r.get("events_per_s") for r in runs]
    return pick


def run_lookout(args, bench: Path, lookout: Path, work: Path, results: dict) -> bool:
    data = work / "lookout-data"
    data.mkdir()
    results["fsync_ms"] = fsync_probe(data)
    port = free_port()
    # No recompression at rest on this server (it is measured on its own, `w3_at_rest`): W1's
    # partitions, quiet for the default 5 minutes, were recompressed beside W3's timed queries.
    srv = Server("lookout", [str(lookout), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                               "--no-auth", "--compact-at-rest-after-secs", "3600"],
                 port, "/health", True, work / "lookout.log", data)
    ok = True
    srv.start()
    try:
        # W4: a reader on W1's most popular stream while W1 ingests (closed, then open loop)
        reader = storage_ops.StreamReader(srv.endpoint, "/bench/w1")
        reader.start()
        # A one-second burst moves ±30 % from run to run on this kind of machine: the closed loop
        # runs a few times (into the same group, so the reader's stream keeps growing) and the
        # median run is reported.
        def closed_loop(k: int) -> dict:
            return ingest(bench, srv, work, f"lookout-w1-run{k}", args.w1_events, args.streams, args.clients, [],
                          args.timeout)

        runs = [closed_loop(1)]
        # W1 open loop, right after the first run (on the data of one run, as with a single run):
        # the same kind of data offered at a fixed rate below the maximum just measured, so
        # latency is not just queueing behind 32 closed-loop clients. After several bursts the
        # store is busy merging them, and 70 % of a burst's rate is more than it can then take.
        first = runs[0]
        if first["exit_code"] == 0 and first["server_alive"] and first.get("mb_per_s"):
            rate = max(1.0, round(first["mb_per_s"] * args.open_fraction, 1))
            w1o = ingest(bench, srv, work, "lookout-w1-open", args.w1_events, args.streams, args.clients,
                         ["--group", "/bench/w1-open", "--seed", "2", "--rate-mb", str(rate)], args.timeout)
            results["lookout_w1_open"] = w1o
            ok &= w1o["exit_code"] == 0 and w1o["server_alive"]
        for k in range(2, args.w1_runs + 1):
            if not ok or runs[-1]["exit_code"] != 0 or not runs[-1]["server_alive"]:
                break
            runs.append(closed_loop(k))
        results["lookout_w1"] = median_run(runs)
        ok &= all(r["exit_code"] == 0 and r["server_alive"] for r in runs)
        results["lookout_w4"] = reader.stop()

        # W5: kill -9 during an ingest, then time the restart to /ready (again after W3, with more stored)
        if ok:
            results["lookout_w5_restart"] = [
                storage_ops.kill9_and_restart(srv, bench, work, "after-w1", args.streams, args.timeout)]
            ok &= srv.alive()

        # W3: a second group with timestamps over 24 h, written raw for rg as it is generated
        raw = work / "w3-raw.log"
        manifest = work / "w3-manifest.json"
        w3_events = max(1000, int(args.w3_mb * 1e6 / 172))  # ~172 B per message on average
        w3i = ingest(bench, srv, work, "lookout-w3-ingest", w3_events, args.streams, args.clients,
                     ["--group", "/bench/w3", "--span-secs", "86100", "--seed", "7", "--raw-out", str(raw),
                      "--manifest", str(manifest), "--chunk-events", "2000000"], args.timeout)
        ingest_end = time.monotonic()
        results["lookout_w3_ingest"] = w3i
        ok &= w3i["exit_code"] == 0 and w3i["server_alive"]
        results["lookout_rss_after_ingest"] = w3i.get("server", {}).get("rss_after_1s_bytes")
        results["lookout_data_dir_bytes"] = dir_size(data)
        if ok:
            # Queries measure the scan, not the scan beside the flush and merges that the ingest
            # started: the ingest's last events stay in memory until the flush interval (60 s)
            # has passed, and their flush then starts merges, which the merger looks for every 5 s.
            # (Not in the quick mode, which checks the harness and times nothing that matters.)
            flushed = 0.0 if args.quick else ingest_end + FLUSH_INTERVAL_S + 2
            results["lookout_w3_idle_wait_s"] = wait_until_idle(
                srv.proc.pid, "lookout-w3", window=6.0, not_before=flushed)
            out = work / "w3.json"
            rg = ["--rg-file", str(raw), "--rg-bin", args.rg] if args.rg else []
            rc, table = run_tool([str(bench), "filter", "--endpoint", srv.endpoint, "--manifest", str(manifest),
                                  *rg, "--repeat", str(args.repeat), "--max-seconds", str(args.timeout / 4),
                                  "--json", str(out)], "lookout-w3", args.timeout)
            results["lookout_w3"] = read_json(out) or {}
            results["lookout_w3"]["exit_code"] = rc
            results["lookout_w3_table"] = table
            ok &= rc == 0 and srv.alive()
        if ok:
            results["lookout_w5_restart"].append(
                storage_ops.kill9_and_restart(srv, bench, work, "after-w3", args.streams, args.timeout))
            ok &= srv.alive()
        # W5: merges keep the parts of each (group, day) few
        results["lookout_parts"] = storage_ops.part_stats(
            [p for ps in storage_ops.part_files(data).values() for p in ps])
        results["lookout_w3_blocks_per_gb"] = storage_ops.blocks_per_gb(data)
        results["fsync_ms_after"] = fsync_probe(data)
        if not srv.alive():
            log("[lookout] the server died:\n" + srv.log_tail())
            results["lookout_died"] = True
    finally:
        srv.stop()
    if ok and results.get("lookout_w3"):
        results["lookout_w3_at_rest"] = w3_at_rest(bench, lookout, data, work, manifest, args.timeout)
    # W2: compression of text and of JSON, each alone, every byte of the part files counted
    results["lookout_w2"] = storage_ops.run_w2(bench, lookout, work, ingest, args.w2_mb, args.timeout)
    # W5: dropping a day for retention (the store's pass runs every 60 s: not in quick mode)
    if not args.quick:
        results["lookout_w5_retention"] = storage_ops.run_retention(bench, lookout, work, ingest, args.w2_mb,
                                                                    args.timeout)
        # W5: restart with as many part blocks as ~100 GB of W3's data makes
        results["lookout_w5_index"] = storage_ops.run_restart_with_large_index(
            bench, lookout, work, ingest, (args.w1_events, args.streams, args.clients), args.timeout)
    return ok


def moto_version(moto: str) -> str:
    py = Path(moto).parent / "python"
    if py.is_file():
        try:
            return subprocess.run([str(py), "-c", "import moto; print(moto.__version__)"], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "?"


def run_moto(args, bench: Path, moto: str, work: Path, results: dict) -> bool:
    # Each run in a fresh moto (it slows down as it stores more), the median reported as for lookout.
    runs = []
    for k in range(args.w1_runs):
        port = free_port()
        srv = Server("moto", [moto, "-H", "127.0.0.1", "-p", str(port)], port, "/moto-api/", False,
                     work / f"moto-{k + 1}.log")
        srv.start()
        try:
            runs.append(ingest(bench, srv, work, f"moto-w1-run{k + 1}", args.moto_events, args.streams, args.clients,
                               [], args.timeout))
        finally:
            srv.stop()
        if runs[-1]["exit_code"] != 0 or not runs[-1]["server_alive"]:
            break
    results["moto_w1"] = median_run(runs)
    return all(r["exit_code"] == 0 and r["server_alive"] for r in runs)


# ------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------


def fmt_ms(v) -> str:
    if v is None:
        return "—"
    return f"{v:,.1f} ms" if v < 1000 else f"{v / 1000:,.2f} s"


def fmt_mb(v) -> str:
    return "—" if v is None else f"{v / 1e6:,.0f} MB"


def ratio(a, b, digits: int = 1) -> str:
    if a is None or b is None or not b:
        return ""
    return f"{a / b:,.{digits}f}x"


def mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓ " if ok else "✗ ")


def w1_rows(lk: dict | None, mo: dict | None) -> list[tuple[str, str, str, str, str]]:
    lk, mo = lk or {}, mo or {}
    rows = []

    def g(d, *path):
        for p in path:
            if not isinstance(d, dict):
                return None
            d = d.get(p)
        return d

    le, me = g(lk, "events_per_s"), g(mo, "events_per_s")
    lm, mm = g(lk, "mb_per_s"), g(mo, "mb_per_s")
    r = le / me if le and me else None
    rows.append(("W1 ingest events/s", "≥ 20x moto",
                 mark(r >= 20 if r else None) + (f"{le:,.0f}" if le else "—"), f"{me:,.0f}" if me else "—",
                 ratio(le, me)))
    rows.append(("W1 ingest MB/s (message bytes)", "≥ 150 MB/s",
                 mark(lm >= 150 if lm else None) + (f"{lm:,.1f}" if lm else "—"), f"{mm:,.1f}" if mm else "—",
                 ratio(lm, mm)))
    lp50, lp99, lmax = g(lk, "latency_ms", "p50"), g(lk, "latency_ms", "p99"), g(lk, "latency_ms", "max")
    mp50, mp99, mmax = g(mo, "latency_ms", "p50"), g(mo, "latency_ms", "p99"), g(mo, "latency_ms", "max")
    rows.append(("W1 PutLogEvents p50", "", fmt_ms(lp50), fmt_ms(mp50), ratio(mp50, lp50)))
    rows.append(("W1 PutLogEvents p99", "< 25 ms", mark(lp99 < 25 if lp99 is not None else None) + fmt_ms(lp99),
                 fmt_ms(mp99), ratio(mp99, lp99)))
    rows.append(("W1 PutLogEvents max", "", fmt_ms(lmax), fmt_ms(mmax), ratio(mmax, lmax)))
    lr, mr = g(lk, "server", "rss_max_during_bytes"), g(mo, "server", "rss_max_during_bytes")
    rows.append(("W1 server RSS, max during ingest", "< 512 MB", mark(lr < 512e6 if lr else None) + fmt_mb(lr),
                 fmt_mb(mr), ratio(mr, lr)))
    lc, mc = g(lk, "server", "cores_busy"), g(mo, "server", "cores_busy")
    rows.append(("W1 server CPU (cores busy, of 2)", "", f"{lc:.2f}" if lc is not None else "—",
                 f"{mc:.2f}" if mc is not None else "—", ""))
    cc = [g(d, "client_cpu_seconds") for d in (lk, mo)]
    secs = [g(d, "seconds") for d in (lk, mo)]
    rows.append(("W1 load generator CPU (cores busy)", "",
                 f"{cc[0] / secs[0]:.2f}" if cc[0] is not None and secs[0] else "—",
                 f"{cc[1] / secs[1]:.2f}" if cc[1] is not None and secs[1] else "—", ""))

    def fails(d):
        if not d:
            return "—"
        s = f"{d.get('failed_requests', 0)} failed / {d.get('requests', 0):,} sent"
        if d.get("throttled"):
            s += f", {d['throttled']} throttled"
        if d.get("failures_by_kind"):
            s += " " + ", ".join(f"{k}: {v}" for k, v in d["failures_by_kind"].items())
        return s

    rows.append(("W1 PutLogEvents failures", "0", fails(lk), fails(mo), ""))
    return rows


def w1_open_row(op: dict | None) -> list[tuple[str, str, str, str, str]]:
    if not op or not op.get("offered_mb_per_s"):
        return []
    lat = op.get("latency_ms", {})
    p99 = lat.get("p99")
    cell = (f"{mark(p99 < 25 if p99 is not None else None)}p99 {fmt_ms(p99)} (p50 {fmt_ms(lat.get('p50'))}, "
            f"max {fmt_ms(lat.get('max'))}; {op.get('mb_per_s', 0):.1f} MB/s achieved)")
    return [(f"W1 open loop at {op['offered_mb_per_s']:g} MB/s offered: PutLogEvents latency", "p99 < 25 ms", cell,
             "", "")]


W3_GOALS = {
    "a": ("all pages < 50 ms", lambda q: q["all_pages_s"] * 1000 < 50),
    "b": ("first page < 100 ms", lambda q: best_first_page_s(q) * 1000 < 100),
    "c": ("≥ 2.5 GB/s, ≥ 0.5x rg", lambda q: (q.get("raw_equiv_gb_per_s") or 0) >= 2.5
          and (q.get("speed_vs_rg") or 0) >= 0.5),
    "d": ("≥ 2.5 GB/s, ≥ 0.5x rg", lambda q: (q.get("raw_equiv_gb_per_s") or 0) >= 2.5
          and (q.get("speed_vs_rg") or 0) >= 0.5),
}


def best_first_page_s(q: dict) -> float:
    """The quickest first page of a query's runs (older reports: the best run's)."""
    return min(q.get("runs_first_page_s") or [q["first_page_s"]])


def runs_note(q: dict, key: str) -> str:
    """Every run's time, in the order they ran, when there were several (the first is the coldest)."""
    runs = q.get(key) or []
    if len(runs) < 2:
        return ""
    return f"; runs {' / '.join(fmt_ms(r * 1000) for r in runs)}"


def query_problem(q: dict) -> str:
    """What went wrong with a W3 query, for its table cell ("" when nothing did)."""
    if q.get("error"):
        return f" — ERROR {q['error'][:100]}"
    if q.get("wrong"):
        return f" — wrong: {q['wrong']}"
    return ""


def w3_at_rest(bench: Path, lookout: Path, data: Path, work: Path, manifest: Path, timeout: float) -> dict:
    """The JSON and regex queries again once W3's data is at rest: lookout restarted on the same data
    with `--compact-at-rest-after-secs 1`, the queries run when every part is zstd at the rest level
    (recent data is LZ4; see the W2 note)."""
    srv = storage_ops.lookout_server(lookout, data, work / "lookout-w3-rest.log", "lookout-w3-rest",
                                     extra=["--compact-at-rest-after-secs", "1"])
    out: dict = {}
    srv.start()
    try:
        started = time.monotonic()
        # Recompressing W3's 10 GB at rest takes minutes (199 s in the run on 7d1920f, over 225 s
        # in the run on 3271b1e): the whole tool timeout is allowed.
        if not storage_ops.wait_until_at_rest(
                lambda: [p for ps in storage_ops.part_files(data).values() for p in ps], timeout):
            return {"error": f"the parts were not all at rest after {timeout:.0f} s"}
        out["rest_seconds"] = time.monotonic() - started
        wait_until_idle(srv.proc.pid, "lookout-w3-rest")
        path = work / "w3-rest.json"
        rc, table = run_tool([str(bench), "filter", "--endpoint", srv.endpoint, "--manifest", str(manifest),
                              "--queries", "c,d", "--repeat", "3", "--max-seconds", str(timeout / 4),
                              "--json", str(path)], "lookout-w3-rest", timeout)
        out.update(read_json(path) or {})
        out["exit_code"] = rc
    except OSError as e:
        out["error"] = str(e)
    finally:
        srv.stop()
    return out


def w3_rest_rows(rest: dict | None, w3: dict | None) -> list[tuple[str, str, str, str, str]]:
    """(c) and (d) on data at rest, their ratio against the rg run of the main W3 queries."""
    if not rest:
        return []
    if rest.get("error"):
        return [("W3 (c), (d) at rest (zstd 9)", "", f"— {rest['error']}", "", "")]
    rows = []
    for key in ("c", "d"):
        q = (rest.get("queries") or {}).get(key)
        rg = (((w3 or {}).get("queries") or {}).get(key) or {}).get("rg") or {}
        if not q:
            continue
        wrong = query_problem(q)
        gb = q.get("raw_equiv_gb_per_s") or 0
        vs = rg["seconds"] / q["all_pages_s"] if rg.get("seconds") and q.get("all_pages_s") else None
        rows.append((f"W3 ({key}) `{q['pattern']}` on the same data at rest (zstd 9)", "(not a goal: recent data is LZ4)",
                     f"{fmt_ms(q['all_pages_s'] * 1000)}, {gb:.2f} GB/s ({q['pages']} pages){wrong}",
                     f"rg -j1: {fmt_ms(rg['seconds'] * 1000)}" if rg else "—", f"{vs:.2f}x" if vs else ""))
    return rows


def w3_rows(w3: dict | None) -> list[tuple[str, str, str, str, str]]:
    rows = []
    qs = (w3 or {}).get("queries", {})
    for key in ("a", "b", "c", "d"):
        q = qs.get(key)
        if not q:
            continue
        goal, test = W3_GOALS[key]
        rg = q.get("rg") or {}
        wrong = query_problem(q)
        counts = f"{q['events']:,}/{q['expected']:,} ev" if q.get("expected") is not None else f"{q['events']:,} ev"
        if key == "b":
            rows.append((f"W3 (b) `{q['pattern']}` first page", goal,
                         mark(test(q)) + f"{fmt_ms(best_first_page_s(q) * 1000)} ({q['first_page_events']:,} ev"
                         + runs_note(q, "runs_first_page_s") + ")", "", ""))
        gb = q.get("raw_equiv_gb_per_s")
        runs = runs_note(q, "runs_all_pages_s") if key == "a" else ""
        cell = f"{fmt_ms(q['all_pages_s'] * 1000)}, {gb:.2f} GB/s ({q['pages']} pages, {counts}{runs}){wrong}"
        rg_cell = (f"rg -j1: {fmt_ms(rg['seconds'] * 1000)}, {rg.get('gb_per_s') or 0:.2f} GB/s ({rg['count']:,} lines)"
                   if rg else "—")
        rows.append((f"W3 ({key}) `{q['pattern']}` all pages", goal if key != "b" else "",
                     (mark(test(q)) if key != "b" else "") + cell, rg_cell,
                     f"{q['speed_vs_rg']:.2f}x" if q.get("speed_vs_rg") else ""))
    return rows


def w2_w4_w5_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    rows = []
    w2 = results.get("lookout_w2") or {}
    for kind, label, goal, target in (("loghub", "the real Loghub samples", "≥ 10x incl. indexes", 10),
                                      ("text", "generated text (Loghub templates, random values)",
                                       "≥ 10x incl. indexes", 10),
                                      ("json", "high-entropy JSON", "≥ 4.5x incl. indexes", 4.5)):
        st = w2.get(kind)
        if not st:
            continue
        if st.get("error"):
            rows.append((f"W2 compression, {label}", goal, f"— {st['error']}", "", ""))
            continue
        r = st.get("ratio")
        flushed = st.get("flushed") or {}
        as_flushed = f"; as flushed {flushed['ratio']:.2f}x" if flushed.get("ratio") else ""
        if not storage_ops.all_at_rest(st.get("codecs") or []):
            as_flushed += f"; NOT all at rest: codecs {st.get('codecs')}"
        rows.append((f"W2 compression at rest, {label}", goal,
                     mark(r >= target if r else None)
                     + f"{r:.2f}x ({st['raw'] / 1e6:,.1f} MB raw → {st['file'] / 1e6:,.2f} MB of parts{as_flushed})",
                     "", ""))
    shares = [(k, (w2.get(k) or {}).get("index_share")) for k in ("loghub", "text", "json")]
    if any(v is not None for _, v in shares):
        worst = max(v for _, v in shares if v is not None)
        rows.append(("W2 indexes (blooms + block index + summaries + footers)", "≤ 3 % of raw",
                     mark(worst <= 0.03) + ", ".join(f"{k} {v * 100:.2f} %" for k, v in shares if v is not None),
                     "", ""))
    w4 = results.get("lookout_w4")
    if w4 and w4.get("requests"):
        lat = w4["latency_ms"]
        rows.append(("W4 GetLogEvents of one stream (1 h, limit 10k) during W1", "p99 < 10 ms",
                     mark(lat["p99"] < 10) + f"p99 {fmt_ms(lat['p99'])} (p50 {fmt_ms(lat['p50'])}, max "
                     f"{fmt_ms(lat['max'])}; {w4['requests']:,} requests, {w4['events_mean']:,.0f} events each on "
                     f"average, {w4['error_count']} errors)", "", ""))
    for r in results.get("lookout_w5_restart") or []:
        ms = r.get("ready_ms")
        rows.append((f"W5 kill -9 during ingest → `/ready` ({r['stored_part_bytes'] / 1e6:,.0f} MB of parts, "
                     f"{r['wal_bytes'] / 1e6:,.1f} MB of WAL)", "< 1 s with 100 GB",
                     mark(ms < 1000 if ms is not None else None) + fmt_ms(ms), "", ""))
    big = results.get("lookout_w5_index")
    if big:
        label = "W5 kill -9 during ingest → `/ready` with ~100 GB's block index"
        if big.get("error"):
            rows.append((label, "< 1 s with 100 GB", f"— {big['error']}", "", ""))
        else:
            ms = big.get("ready_ms")
            per_gb = results.get("lookout_w3_blocks_per_gb")
            like = f": as many as ~{big['blocks'] / per_gb:,.0f} GB of W3's data" if per_gb else ""
            rows.append((f"{label} ({big['blocks']:,} blocks in {big['parts']} parts{like})", "< 1 s with 100 GB",
                         mark(ms < 1000 if ms is not None else None) + f"{fmt_ms(ms)} (RSS once ready "
                         f"{fmt_mb(big.get('rss_bytes'))})", "", ""))
            rss = big.get("w1_rss_max_bytes")
            rows.append((f"W1 server RSS, max during ingest, with ~100 GB's block index stored", "< 512 MB",
                         mark(rss < 512e6 if rss is not None else None) + fmt_mb(rss), "", ""))
    ret = results.get("lookout_w5_retention")
    if ret:
        if ret.get("error"):
            rows.append(("W5 retention: dropping expired days", "a day < 100 ms", f"— {ret['error']}", "", ""))
        else:
            rows.append(("W5 retention: dropping expired days", "a day < 100 ms",
                         mark(ret["ms"] < 100) + f"{fmt_ms(ret['ms'])} ({ret['partitions']} day(s), {ret['parts']} "
                         f"parts, {(ret['bytes_before'] - ret['bytes_after']) / 1e6:,.1f} MB of parts)", "", ""))
    parts = results.get("lookout_parts")
    if parts and parts.get("parts"):
        rows.append(("W5 parts per (group, day) after W1 + W3", "bounded by merges",
                     f"max {parts['parts_per_partition_max']} ({parts['parts']} parts in {parts['partitions']} "
                     f"partitions)", "", ""))
    return rows


def machine() -> dict:
    mem = "?"
    cpu = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    dirty = cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": cmd(["git", "rev-parse", "--short", "HEAD"]) + (" (with uncommitted changes)" if dirty else ""),
            "rg": (cmd(["rg", "--version"]).splitlines() or ["rg ?"])[0] if shutil.which("rg") else "rg not installed"}


def render(args, results: dict, m: dict) -> str:
    lk, mo = results.get("lookout_w1"), results.get("moto_w1")
    w3 = results.get("lookout_w3")
    w3i = results.get("lookout_w3_ingest") or {}
    man = (w3i.get("workload") or {}).get("expected", {})
    w1man = ((lk or {}).get("workload") or {}).get("expected", {})
    rows = (w1_rows(lk, mo) + w1_open_row(results.get("lookout_w1_open")) + w3_rows(w3)
            + w3_rest_rows(results.get("lookout_w3_at_rest"), w3) + w2_w4_w5_rows(results))
    out = []
    out.append("| workload | target | lookout | moto (W1) / rg -j1 (W3) | ratio |")
    out.append("|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    table = "\n".join(out)
    notes = []
    if lk:
        notes.append(f"- **W1**: {w1man.get('events', 0):,} events ({w1man.get('message_bytes', 0) / 1e6:,.1f} MB of "
                     f"messages, {w1man.get('batches', 0):,} PutLogEvents batches, largest {w1man.get('max_batch_events', 0):,} "
                     f"events / {w1man.get('max_batch_bytes', 0):,} B) over {args.streams:,} streams (Zipf), "
                     f"{args.clients} keep-alive clients, timestamps within the last minute, every body built before timing.")
    runs_l, runs_m = (lk or {}).get("runs_events_per_s") or [], (mo or {}).get("runs_events_per_s") or []
    if len(runs_l) > 1 or len(runs_m) > 1:
        each = lambda runs: ", ".join(f"{v:,.0f}" if v else "failed" for v in runs)
        notes.append(f"- **W1 runs**: the closed loop ran {len(runs_l)} times for lookout (one server, one group, the open "
                     f"loop between the first and the second; "
                     f"events/s in order: {each(runs_l)}) and {len(runs_m)} times for moto (a fresh moto each: "
                     f"{each(runs_m)}); the W1 rows show each one's median run.")
    if results.get("lookout_w1_open"):
        notes.append(f"- **W1 open loop**: the same workload (another group) sent on a fixed schedule at "
                     f"{args.open_fraction:.0%} of the closed-loop MB/s of the first run, right after it, each latency measured from its scheduled send "
                     f"time. With 32 closed-loop clients, latency includes queueing (Little's law: 32 batches of "
                     f"~{w1man.get('message_bytes', 0) / max(1, w1man.get('batches', 1)) / 1e3:,.0f} KB in flight at "
                     f"the measured MB/s); the open-loop row measures latency at a fixed load below the maximum.")
    if mo:
        mm = (mo.get("workload") or {}).get("expected", {})
        notes.append(f"- **moto** ran W1 with {mm.get('events', 0):,} events (same generator, same streams and clients; "
                     f"{'fewer events than lookout: moto slows down and grows as it stores more' if mm.get('events') != w1man.get('events') else 'the same events'}).")
    elif not args.skip_moto:
        notes.append("- moto did not run (see the log above).")
    if w3i:
        notes.append(f"- **W3** data: a second group, {man.get('events', 0):,} events, {man.get('message_bytes', 0) / 1e6:,.0f} MB "
                     f"raw over 24 h, ingested at {w3i.get('mb_per_s', 0):.1f} MB/s; expected: unique {man.get('unique')}, "
                     f"`ERROR` {man.get('error', 0):,}, JSON condition {man.get('json_match', 0):,}, `%time.?out%` "
                     f"{man.get('timeout', 0):,}. The queries start once the ingest's last events are flushed (the "
                     f"flush interval, 60 s) and the server has been idle for 6 s (merges done: "
                     f"{results.get('lookout_w3_idle_wait_s', 0):.0f} s after the ingest), so they read recent "
                     f"data: LZ4 parts (see W2's note on data at rest). Each query runs {args.repeat} times and the best run "
                     f"counts (for (b)'s first page, the quickest first page), as for rg; the cells list every run, the first "
                     f"being the coldest. rg runs on the same messages, one per line, page-cached, best of 3; "
                     f"its counts are lines matched by an equivalent regex (its `\\b` differs from lookout's word rule on `_`). "
                     f"ratio = rg time / lookout time (goal ≥ 0.5x).")
    rest = results.get("lookout_w3_at_rest") or {}
    if rest.get("rest_seconds") is not None:
        notes.append(f"- **W3 at rest**: after the runs above, lookout restarted on the same data with "
                     f"`--compact-at-rest-after-secs 1`; once every part was zstd 9 "
                     f"({rest['rest_seconds']:.0f} s later, all groups), (c) and (d) ran again (best of 3). "
                     f"This is what searches of days that stopped changing cost: zstd decompresses ~1 GB/s per "
                     f"core, LZ4 ~3.")
    if results.get("lookout_data_dir_bytes") and w1man and man:
        raw = w1man.get("message_bytes", 0) + man.get("message_bytes", 0)
        notes.append(f"- lookout data dir after both ingests: {results['lookout_data_dir_bytes'] / 1e6:,.0f} MB for "
                     f"{raw / 1e6:,.0f} MB raw; RSS after them {fmt_mb(results.get('lookout_rss_after_ingest'))}.")
    w2 = results.get("lookout_w2") or {}
    if w2.get("text") and w2.get("json") and not w2["text"].get("error") and not w2["json"].get("error"):
        notes.append(f"- **W2**: a fresh lookout given, one group after the other, the real Loghub samples "
                     f"(`../shared/data/loghub`, one stream per system, 4.4 MB; zstd -1 on each file alone gives "
                     f"10.2x), generated text only (Loghub templates with random values: IPs, ids, numbers; "
                     f"{w2['text']['raw'] / 1e6:,.0f} MB, which `zstd -1` on the raw file compresses only ~4.1x) "
                     f"and JSON only (5-20 fields with UUIDs, IPs, numbers; {w2['json']['raw'] / 1e6:,.0f} MB), "
                     f"200 streams each, one hour of timestamps, each flushed by a clean stop; the ratio is raw "
                     f"message bytes over every byte of the group's part files (blocks, blooms, index, footers). "
                     f"The write-ahead log is gone once flushed and the catalog is a few KB. **At rest**: flushes "
                     f"and merges of recent data write LZ4 (cheap for ingest, ~3x faster than zstd to decompress "
                     f"for searches); once a day of a group gets no new data for 5 minutes "
                     f"(`--compact-at-rest-after-secs`, default 300), lookout merges its parts again with zstd "
                     f"level 9 in the background. The suite restarts lookout on the same data with that delay "
                     f"set to 1 s and reads the parts once they are all zstd 9 (text took "
                     f"{w2['text'].get('rest_seconds', 0):.0f} s, JSON {w2['json'].get('rest_seconds', 0):.0f} s); "
                     f"'as flushed' is before that.")
    if results.get("lookout_w4"):
        w4 = results["lookout_w4"]
        notes.append(f"- **W4**: while W1 ran (closed loop, then open loop), GetLogEvents on W1's most popular "
                     f"stream (`{w4.get('stream')}`), the last hour, limit 10,000 (newest first, as the API reads "
                     f"by default), 20 times a second from one keep-alive connection (Python, answers read whole "
                     f"but not parsed); each answer is capped at 1 MB, so it holds about "
                     f"{w4.get('events_mean', 0):,.0f} events.")
    if results.get("lookout_w5_restart"):
        notes.append("- **W5 restart**: an ingest of 400,000 events runs for a second, the server gets `kill -9`, "
                     "and a new `lookout serve` (local-process runtime, so that the figure is the store's) is "
                     "timed from spawn to `GET /ready` = 200, polled every 5 ms. Replay covers the write-ahead log "
                     "(events not yet in parts: bounded by the flush interval and size), not the parts; the log is "
                     "written with direct I/O, so replay reads it from the disk, not from the page cache.")
    if results.get("lookout_w5_index") and not results["lookout_w5_index"].get("error"):
        big = results["lookout_w5_index"]
        per_gb = results.get("lookout_w3_blocks_per_gb")
        w3 = (f"W3's parts in this run hold {per_gb:,.0f} blocks per GB (one per stream per 2 h); " if per_gb
              else "")
        notes.append(f"- **W5 with ~100 GB's block index**: startup reads each part's footer and summary (part "
                     f"format 6; older parts: their block index), never its blocks, so it depends on how many "
                     f"parts are stored, not on their bytes. {w3}a fresh "
                     f"lookout is given {big['blocks']:,} blocks from small events ({big['raw_bytes'] / 1e6:,.0f} "
                     f"MB raw, 12,000 streams over 13.5 days, so that it fits this disk), stopped cleanly so "
                     f"that all of it is in parts, given a W1 run like the first (RSS max during it), then killed "
                     f"during an ingest and restarted as above. Of each part, startup keeps in memory "
                     f"only its key range and streams; searches read block indexes into a 64 MiB cache.")
    if results.get("lookout_w5_retention") and not results["lookout_w5_retention"].get("error"):
        notes.append("- **W5 retention**: a day of data three days old in a fresh lookout, flushed; then "
                     "PutRetentionPolicy(1 day); the figure is the store's own timing of its next retention "
                     "pass (catalog commit + file deletions), from its log.")
    if results.get("fsync_ms") is not None:
        after = results.get("fsync_ms_after")
        notes.append(f"- The disk: one 4 KiB write + fdatasync in lookout's data directory took "
                     f"{results['fsync_ms']:.2f} ms on average before lookout's runs"
                     + (f" and {after:.2f} ms after them" if after is not None else "")
                     + " (40 in a row). It varies by 10x or more from minute to minute on this machine, and "
                     "W1 waits on it (every batch is acknowledged after its group commit's fdatasync).")
    notes.append("- ✓/✗: goal met or not on this run. ratio > 1 means lookout is better (throughput lookout/peer, "
                 "latency and memory peer/lookout). W1's closed loop is the median of its runs, W3's "
                 "queries the best of theirs (listed), the rest single runs, on a noisy 2-core machine: compare ratios "
                 "from one run.")
    head = (f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}; {m['date']}; commit {m['commit']}; "
            f"lookout binary built {results.get('lookout_built', '?')}; moto {results.get('moto_version', '?')}; "
            f"{m['rg']}.")
    return head + "\n\n" + table + "\n\n" + "\n".join(notes) + "\n"


def write_benchmarks(args, body: str, results: dict) -> None:
    cmd = "python3 bench/suite.py --write" + (" --quick" if args.quick else "")
    text = f"""# lookout benchmarks

Produced by `{cmd}` (see `bench/README.md`): the real `lookout serve` and `moto_server`, one after
the other, driven by the Rust load generator `lookout-bench` (`crates/bench`) on the same 2 cores.
The workloads are W1 (ingest), W2 (storage), W3 (filter), W4 (reads during ingest) and W5
(operations) of `../shared/design/performance.md`. Benchmarks print figures; nothing here is
asserted by a test.

{body}
Raw figures: every run of `lookout-bench ingest --json` and `filter --json` (latency percentiles, a
per-second MB/s timeline, the ten slowest requests, RSS series, failures by `__type`) are written to
the suite's work directory; pass `--keep` to keep it and `--json OUT` for the summary.
"""
    (REPO / "BENCHMARKS.md").write_text(text)
    log(f"wrote {REPO / 'BENCHMARKS.md'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small run, well under a minute")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS.md at the repository root")
    ap.add_argument("--w1-events", type=int, help="W1 events for lookout (default 1,000,000; quick 50,000)")
    ap.add_argument("--moto-events", type=int, help="W1 events for moto (default 200,000; quick 20,000)")
    ap.add_argument("--w1-runs", type=int, help="W1 closed-loop runs, lookout's and moto's; the median run is "
                                                "reported (default 3; quick 1)")
    ap.add_argument("--streams", type=int, help="streams, Zipf popularity (default 1,000; quick 100)")
    ap.add_argument("--clients", type=int, default=32, help="keep-alive connections (default 32)")
    ap.add_argument("--w3-mb", type=float, help="W3 raw data size in MB (default 10,000, as the goals are set; "
                                                 "1,000 is their quick mode; --quick 30)")
    ap.add_argument("--w2-mb", type=float, help="W2 raw data size of text and of JSON, each (default 200; quick 5)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each W3 query; the best counts, as for rg (every run is listed)")
    ap.add_argument("--open-fraction", type=float, default=0.7,
                    help="W1 open loop offers this fraction of the closed-loop MB/s (default 0.7)")
    ap.add_argument("--skip-moto", action="store_true")
    ap.add_argument("--lookout-bin", default=os.environ.get("LOOKOUT_BIN"))
    ap.add_argument("--bench-bin", default=os.environ.get("LOOKOUT_BENCH_BIN"))
    ap.add_argument("--moto-bin", default=os.environ.get("MOTO_SERVER"))
    ap.add_argument("--rg", default="rg", help="ripgrep binary")
    ap.add_argument("--timeout", type=float, help="seconds allowed for one tool run (default 600; quick 120)")
    ap.add_argument("--json", metavar="OUT", help="write every figure as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (data, logs, JSON)")
    args = ap.parse_args()
    q = args.quick
    args.w1_events = args.w1_events or (50_000 if q else 1_000_000)
    args.moto_events = args.moto_events or (20_000 if q else 200_000)
    args.w1_runs = max(1, args.w1_runs or (1 if q else 3))
    args.streams = args.streams or (100 if q else 1_000)
    args.w3_mb = args.w3_mb or (30.0 if q else 10_000.0)
    args.w2_mb = args.w2_mb or (5.0 if q else 200.0)
    args.timeout = args.timeout or (120.0 if q else 900.0)

    lookout = Path(args.lookout_bin) if args.lookout_bin else REPO / "target" / "release" / "lookout"
    if args.bench_bin:
        bench = Path(args.bench_bin)
    else:
        bench = REPO / "target" / "release" / "lookout-bench"
        if not bench.is_file() and (REPO / "target" / "bench" / "release" / "lookout-bench").is_file():
            bench = REPO / "target" / "bench" / "release" / "lookout-bench"
    for b in (lookout, bench):
        if not b.is_file():
            log(f"missing {b}: cargo build --release -p lookout -p lookout-bench (or set --lookout-bin/--bench-bin)")
            return 2
    if not shutil.which(args.rg):
        log(f"{args.rg} not found: W3 runs without the ripgrep comparison (apt-get install ripgrep, or --rg PATH)")
        args.rg = None
    moto = None
    if not args.skip_moto:
        moto = args.moto_bin
        if not moto:
            venv = REPO / ".venv" / "bin" / "moto_server"
            moto = str(venv) if venv.is_file() else shutil.which("moto_server")
        if not moto:
            log("moto_server not found (scripts/setup-python.sh, --moto-bin, or --skip-moto)")
            return 2

    work = Path(tempfile.mkdtemp(prefix="lookout-suite-"))
    # W3 writes its raw messages for rg (w3-mb) and lookout's parts (~0.45x, more while they are
    # recompressed at rest); W1, W2 and W5 ~1 GB. Said up front, not as a write error half-way.
    need = int(args.w3_mb * 1e6 * 1.8 + 1e9)
    free = shutil.disk_usage(work).free
    if free < need:
        log(f"{work.parent} has {free / 1e9:,.1f} GB free; a run with W3 at {args.w3_mb:,.0f} MB needs ~{need / 1e9:,.0f} GB. "
            f"Free some space, point TMPDIR at a larger disk, or run W3 smaller (--w3-mb 1000, the goals' quick mode).")
        shutil.rmtree(work, ignore_errors=True)
        return 2
    results: dict = {"config": {k: v for k, v in vars(args).items()}}
    results["lookout_built"] = datetime.datetime.fromtimestamp(
        lookout.stat().st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    status = 0
    try:
        try:
            if not run_lookout(args, bench, lookout, work, results):
                status = 1
        except RuntimeError as e:
            log(f"[lookout] FAILED: {e}")
            results["lookout_error"] = str(e)
            status = 1
        if moto:
            results["moto_version"] = moto_version(moto)
            try:
                if not run_moto(args, bench, moto, work, results):
                    status = 1
            except RuntimeError as e:
                log(f"[moto] FAILED: {e}")
                results["moto_error"] = str(e)
                status = 1
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    m = machine()
    results["machine"] = m
    body = render(args, results, m)
    print()
    print(body)
    if args.write:
        write_benchmarks(args, body, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        log(f"wrote {args.json}")
    if status:
        log("FAILED: a server failed or requests failed (see above)")
    return status


if __name__ == "__main__":
    sys.exit(main())
