"""The `lookout logs` client subcommands: groups, streams, tail (--since, --filter, --stream-prefix,
--follow), against a running server."""

import re
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from lookout_harness import lookout_bin, make_group, now_ms, peer, put_events, unique

LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})(Z|\+00:00) (\S+) (.*)$")

pytestmark = pytest.mark.skipif(peer() == "moto", reason="`lookout logs` needs the lookout binary")


def lookout(server, *args, use_env=False, timeout=30, check=True):
    cmd = [str(lookout_bin()), "logs", *args]
    env = server.env
    if not use_env:
        cmd += ["--endpoint", server.endpoint]
        env.pop("LOOKOUT_ENDPOINT", None)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def iso_ms(ts_ms):
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}"


def parse_lines(stdout):
    out = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        m = LINE.match(line)
        assert m, f"not `<RFC3339 ms UTC> <stream> <message>`: {line!r}"
        out.append((m.group(1), m.group(3), m.group(4)))
    return out


@pytest.fixture(scope="module")
def tailed(logs):
    group = make_group(logs, streams=("web/1", "web/2", "worker/1"))
    t = now_ms()
    evs = {
        "web/1": [(t - 3 * 3_600_000, "old web line"), (t - 120_000, "GET / 200"),
                  (t - 60_000, "ERROR boom in web")],
        "web/2": [(t - 90_000, "GET /health 200"), (t - 30_000, "ERROR second")],
        "worker/1": [(t - 100_000, "job started with spaces  inside"), (t - 10_000, "job done")],
    }
    for s, e in evs.items():
        put_events(logs, group, s, e)
    flat = sorted((ts, s, m) for s, e in evs.items() for ts, m in e)
    return group, t, flat


def expect(rows):
    return [(iso_ms(ts), s, m) for ts, s, m in rows]


def test_groups(server, logs):
    prefix = unique("/compat/cli-groups") + "/"
    names = [prefix + n for n in ("b", "a", "c/d")]
    for n in names:
        logs.create_log_group(logGroupName=n)
    p = lookout(server, "groups", "--prefix", prefix)
    assert p.stdout.split("\n") == sorted(names) + [""]
    p = lookout(server, "groups", use_env=True)
    got = p.stdout.splitlines()
    for n in names:
        assert n in got


def test_groups_many_pages(server, logs):
    prefix = unique("/compat/cli-many") + "/"
    names = [f"{prefix}{i:03d}" for i in range(75)]
    for n in names:
        logs.create_log_group(logGroupName=n)
    assert lookout(server, "groups", "--prefix", prefix).stdout.splitlines() == names


def test_streams(server, tailed):
    group, _, _ = tailed
    assert lookout(server, "streams", group).stdout.splitlines() == ["web/1", "web/2", "worker/1"]
    assert lookout(server, "streams", group, "--prefix", "web/").stdout.splitlines() == ["web/1", "web/2"]


def test_tail_since(server, tailed):
    group, t, flat = tailed
    got = parse_lines(lookout(server, "tail", group, "--since", "1h").stdout)
    assert got == expect([r for r in flat if r[0] >= t - 3_600_000])
    got = parse_lines(lookout(server, "tail", group, "--since", "2d").stdout)
    assert got == expect(flat)
    got = parse_lines(lookout(server, "tail", group, "--since", "10m").stdout)
    assert got == expect([r for r in flat if r[0] >= t - 600_000])


def test_tail_since_iso(server, tailed):
    group, t, flat = tailed
    cutoff = flat[3][0]
    iso = datetime.fromtimestamp(cutoff / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    got = parse_lines(lookout(server, "tail", group, "--since", iso).stdout)
    assert got == expect([r for r in flat if r[0] >= cutoff])


def test_tail_filter_and_stream_prefix(server, tailed):
    group, t, flat = tailed
    got = parse_lines(lookout(server, "tail", group, "--since", "1d", "--filter", "ERROR").stdout)
    assert got == expect([r for r in flat if "ERROR" in r[2]])
    got = parse_lines(lookout(server, "tail", group, "--since", "1d", "--stream-prefix", "web/").stdout)
    assert got == expect([r for r in flat if r[1].startswith("web/")])
    got = parse_lines(lookout(server, "tail", group, "--since", "1d", "--stream-prefix", "web/",
                              "--filter", "ERROR").stdout)
    assert got == expect([r for r in flat if r[1].startswith("web/") and "ERROR" in r[2]])


def test_tail_unknown_group(server):
    missing = unique("/compat/nope")
    p = lookout(server, "tail", missing, check=False)
    assert p.returncode != 0
    assert missing in (p.stderr + p.stdout)


def test_tail_unreachable_endpoint_fails(server):
    p = subprocess.run([str(lookout_bin()), "logs", "groups", "--endpoint", "http://127.0.0.1:9"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0


def test_tail_follow_sees_new_lines_once(server, logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="f")
    t = now_ms()
    put_events(logs, group, "f", [(t - 5000, "before 1"), (t - 5000, "before 2")])
    env = server.env
    cmd = [str(lookout_bin()), "logs", "tail", group, "--follow", "--since", "5m", "--endpoint", server.endpoint]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    reader = threading.Thread(target=lambda: [lines.append(ln.rstrip("\n")) for ln in proc.stdout], daemon=True)
    reader.start()

    def wait_for(n, timeout=20):
        deadline = time.monotonic() + timeout
        while len(lines) < n and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        return len(lines) >= n

    try:
        assert wait_for(2), f"initial lines not printed: {lines}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        # events at the same timestamp as the last one printed, and a later one
        put_events(logs, group, "f", [(t - 5000, "same ts 3")])
        put_events(logs, group, "f", [(now_ms(), "after 4")])
        assert wait_for(4), f"new lines not printed by --follow: {lines}"
        time.sleep(2.5)  # a few more polls: nothing may be printed twice
        assert proc.poll() is None, "tail --follow exited"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    msgs = [parse_lines(ln)[0][2] for ln in lines if ln.strip()]
    assert sorted(msgs) == sorted(["before 1", "before 2", "same ts 3", "after 4"]), msgs
    assert msgs[:2] == ["before 1", "before 2"]
