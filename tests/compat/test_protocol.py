"""The JSON 1.1 wire: request ids, error shapes, unknown operations, malformed bodies, SigV4 quirks,
and STS GetCallerIdentity."""

import json
import re

import pytest
from botocore.exceptions import ClientError

from lookout_harness import now_ms, unique

UUIDISH = re.compile(r"^[0-9A-Za-z-]{8,}$")


def request_id_of(meta):
    headers = {k.lower(): v for k, v in meta["HTTPHeaders"].items()}
    rid = headers.get("x-amzn-requestid")
    assert rid and UUIDISH.match(rid), headers
    assert meta.get("RequestId") == rid
    return rid


def test_request_id_on_success_responses(logs, group):
    ids = set()
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    calls = [
        lambda: logs.describe_log_groups(logGroupNamePrefix=group),
        lambda: logs.describe_log_streams(logGroupName=group),
        lambda: logs.put_log_events(logGroupName=group, logStreamName="s",
                                    logEvents=[{"timestamp": now_ms(), "message": "m"}]),
        lambda: logs.get_log_events(logGroupName=group, logStreamName="s"),
        lambda: logs.filter_log_events(logGroupName=group),
        lambda: logs.put_retention_policy(logGroupName=group, retentionInDays=1),
        lambda: logs.delete_retention_policy(logGroupName=group),
        lambda: logs.list_tags_log_group(logGroupName=group),
        lambda: logs.delete_log_stream(logGroupName=group, logStreamName="s"),
        lambda: logs.delete_log_group(logGroupName=group),
    ]
    for call in calls:
        r = call()
        meta = r["ResponseMetadata"]
        assert meta["HTTPStatusCode"] == 200
        headers = {k.lower(): v for k, v in meta["HTTPHeaders"].items()}
        assert headers.get("content-type", "").startswith("application/x-amz-json-1.1"), headers
        ids.add(request_id_of(meta))
    assert len(ids) == len(calls)  # one id per request


def test_request_id_on_error_responses(logs):
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=unique("/compat/missing"))
    meta = e.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 400
    request_id_of(meta)


def test_request_id_header_keeps_its_case_on_the_wire(server):
    """Fluent Bit's cloudwatch_logs output searches the raw response for the bytes
    `x-amzn-RequestId` (case-sensitive) and resends a batch answered 200 without them."""
    import socket
    import ssl

    from lookout_harness import peer
    if peer() == "moto":
        pytest.skip("lookout's wire")

    def head_of(sock):
        body = b'{}'
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
                     b"X-Amz-Target: Logs_20140328.DescribeLogGroups\r\nConnection: close\r\n"
                     b"Content-Length: 2\r\n\r\n" + body)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        return got.split(b"\r\n\r\n")[0]

    plain = head_of(socket.create_connection(("127.0.0.1", server.port), timeout=10))
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = head_of(ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10)))
    health = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    health.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    ok = health.recv(4096)
    for head in (plain, tls, ok):
        assert re.search(rb"\r\nx-amzn-RequestId: [0-9a-f-]{36}\r\n", head + b"\r\n"), head
    assert ok.startswith(b"HTTP/1.1 200")


def test_error_body_shape(server):
    r = server.raw("DescribeLogStreams", {"logGroupName": unique("/compat/missing")})
    assert r.status_code == 400
    assert r.headers.get("x-amzn-RequestId")
    body = r.json()
    assert body == {"__type": "ResourceNotFoundException", "message": "The specified log group does not exist."}


def test_operation_without_output_returns_json(server, group):
    r = server.raw("PutRetentionPolicy", {"logGroupName": group, "retentionInDays": 3})
    assert r.status_code == 200
    assert r.headers.get("x-amzn-RequestId")
    assert isinstance(json.loads(r.text or "{}"), dict)


def test_unknown_operation_is_aws_error(server):
    r = server.raw("NoSuchOperation", {})
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers.get("x-amzn-RequestId")
    body = r.json()
    assert body.get("__type") and "#" not in body["__type"]
    assert body["__type"] == "UnknownOperationException"


def test_unknown_target_prefix_is_aws_error(server):
    r = server.raw(None, {}, target="NotAService_20990101.Whatever")
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json().get("__type")


def test_malformed_json_is_aws_error(server):
    for body in (b"{not json", b"[1, 2]", b'{"logGroupName": 5}', b"\xff\xfe"):
        r = server.raw("CreateLogGroup", body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.headers.get("x-amzn-RequestId")
        err = r.json()
        assert err.get("__type") and "#" not in err["__type"], err
        assert "message" in err or "Message" in err


def test_missing_required_member_is_error(server):
    r = server.raw("CreateLogStream", {"logGroupName": unique("/compat/x")})
    assert r.status_code == 400
    assert r.json().get("__type") in ("InvalidParameterException", "ValidationException",
                                      "SerializationException")


def test_empty_body_for_operation_without_required_input(server):
    r = server.raw("DescribeLogGroups", b"")
    assert r.status_code in (200, 400), r.text
    assert r.headers.get("x-amzn-RequestId")
    r = server.raw("DescribeLogGroups", b"{}")
    assert r.status_code == 200 and "logGroups" in r.json()


def test_empty_region_in_signature_is_accepted(server):
    # an old Go SDK signs with `AKID/yyyymmdd//logs/aws4_request`
    r = server.raw("DescribeLogGroups", {"limit": 1}, region="")
    assert "//logs/aws4_request" in r.request.headers["Authorization"]
    assert r.status_code == 200, r.text


def test_security_token_header_accepted(server):
    r = server.raw("DescribeLogGroups", {"limit": 1}, headers={"X-Amz-Security-Token": "FQoGZXIvYXdzEtoken"})
    assert r.status_code == 200, r.text


def test_sts_get_caller_identity_default_account(server):
    ident = server.client("sts").get_caller_identity()
    assert ident["Account"] == "000000000000"
    assert ident["Arn"].startswith("arn:aws:")
    assert ident["UserId"]
    request_id_of(ident["ResponseMetadata"])


def test_sts_and_arns_use_configured_account(new_server):
    srv = new_server(account_id="123456789012", region="eu-west-3")
    ident = srv.client("sts").get_caller_identity()
    assert ident["Account"] == "123456789012"
    assert ":123456789012:" in ident["Arn"]
    logs = srv.logs()
    name = unique("/compat/acct")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    [g] = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert g["arn"] == f"arn:aws:logs:eu-west-3:123456789012:log-group:{name}:*"
    assert g["logGroupArn"] == f"arn:aws:logs:eu-west-3:123456789012:log-group:{name}"
    [s] = logs.describe_log_streams(logGroupName=name)["logStreams"]
    assert s["arn"] == f"arn:aws:logs:eu-west-3:123456789012:log-group:{name}:log-stream:s"
    logs.tag_resource(resourceArn=g["logGroupArn"], tags={"k": "v"})
    assert logs.list_tags_for_resource(resourceArn=g["logGroupArn"])["tags"] == {"k": "v"}
