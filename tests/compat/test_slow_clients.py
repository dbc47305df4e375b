"""Slow-client protection (issue #7): a client that sends its headers slowly, trickles a body, sits
idle on a keep-alive connection, or never reads its answers cannot hold lookout's resources past the
configured deadlines, and `--max-connections` bounds how many are served at once — while ordinary
boto3 clients keep being served.

The deadlines are shortened here (2 s) so that the tests are quick; the defaults are 60 / 60 / 30 s.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from lookout_harness import make_group, now_ms, peer, put_events, unique

pytestmark = pytest.mark.skipif(peer() == "moto", reason="lookout's own connection limits")

LIMIT_SECS = 2
LIMIT_ARGS = ["--no-auth", "--idle-timeout-secs", str(LIMIT_SECS), "--body-timeout-secs", str(LIMIT_SECS),
              "--write-timeout-secs", str(LIMIT_SECS)]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    from lookout_harness import LookoutServer
    srv = LookoutServer(tmp_path_factory.mktemp("slow-clients"), extra_args=LIMIT_ARGS).start()
    yield srv
    srv.stop()


def connect(srv, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", srv.port))
    return s


def closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closes `s` within `seconds` (EOF or reset), and what it sent before."""
    s.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def request_head(target: str, length: int) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: Logs_20140328.{target}\r\nContent-Length: {length}\r\n\r\n").encode()


def test_slow_headers_are_cut_off_while_others_are_served(limited):
    # 40 clients that start a request head and never finish it (slowloris).
    slow = [connect(limited) for _ in range(40)]
    for s in slow:
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: Logs_20140328.")
    started = time.monotonic()
    # Meanwhile a real client is served as usual.
    logs = limited.logs()
    group = make_group(logs, unique("/slow/g"), streams=("s",))
    put_events(logs, group, "s", [(now_ms(), "served beside slow clients")])
    assert logs.get_log_events(logGroupName=group, logStreamName="s")["events"][0]["message"] \
        == "served beside slow clients"
    # And each slow one is closed once the head deadline passes, without an answer to parse.
    for s in slow:
        closed, _ = closed_within(s, LIMIT_SECS + 8 - (time.monotonic() - started))
        assert closed, "a connection sending its head slowly was still open well past --idle-timeout-secs"
        s.close()
    assert limited.alive()


def test_an_idle_keep_alive_connection_is_closed(limited):
    s = connect(limited)
    body = b"{}"
    s.sendall(request_head("DescribeLogGroups", len(body)) + body)
    s.settimeout(5)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first[:200]
    # The connection is kept alive for the next request...
    s.sendall(request_head("DescribeLogGroups", len(body)) + body)
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    # ...but not forever once it goes quiet.
    closed, _ = closed_within(s, LIMIT_SECS + 8)
    assert closed, "an idle keep-alive connection outlived --idle-timeout-secs"
    s.close()


def test_a_trickled_body_gets_408_request_timeout(limited):
    s = connect(limited)
    body = json.dumps({"logGroupNamePrefix": "/never-finished/" + "x" * 200}).encode()
    s.sendall(request_head("DescribeLogGroups", len(body)) + body[:10])
    started = time.monotonic()
    closed, answer = closed_within(s, LIMIT_SECS + 8)
    waited = time.monotonic() - started
    s.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"x-amzn-errortype: RequestTimeoutException" in head.lower().replace(b"requesttimeoutexception",
                                                                               b"RequestTimeoutException")
    error = json.loads(payload)
    assert error["__type"] == "RequestTimeoutException"
    assert "did not arrive within 2 s" in error["message"] and "--body-timeout-secs" in error["message"]
    assert waited >= LIMIT_SECS - 0.5, f"answered after {waited:.1f}s, before the deadline"
    # The refusal is logged with its request id.
    assert "request refused" in limited.output() and "did not arrive within" in limited.output()


def test_a_client_that_never_reads_its_answers_is_disconnected(limited):
    logs = limited.logs()
    group = make_group(logs, unique("/slow/big"), streams=("s",))
    base = now_ms() - 60_000
    line = "y" * 900
    for batch in range(10):
        put_events(logs, group, "s", [(base + batch * 1000 + i, f"{batch}-{i} {line}") for i in range(1000)])
    one = json.dumps({"logGroupName": group, "logStreamName": "s", "startFromHead": True, "limit": 10000}).encode()
    # A tiny receive window and 30 pipelined requests for 1 MB answers each, never read.
    s = connect(limited, rcvbuf=4096)
    sender = threading.Thread(target=lambda: _send_quietly(s, request_head("GetLogEvents", len(one)) + one, 30),
                              daemon=True)
    sender.start()
    time.sleep(LIMIT_SECS + 4)
    # Now read: the server gave up on this connection, so the answers end early with EOF or a reset.
    closed, got = closed_within(s, 30)
    s.close()
    assert closed, "a connection whose client reads nothing was kept open past --write-timeout-secs"
    assert got.count(b"HTTP/1.1 200") < 30, "every answer arrived: the write deadline never fired"
    # The server itself is unharmed.
    assert logs.get_log_events(logGroupName=group, logStreamName="s", limit=1)["events"]
    assert limited.alive()


def _send_quietly(s: socket.socket, request: bytes, times: int) -> None:
    try:
        for _ in range(times):
            s.sendall(request)
    except OSError:
        pass  # the server closed the connection: what the test expects


def test_max_connections_makes_new_connections_wait(new_server):
    srv = new_server(extra_args=["--no-auth", "--max-connections", "3", "--idle-timeout-secs", str(LIMIT_SECS)])
    held = [connect(srv) for _ in range(3)]
    for s in held:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")   # an unfinished head holds a slot
    time.sleep(0.3)
    started = time.monotonic()
    logs = srv.logs()
    logs.describe_log_groups()                               # served once a slot frees
    waited = time.monotonic() - started
    for s in held:
        s.close()
    assert waited >= LIMIT_SECS - 1, f"served after {waited:.1f}s although every slot was held"
    assert "serving as many connections as --max-connections allows" in srv.output()
