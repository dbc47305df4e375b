"""Compression at rest (issue #3): once a day of a group gets no new data for
`--compact-at-rest-after-secs`, lookout merges its LZ4 parts again with zstd level 9 in the
background. Checked through boto3 on the real binary: the parts shrink, their footers say zstd 9, and every
event reads back exactly as before, also after a restart (which does not redo the work)."""

from __future__ import annotations

import random
import struct
import time

import pytest

from lookout_harness import get_all_forward, make_server, now_ms, peer

pytestmark = pytest.mark.skipif(peer() == "moto", reason="lookout's store")

FOOTER = struct.Struct("<QqQIIII8s")   # group, day, index offset, blocks, index crc, version word, crc, magic


LZ4 = 0x8000   # the codec word of LZ4 parts; zstd parts hold their level


def part_codecs(srv) -> dict[str, int]:
    """The codec word of each part file (the high 16 bits of the footer's version word)."""
    out = {}
    for path in (srv.data_dir / "logs" / "parts").rglob("*.part"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue   # merged away meanwhile
        out[path.name] = FOOTER.unpack_from(data, len(data) - FOOTER.size)[5] >> 16
    return out


def parts_bytes(srv) -> int:
    return sum(p.stat().st_size for p in (srv.data_dir / "logs" / "parts").rglob("*.part"))


def test_quiet_days_are_recompressed_and_read_back_unchanged(tmp_path):
    srv = make_server(tmp_path, extra_args=["--flush-mib", "1", "--compact-at-rest-after-secs", "2"])
    srv.start()
    try:
        logs = srv.logs()
        group = "/compat/at-rest"
        logs.create_log_group(logGroupName=group)
        rnd = random.Random(5)
        t0 = now_ms() - 3600_000
        for s in range(6):
            logs.create_log_stream(logGroupName=group, logStreamName=f"web/{s}")
            for k in range(4):
                events = [{"timestamp": t0 + k * 1000 + i,
                           "message": f"GET /api/items/{rnd.randrange(500)} {rnd.choice([200, 200, 404, 500])} "
                                      f"{rnd.randrange(1, 900)} ms user={rnd.randrange(40)}"}
                          for i in range(800)]
                logs.put_log_events(logGroupName=group, logStreamName=f"web/{s}", logEvents=events)
        srv.stop()   # flushes LZ4 parts; the restart opens them, quiet from then on
        srv.start()
        logs = srv.logs()
        flushed_codecs = part_codecs(srv)
        assert flushed_codecs and set(flushed_codecs.values()) == {LZ4}, flushed_codecs
        flushed_bytes = parts_bytes(srv)
        before = {s: get_all_forward(logs, group, f"web/{s}") for s in range(6)}
        filtered = logs.filter_log_events(logGroupName=group, filterPattern="500")["events"]
        deadline = time.monotonic() + 60
        while set(part_codecs(srv).values()) != {9}:
            assert time.monotonic() < deadline, part_codecs(srv)
            time.sleep(0.2)
        assert parts_bytes(srv) < flushed_bytes
        for s in range(6):
            assert get_all_forward(logs, group, f"web/{s}") == before[s]
        assert logs.filter_log_events(logGroupName=group, filterPattern="500")["events"] == filtered
        at_rest = part_codecs(srv)
        srv.restart()
        time.sleep(3)   # longer than the quiet time: nothing left to do
        assert part_codecs(srv) == at_rest
        logs = srv.logs()
        assert get_all_forward(logs, group, "web/0") == before[0]
    finally:
        srv.stop()
