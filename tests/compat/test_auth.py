"""Authentication and authorization (issue #7): boto3 signing real requests against a lookout with
configured access keys — right key accepted; wrong secret, unknown key, expired date, tampered body
and unsigned requests refused with the error each service's clients expect; a read-only key cannot
write; per-log-group-prefix grants; presigned URLs; the empty-region quirk; the console's sign-in;
the `lookout` CLI signing its requests; secrets never in the log."""

from __future__ import annotations

import datetime
import json
import subprocess
import textwrap

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from lookout_harness import lookout_bin, now_ms, peer, unique

pytestmark = pytest.mark.skipif(peer() == "moto", reason="moto verifies no signature")

ADMIN = ("admin-key", "admin-Secret-1234567890")
READER = ("reader-key", "reader-Secret-0987654321")
TEAM = ("team-a-key", "team-a-Secret-5555")
SLOW = ("slow-key", "slow-Secret-7777")

CONFIG = textwrap.dedent(f"""
    [[access_keys]]
    id = "{ADMIN[0]}"
    secret = "{ADMIN[1]}"
    policy = "full"

    [[access_keys]]
    id = "{READER[0]}"
    secret = "{READER[1]}"
    policy = "read-only"

    [[access_keys]]
    id = "{TEAM[0]}"
    secret = "{TEAM[1]}"
    grants = [
        {{ services = ["logs"], access = "full", log_group_prefixes = ["/team-a/"] }},
        {{ services = ["ecs"], access = "read" }},
    ]

    [[access_keys]]
    id = "{SLOW[0]}"
    secret = "{SLOW[1]}"
    policy = "read-only"
    requests_per_second = 2
    burst = 2
""")


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    from lookout_harness import make_server
    srv = make_server(tmp_path_factory.mktemp("auth"))
    cfg = srv.workdir / "lookout.toml"
    cfg.write_text(CONFIG)
    srv.extra_args = ["--config", str(cfg), "--runtime", "process"]
    srv.start()
    yield srv
    srv.stop()


def client(srv, service, key=ADMIN, region=None):
    session = boto3.session.Session(aws_access_key_id=key[0], aws_secret_access_key=key[1],
                                    region_name=region or srv.region)
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return session.client(service, endpoint_url=srv.endpoint, config=cfg)


def code_of(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def signed_post(srv, target, body: bytes, key=ADMIN, service="logs", region=None, when=None, tamper=None):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers=headers)
    auth = SigV4Auth(Credentials(*key), service, srv.region if region is None else region)
    if when is not None:
        # botocore stamps X-Amz-Date from the clock: sign "at" another time by patching it.
        import botocore.auth as ba
        real = ba.datetime.datetime

        class Fixed(real):
            @classmethod
            def utcnow(cls):
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):
                return when if tz else when.replace(tzinfo=None)

        ba.datetime.datetime = Fixed
        try:
            auth.add_auth(req)
        finally:
            ba.datetime.datetime = real
    else:
        auth.add_auth(req)
    sent = tamper(body) if tamper else body
    return requests.post(srv.endpoint + "/", data=sent, headers=dict(req.headers.items()), timeout=10)


def test_the_right_key_is_accepted_by_every_service(authed):
    logs = client(authed, "logs")
    group = unique("/auth/ok")
    logs.create_log_group(logGroupName=group)
    assert any(g["logGroupName"] == group for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"])
    assert client(authed, "ecs").list_clusters()["clusterArns"]
    assert "EventBuses" in client(authed, "events").list_event_buses()
    assert "Topics" in client(authed, "sns").list_topics()
    me = client(authed, "sts").get_caller_identity()
    assert me["UserId"] == ADMIN[0]


def test_a_wrong_secret_is_refused_as_each_service_refuses_it(authed):
    bad = (ADMIN[0], "not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "logs", bad).describe_log_groups()
    assert code_of(e) == "InvalidSignatureException"
    assert "signature we calculated does not match" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "ecs", bad).list_clusters()
    assert code_of(e) == "InvalidSignatureException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "sns", bad).list_topics()
    assert code_of(e) == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_key_is_refused(authed):
    ghost = ("AKIANOBODY", "whatever")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "logs", ghost).describe_log_groups()
    assert code_of(e) == "UnrecognizedClientException"
    assert e.value.response["Error"]["Message"] == "The security token included in the request is invalid."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "sts", ghost).get_caller_identity()
    assert code_of(e) == "InvalidClientTokenId"


def test_an_expired_or_future_date_is_refused(authed):
    body = json.dumps({}).encode()
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    r = signed_post(authed, "Logs_20140328.DescribeLogGroups", body, when=old)
    assert r.status_code == 400, r.text
    assert r.json()["__type"] == "InvalidSignatureException"
    assert "Signature expired" in r.json()["message"]
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=20)
    r = signed_post(authed, "Logs_20140328.DescribeLogGroups", body, when=future)
    assert r.json()["__type"] == "InvalidSignatureException", r.text
    # Within the ±15 minute skew: accepted.
    near = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    assert signed_post(authed, "Logs_20140328.DescribeLogGroups", body, when=near).status_code == 200


def test_a_tampered_body_is_refused_and_nothing_is_written(authed):
    logs = client(authed, "logs")
    group = unique("/auth/tamper")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    body = json.dumps({"logGroupName": group, "logStreamName": "s",
                       "logEvents": [{"timestamp": now_ms(), "message": "amount=10"}]}).encode()
    r = signed_post(authed, "Logs_20140328.PutLogEvents", body, tamper=lambda b: b.replace(b"=10", b"=99"))
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException", r.text
    assert logs.get_log_events(logGroupName=group, logStreamName="s")["events"] == []
    r = signed_post(authed, "Logs_20140328.PutLogEvents", body)
    assert r.status_code == 200, r.text


def test_unsigned_requests_are_refused(authed):
    r = requests.post(authed.endpoint + "/", data=b"{}", timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"})
    assert r.status_code == 400
    assert r.json()["__type"] == "MissingAuthenticationTokenException"
    r = requests.post(authed.endpoint + "/", data={"Action": "ListTopics"}, timeout=10)
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text
    r = requests.get(authed.endpoint + "/_lookout/events/deliveries", timeout=10)
    assert r.status_code == 401 and "not signed" in r.json()["error"]
    # Health, readiness and the console's sign-in page need no key.
    assert requests.get(authed.endpoint + "/ready", timeout=10).status_code == 200


def test_a_read_only_key_reads_but_cannot_write(authed):
    admin_logs = client(authed, "logs")
    group = unique("/auth/ro")
    admin_logs.create_log_group(logGroupName=group)
    admin_logs.create_log_stream(logGroupName=group, logStreamName="s")
    admin_logs.put_log_events(logGroupName=group, logStreamName="s",
                              logEvents=[{"timestamp": now_ms(), "message": "written by admin"}])
    logs = client(authed, "logs", READER)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["written by admin"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": now_ms(), "message": "sneaky"}])
    assert code_of(e) == "AccessDeniedException"
    assert f"user/{READER[0]} is not authorized to perform: logs:PutLogEvents" in e.value.response["Error"]["Message"]
    for call in (lambda: logs.create_log_group(logGroupName=unique("/auth/no")),
                 lambda: logs.delete_log_group(logGroupName=group),
                 lambda: client(authed, "ecs", READER).run_task(taskDefinition="nope"),
                 lambda: client(authed, "events", READER).put_rule(Name="r", ScheduleExpression="rate(1 hour)")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code_of(e) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(authed, "sns", READER).create_topic(Name="nope")
    assert code_of(e) == "AuthorizationError"
    assert client(authed, "sns", READER).list_topics() is not None
    assert client(authed, "ecs", READER).list_tasks() is not None
    assert client(authed, "sts", READER).get_caller_identity()["UserId"] == READER[0]
    assert [e["message"] for e in admin_logs.get_log_events(logGroupName=group, logStreamName="s")["events"]] == [
        "written by admin"]


def test_grants_limit_a_key_to_a_log_group_prefix_and_services(authed):
    logs = client(authed, "logs", TEAM)
    mine = unique("/team-a/app")
    logs.create_log_group(logGroupName=mine)
    logs.create_log_stream(logGroupName=mine, logStreamName="s")
    logs.put_log_events(logGroupName=mine, logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "hi"}])
    assert logs.describe_log_groups(logGroupNamePrefix="/team-a/")["logGroups"]
    arn = f"arn:aws:logs:{authed.region}:{authed.account_id}:log-group:{mine}"
    assert logs.filter_log_events(logGroupIdentifier=arn)["events"][0]["message"] == "hi"
    for call in (lambda: logs.create_log_group(logGroupName=unique("/team-b/app")),
                 lambda: logs.describe_log_groups(),
                 lambda: client(authed, "events", TEAM).list_rules(),
                 lambda: client(authed, "ecs", TEAM).run_task(taskDefinition="x")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code_of(e) == "AccessDeniedException"
    assert client(authed, "ecs", TEAM).list_clusters()["clusterArns"]


def test_presigned_urls_and_the_empty_region_quirk(authed):
    # As aws-iam-authenticator and Vault do: a GET URL for GetCallerIdentity (botocore signs the
    # operation's own method, POST, unless told otherwise).
    url = client(authed, "sts").generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Signature=" in url
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert f"<UserId>{ADMIN[0]}</UserId>" in r.text
    r = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text
    # Old Go SDKs sign with an empty region: AKID/20261122//logs/aws4_request.
    r = signed_post(authed, "Logs_20140328.DescribeLogGroups", b"{}", region="")
    assert "Credential=" in r.request.headers["Authorization"] and "//logs/" in r.request.headers["Authorization"]
    assert r.status_code == 200, r.text


def test_the_cli_signs_with_the_environments_key(authed):
    env = authed.env
    env.update({"AWS_ACCESS_KEY_ID": READER[0], "AWS_SECRET_ACCESS_KEY": READER[1]})
    group = unique("/auth/cli")
    client(authed, "logs").create_log_group(logGroupName=group)
    out = subprocess.run([str(lookout_bin()), "logs", "groups", "--prefix", group], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert group in out.stdout
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    out = subprocess.run([str(lookout_bin()), "logs", "groups"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "InvalidSignatureException" in out.stderr, out.stderr
    env["AWS_SECRET_ACCESS_KEY"] = READER[1]
    out = subprocess.run([str(lookout_bin()), "events", "deliveries"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr


def test_console_sign_in_and_the_keys_policy(authed):
    s = requests.Session()
    r = s.get(authed.endpoint + "/console/logs", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].startswith("/console/login")
    r = s.get(authed.endpoint + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert s.get(authed.endpoint + "/console/api/tail?group=x", timeout=10).status_code == 401
    r = s.post(authed.endpoint + "/console/login", data={"key_id": READER[0], "secret": "wrong", "next": "/"},
               allow_redirects=False, timeout=10)
    assert r.status_code == 401 and 'id="login-error"' in r.text
    r = s.post(authed.endpoint + "/console/login",
               data={"key_id": READER[0], "secret": READER[1], "next": "/console/logs"},
               allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/console/logs"
    assert "HttpOnly" in r.headers["Set-Cookie"]
    page = s.get(authed.endpoint + "/console/logs", timeout=10)
    assert page.status_code == 200 and READER[0] in page.text
    # A read-only key may not start or stop tasks from the console either.
    r = s.post(authed.endpoint + "/console/tasks/0123/run-again", allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "ecs:RunTask" in r.text
    # An open redirect is not possible through `next`.
    r = s.post(authed.endpoint + "/console/login",
               data={"key_id": READER[0], "secret": READER[1], "next": "//evil.example/"},
               allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "/"
    s.post(authed.endpoint + "/console/logout", timeout=10)
    assert s.get(authed.endpoint + "/console/logs", allow_redirects=False, timeout=10).status_code == 303


def test_secrets_never_reach_the_log(authed):
    with pytest.raises(botocore.exceptions.ClientError):
        client(authed, "logs", (ADMIN[0], "a-wrong-secret-XYZ")).describe_log_groups()
    out = authed.output()
    for secret in (ADMIN[1], READER[1], TEAM[1], "a-wrong-secret-XYZ"):
        assert secret not in out


def test_open_mode_says_so_loudly_off_loopback(tmp_path):
    from lookout_harness import free_port
    port = free_port()
    proc = subprocess.Popen([str(lookout_bin()), "serve", "--listen", f"0.0.0.0:{port}", "--no-auth",
                             "--data-dir", str(tmp_path / "d"), "--no-tls"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = ""
        import time
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "lookout is ready" not in seen:
            seen += proc.stdout.readline()
        assert "AUTHENTICATION IS OFF" in seen, seen
        r = requests.post(f"http://127.0.0.1:{port}/", data=b"{}", timeout=10, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_keys_rate_limit_throttles_with_retry_after(authed):
    answers = [signed_post(authed, "Logs_20140328.DescribeLogGroups", b"{}", key=SLOW) for _ in range(8)]
    throttled = [r for r in answers if r.status_code != 200]
    assert 2 <= len(answers) - len(throttled) <= 4, [r.status_code for r in answers]
    assert throttled, "8 requests at once should exceed 2 per second with a burst of 2"
    for r in throttled:
        assert r.status_code == 400 and r.json() == {"__type": "ThrottlingException", "message": "Rate exceeded"}
        assert int(r.headers["Retry-After"]) >= 1
    # Other keys are not affected, and botocore's retries get through once tokens refill.
    assert signed_post(authed, "Logs_20140328.DescribeLogGroups", b"{}").status_code == 200
    session = boto3.session.Session(aws_access_key_id=SLOW[0], aws_secret_access_key=SLOW[1],
                                    region_name=authed.region)
    patient = session.client("logs", endpoint_url=authed.endpoint,
                             config=Config(retries={"total_max_attempts": 10, "mode": "standard"}))
    for _ in range(6):
        patient.describe_log_groups(limit=1)
    r = requests.post(authed.endpoint + "/", data={"Action": "ListTopics"}, timeout=10)
    assert r.status_code == 403  # unsigned: refused before any rate accounting
