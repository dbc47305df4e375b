"""W2 (storage), W4 (GetLogEvents while W1 runs) and W5 (operations) of the benchmark suite, for
bench/suite.py. Standard library only; the servers run with --no-auth, so requests go unsigned.

- W2: part files are read as lookout writes them (`crates/logstore/src/part.rs`: blocks, one token
  bloom per block, an index entry per block, a footer) and summed: raw message bytes, compressed
  blocks, blooms, index + footer. Compression counts every byte of the part files.
- W4: a reader thread polls GetLogEvents on the most popular W1 stream (the last hour, limit
  10,000, newest first) 20 times a second while W1 ingests, and keeps each latency.
- W5: time from spawning `lookout serve` after a `kill -9` (during ingest) to `/ready` answering
  200, with the data stored and the write-ahead log at the time; retention: how long the store took
  to drop expired day partitions (from its own log line), and the parts per (group, day).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

from servers import Server, log

FOOTER = struct.Struct("<QqQIIII8s")          # group, day, index offset, blocks, index crc, version, crc, magic
INDEX_ENTRY = struct.Struct("<QqQqQIIQIIQI")  # stream, min ts/seq, max ts/seq, count, raw, offset, comp, crc, bloom off/len
PART_MAGIC_LEN = 8


def call(conn: http.client.HTTPConnection, operation: str, body: dict) -> tuple[int, dict]:
    conn.request("POST", "/", json.dumps(body), {"X-Amz-Target": f"Logs_20140328.{operation}",
                                                 "Content-Type": "application/x-amz-json-1.1"})
    resp = conn.getresponse()
    data = resp.read()
    try:
        return resp.status, json.loads(data or b"{}")
    except ValueError:
        return resp.status, {}


def connect(endpoint: str) -> http.client.HTTPConnection:
    host, port = endpoint.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# ------------------------------------------------------------------------------------------------
# W2: what part files hold
# ------------------------------------------------------------------------------------------------


def part_stats(paths: list[Path]) -> dict:
    """Sums over part files: raw bytes (blocks as encoded before compression: messages plus their
    key and offset columns), file bytes, and where the bytes go."""
    out = {"parts": 0, "blocks": 0, "events": 0, "raw": 0, "file": 0, "blocks_bytes": 0, "blooms": 0,
           "index": 0, "parts_per_partition_max": 0, "codecs": []}
    per_partition: dict[tuple[int, int], int] = {}
    for path in paths:
        data = path.read_bytes()
        group, day, index_offset, count, _, version, _, magic = FOOTER.unpack_from(data, len(data) - FOOTER.size)
        out["codecs"] = sorted(set(out["codecs"]) | {codec_name(version >> 16)})
        if not magic.startswith(b"LKPARTF"):
            raise RuntimeError(f"{path} is not a part file")
        out["parts"] += 1
        out["file"] += len(data)
        # The block index, the summary (format 6), the footer and the leading magic.
        out["index"] += len(data) - index_offset + PART_MAGIC_LEN
        per_partition[(group, day)] = per_partition.get((group, day), 0) + 1
        for i in range(count):
            e = INDEX_ENTRY.unpack_from(data, index_offset + i * INDEX_ENTRY.size)
            out["blocks"] += 1
            out["events"] += e[5]
            out["raw"] += e[6]
            out["blocks_bytes"] += e[8]
            out["blooms"] += e[11]
    out["parts_per_partition_max"] = max(per_partition.values(), default=0)
    out["partitions"] = len(per_partition)
    if out["raw"]:
        out["ratio"] = out["raw"] / out["file"]
        out["index_share"] = (out["blooms"] + out["index"]) / out["raw"]
    return out


def part_files(data_dir: Path) -> dict[str, list[Path]]:
    """Part files by group directory (`logs/parts/g<id>/`)."""
    root = data_dir / "logs" / "parts"
    return {d.name: sorted(d.glob("*.part")) for d in sorted(root.iterdir()) if d.is_dir()} if root.is_dir() else {}


REST_LEVEL = 9   # StoreConfig::rest_level's default
LZ4_WORD = 0x8000   # part.rs: the footer's codec word for LZ4; zstd levels are their own number


def codec_name(word: int) -> str:
    """A part footer's codec word (the version word's high 16 bits) as `lz4` or `zstd N`."""
    return "lz4" if word == LZ4_WORD else f"zstd {word}"


def all_at_rest(codecs: list[str]) -> bool:
    """True when every codec is zstd at the rest level or above (what compaction at rest writes)."""
    return bool(codecs) and all(c.startswith("zstd ") and int(c[5:]) >= REST_LEVEL for c in codecs)


def wait_until_at_rest(list_parts, timeout: float) -> bool:
    """Polls until every part file `list_parts()` lists is at rest (`all_at_rest`); False after
    `timeout` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if all_at_rest(part_stats(list_parts())["codecs"]):
                return True
        except OSError:
            pass   # a part merged away between listing and reading
        time.sleep(0.5)
    return False


def run_w2(bench: Path, lookout: Path, work: Path, ingest, mb: float, timeout: float) -> dict:
    """The real Loghub samples as they are (4.4 MB, one stream per system), then text-only and
    JSON-only generated data (each ~`mb` MB: the generator's Loghub templates with random values,
    and its JSON with high-entropy fields, grouped by stream) in a fresh lookout, one group after
    the other, each flushed by a clean stop; then the part files of each group are read ("as
    flushed"). Then lookout runs again on the same data with `--compact-at-rest-after-secs 1`
    (default 300: the same work, sooner) until the group's parts are recompressed at rest, and
    they are read again ("at rest", the figure that counts: what the data costs once it stopped
    changing)."""
    data = work / "w2-data"
    data.mkdir()
    results = {}
    seen: set[str] = set()
    for kind, fraction in (("loghub", None), ("text", "0"), ("json", "1")):
        srv = lookout_server(lookout, data, work / f"w2-{kind}.log", "lookout-w2")
        srv.start()
        try:
            if kind == "loghub":
                if not LOGHUB.is_dir():
                    results[kind] = {"error": f"no Loghub samples at {LOGHUB}"}
                    continue
                res = {"workload": {"expected": {"message_bytes": put_loghub(srv.endpoint, "/bench/w2-loghub",
                                                                             LOGHUB)}}}
            else:
                events = max(1000, int(mb * 1e6 / 172))
                res = ingest(bench, srv, work, f"lookout-w2-{kind}", events, 200, 16,
                             ["--group", f"/bench/w2-{kind}", "--json-fraction", fraction, "--span-secs", "3600",
                              "--huge-per-million", "0"], timeout)
                if res.get("exit_code") != 0:
                    results[kind] = {"error": "ingest failed"}
                    continue
        finally:
            srv.stop()   # a clean stop flushes every memtable into parts
        dirs = part_files(data)
        new = [d for d in dirs if d not in seen]
        seen.update(dirs)
        if len(new) != 1:
            results[kind] = {"error": f"expected one new group directory, found {new}"}
            continue
        # Ratios are of message bytes (what clients sent), not of the blocks' encoded columns.
        message_bytes = ((res.get("workload") or {}).get("expected") or {}).get("message_bytes")

        def measure(stage: str) -> dict:
            stats = part_stats(dirs[new[0]])
            if message_bytes:
                stats["encoded"] = stats["raw"]
                stats["raw"] = message_bytes
                stats["ratio"] = message_bytes / stats["file"]
                stats["index_share"] = (stats["blooms"] + stats["index"]) / message_bytes
            log(f"[lookout-w2] {kind} {stage}: {stats['raw'] / 1e6:,.1f} MB raw in {stats['file'] / 1e6:,.2f} MB "
                f"of parts ({stats.get('ratio', 0):.2f}x, codecs {stats['codecs']}), blooms + index "
                f"{stats.get('index_share', 0) * 100:.2f} % of raw")
            return stats

        flushed = measure("as flushed")
        srv = lookout_server(lookout, data, work / f"w2-{kind}-rest.log", "lookout-w2",
                             extra=["--compact-at-rest-after-secs", "1"])
        srv.start()
        started = time.monotonic()
        try:
            wait_until_at_rest(lambda: part_files(data)[new[0]], timeout)
        finally:
            srv.stop()
        dirs = part_files(data)
        stats = measure("at rest")
        stats["rest_seconds"] = time.monotonic() - started
        stats["flushed"] = flushed
        results[kind] = stats
    return results


LOGHUB = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "loghub"


def put_loghub(endpoint: str, group: str, loghub: Path) -> int:
    """The real Loghub samples as they are: one stream per system (`Apache_2k.log` → `Apache`),
    one event per line, in file order, one batch per file. Returns the message bytes sent."""
    conn = connect(endpoint)
    status, body = call(conn, "CreateLogGroup", {"logGroupName": group})
    if status != 200:
        raise RuntimeError(f"CreateLogGroup answered {status}: {body}")
    sent = 0
    now = int(time.time() * 1000) - 60_000
    for path in sorted(loghub.glob("*_2k.log")):
        stream = path.name.removesuffix("_2k.log")
        call(conn, "CreateLogStream", {"logGroupName": group, "logStreamName": stream})
        lines = [l for l in path.read_text(errors="replace").splitlines() if l]
        events = [{"timestamp": now + i, "message": l} for i, l in enumerate(lines)]
        status, body = call(conn, "PutLogEvents", {"logGroupName": group, "logStreamName": stream,
                                                   "logEvents": events})
        if status != 200:
            raise RuntimeError(f"PutLogEvents of {path.name} answered {status}: {body}")
        sent += sum(len(l.encode()) for l in lines)
    return sent


def lookout_server(lookout: Path, data: Path, log_path: Path, name: str, port: int | None = None,
                   extra: list[str] | None = None) -> Server:
    from servers import free_port
    port = port or free_port()
    return Server(name, [str(lookout), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                         "--no-auth", "--runtime", "process", *(extra or [])], port, "/health", True, log_path, data)


# ------------------------------------------------------------------------------------------------
# W4: GetLogEvents while W1 runs
# ------------------------------------------------------------------------------------------------


class StreamReader(threading.Thread):
    """Polls GetLogEvents on the most popular stream of `group` (Zipf rank 0: `/00000/` in its
    name) 20 times a second until stopped; keeps every latency."""

    def __init__(self, endpoint: str, group: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.endpoint, self.group, self.interval = endpoint, group, interval
        self.latencies_ms: list[float] = []
        self.events: list[int] = []
        self.errors: list[str] = []
        self.stream: str | None = None
        self._halt = threading.Event()

    def stop(self) -> dict:
        self._halt.set()
        self.join(30)
        return {"stream": self.stream, "requests": len(self.latencies_ms), "errors": self.errors[:5],
                "error_count": len(self.errors),
                "latency_ms": {"p50": percentile(self.latencies_ms, 50), "p99": percentile(self.latencies_ms, 99),
                               "max": max(self.latencies_ms, default=None)},
                "events_mean": sum(self.events) / len(self.events) if self.events else 0}

    def _find_stream(self, conn) -> str | None:
        token = None
        while not self._halt.is_set():
            body = {"logGroupName": self.group, "limit": 50}
            if token:
                body["nextToken"] = token
            status, page = call(conn, "DescribeLogStreams", body)
            if status != 200:
                return None
            for s in page.get("logStreams", []):
                if "/00000/" in s["logStreamName"]:
                    return s["logStreamName"]
            token = page.get("nextToken")
            if not token:
                return None
        return None

    def run(self) -> None:
        conn = connect(self.endpoint)
        while not self._halt.is_set() and self.stream is None:
            self.stream = self._find_stream(conn)
            if self.stream is None:
                time.sleep(0.2)
        while not self._halt.is_set():
            now = int(time.time() * 1000)
            body = {"logGroupName": self.group, "logStreamName": self.stream, "startTime": now - 3_600_000,
                    "endTime": now, "limit": 10_000}
            t = time.perf_counter()
            try:
                # The answer is read whole but not parsed: parsing ~1 MB of JSON in Python would
                # add milliseconds of the client's own to every latency.
                conn.request("POST", "/", json.dumps(body), {"X-Amz-Target": "Logs_20140328.GetLogEvents",
                                                             "Content-Type": "application/x-amz-json-1.1"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn = connect(self.endpoint)
                continue
            ms = (time.perf_counter() - t) * 1000
            if resp.status == 200:
                self.latencies_ms.append(ms)
                self.events.append(data.count(b'"ingestionTime"'))
            else:
                self.errors.append(f"HTTP {resp.status} {data[:200]!r}")
            self._halt.wait(self.interval)


# ------------------------------------------------------------------------------------------------
# W5: restart after kill -9, retention, parts per partition
# ------------------------------------------------------------------------------------------------


def wal_bytes(data: Path) -> int:
    wal = data / "logs" / "wal"
    return sum(f.stat().st_size for f in wal.glob("*.wal")) if wal.is_dir() else 0


def kill9_and_restart(srv: Server, bench: Path, work: Path, tag: str, streams: int, timeout: float) -> dict:
    """Starts an ingest into `srv`, kills the server with SIGKILL a second into it, and times a new
    `lookout serve` on the same data directory and port from spawn to `/ready` = 200."""
    argv = [str(bench), "ingest", "--endpoint", srv.endpoint, "--events", "400000", "--streams", str(streams),
            "--clients", "16", "--group", f"/bench/w5-{tag}"]
    load = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)
    load.wait(timeout)
    stored = sum(p.stat().st_size for ps in part_files(srv.data_dir).values() for p in ps)
    wal = wal_bytes(srv.data_dir)
    log_path = work / f"lookout-w5-{tag}.log"
    # The local-process runtime, so that the figure is the store's recovery, not the container
    # engine's answer to lookout's version check.
    argv = srv.argv if "--runtime" in srv.argv else [*srv.argv, "--runtime", "process"]
    spawned = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    ready_ms = None
    conn = None
    while time.perf_counter() - spawned < 60 and proc.poll() is None:
        try:
            conn = conn or connect(srv.endpoint)
            conn.request("GET", "/ready")
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                ready_ms = (time.perf_counter() - spawned) * 1000
                break
        except (OSError, http.client.HTTPException):
            conn = None
        time.sleep(0.005)
    srv.proc, srv.argv = proc, argv
    srv.log_path = log_path
    srv._log = open(log_path, "ab")
    log(f"[lookout-w5] {tag}: kill -9 during ingest with {stored / 1e6:,.0f} MB of parts and {wal / 1e6:,.1f} MB of "
        f"WAL; ready after {ready_ms if ready_ms is None else round(ready_ms)} ms")
    return {"stored_part_bytes": stored, "wal_bytes": wal, "ready_ms": ready_ms}


def blocks_per_gb(data_dir: Path) -> float | None:
    """Part blocks per GB of raw block bytes in the group that holds the most (in the suite's main
    lookout, W3's: ~13,500, one per stream per 2 h, `MAX_BLOCK_SPAN_MS`)."""
    groups = [part_stats(ps) for ps in part_files(data_dir).values() if ps]
    largest = max(groups, key=lambda g: g["raw"], default=None)
    return largest["blocks"] / (largest["raw"] / 1e9) if largest and largest["raw"] else None


def run_restart_with_large_index(bench: Path, lookout: Path, work: Path, ingest, w1: tuple[int, int, int],
                                 timeout: float) -> dict:
    """W5 at the size the target names. Startup reads each part's footer and summary (part format 6;
    older parts: their block index), never its blocks, and keeps only the part's key range and
    streams; so what it depends on is the number of parts (and, for older parts, of blocks), not
    their bytes: a fresh lookout is
    given as many blocks as ~100 GB of W3-shaped data makes (`blocks_per_gb`), from small events
    so that it fits this machine's disk (12,000 streams, events spread evenly over 13.5 days, so
    that nearly every stream's every 2 h is a block of its own). A clean stop flushes them into
    parts; then a W1 run (`w1`: events, streams, clients) for its resident memory with all that
    stored, then `kill9_and_restart`, as after W1, and the resident memory once ready."""
    data = work / "w5-index-data"
    data.mkdir()
    srv = lookout_server(lookout, data, work / "lookout-w5-index.log", "lookout-w5-index")
    srv.start()
    try:
        res = ingest(bench, srv, work, "lookout-w5-index-ingest", 4_500_000, 12_000, 16,
                     ["--group", "/bench/w5-index", "--zipf", "0", "--span-secs", str(int(13.5 * 86_400)),
                      "--huge-per-million", "0"], timeout)
        if res.get("exit_code") != 0:
            return {"error": "ingest failed"}
        srv.stop()   # a clean stop flushes every memtable into parts
        srv.start()
        stats = part_stats([p for ps in part_files(data).values() for p in ps])
        events, streams, clients = w1
        run = ingest(bench, srv, work, "lookout-w5-index-w1", events, streams, clients, [], timeout)
        w1_rss = (run.get("server") or {}).get("rss_max_during_bytes") if run.get("exit_code") == 0 else None
        out = kill9_and_restart(srv, bench, work, "index", 1000, timeout)
        out.update(blocks=stats["blocks"], parts=stats["parts"], raw_bytes=stats["raw"],
                   rss_bytes=srv.rss_bytes(), w1_rss_max_bytes=w1_rss)
        log(f"[lookout-w5] index: {stats['blocks']:,} blocks in {stats['parts']} parts; ready after "
            f"{out['ready_ms'] if out['ready_ms'] is None else round(out['ready_ms'])} ms, RSS "
            f"{(out['rss_bytes'] or 0) / 1e6:,.0f} MB; during a W1 run {(out.get('w1_rss_max_bytes') or 0) / 1e6:,.0f} MB")
        return out
    finally:
        srv.stop()


RETENTION_LINE = re.compile(r"retention dropped expired partitions.*?partitions=(\d+).*?parts=(\d+).*?ms=([\d.]+)")


def run_retention(bench: Path, lookout: Path, work: Path, ingest, mb: float, timeout: float) -> dict:
    """A day of data three days old in a fresh lookout, then PutRetentionPolicy(1 day): the store's
    next retention pass (every 60 s) drops the expired partitions and logs how long it took."""
    data = work / "w5-retention-data"
    data.mkdir()
    srv = lookout_server(lookout, data, work / "lookout-w5-retention.log", "lookout-w5-retention")
    srv.start()
    try:
        end_ms = (int(time.time() * 1000) // 86_400_000 - 2) * 86_400_000 - 1   # the end of the day 3 days ago
        events = max(1000, int(mb * 1e6 / 172))
        res = ingest(bench, srv, work, "lookout-w5-retention-ingest", events, 200, 16,
                     ["--group", "/bench/w5-old", "--span-secs", "86000", "--end-ms", str(end_ms),
                      "--huge-per-million", "0"], timeout)
        if res.get("exit_code") != 0:
            return {"error": "ingest failed"}
        # A clean stop flushes the day into parts (a retention pass drops parts); then start again.
        srv.stop()
        srv.start()
        conn = connect(srv.endpoint)
        before = sum(p.stat().st_size for ps in part_files(data).values() for p in ps)
        status, _ = call(conn, "PutRetentionPolicy", {"logGroupName": "/bench/w5-old", "retentionInDays": 1})
        if status != 200:
            return {"error": f"PutRetentionPolicy answered {status}"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            m = RETENTION_LINE.search(srv.log_path.read_text(errors="replace"))
            if m:
                after = sum(p.stat().st_size for ps in part_files(data).values() for p in ps)
                out = {"partitions": int(m.group(1)), "parts": int(m.group(2)), "ms": float(m.group(3)),
                       "bytes_before": before, "bytes_after": after,
                       "raw_bytes": ((res.get("workload") or {}).get("expected") or {}).get("message_bytes")}
                log(f"[lookout-w5] retention dropped {out['partitions']} day partition(s) ({out['parts']} parts, "
                    f"{(before - after) / 1e6:,.1f} MB) in {out['ms']:.2f} ms")
                return out
            time.sleep(1)
        return {"error": "no retention pass within 90 s"}
    finally:
        srv.stop()
