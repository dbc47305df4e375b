"""SNS through boto3 (and the AWS CLI) against the real binary, with a real SMTP server (aiosmtpd,
in this process) and real HTTP endpoints (http.server in threads).

Covered: every operation and its errors with AWS's codes and messages; email (confirmation mail
with a working link, exactly one plain-text mail per Publish with its subject, the unsubscribe
link), email-json (JSON bodies, the SubscribeURL), http (SubscriptionConfirmation, SubscribeURL,
signed Notifications verified with the certificate served at SigningCertURL, MessageStructure
overrides), retries with the same MessageId, a delivery recorded as failed after its last retry
(`GET /_lookout/sns/failed-deliveries` and the log line), email without an SMTP relay, and kill -9
of lookout between Publish and delivery (the delivery happens after the restart).
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.exceptions
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lookout_harness import error_of, free_port, make_server, start_smtp, unique

# Retries shrunk so that the retry tests take about a second.
FAST_RETRIES = ["--sns-http-retries", "3", "--sns-http-min-delay", "300ms", "--sns-http-max-delay", "300ms",
                "--sns-email-retries", "2", "--sns-email-min-delay", "200ms", "--sns-email-max-delay", "200ms"]


def text(mail: email.message.EmailMessage) -> str:
    """A mail's decoded body with \n line ends."""
    return mail.get_content().replace("\r\n", "\n")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


# ----- a real SMTP server ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smtp():
    box, controller = start_smtp()
    yield box
    controller.stop()


# ----- real HTTP endpoints -----------------------------------------------------------------------

class Hook:
    """An HTTP server in a thread that records every POST. `fail[path]` is a list of statuses to
    answer that path's Notifications with, in order (then 200); `always[path]` answers them all."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.fail: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "Hook":
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("x-amz-sns-message-type")
                with hook.lock:
                    hook.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": json.loads(body), "raw": body})
                    status = 200
                    if kind == "Notification":
                        if self.path in hook.always:
                            status = hook.always[self.path]
                        elif hook.fail.get(self.path):
                            status = hook.fail[self.path].pop(0)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def at(self, path: str, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.received
                    if r["path"] == path and (kind is None or r["headers"].get("x-amz-sns-message-type") == kind)]

    def wait(self, path: str, kind: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return wait_for(lambda: len(self.at(path, kind)) >= count and self.at(path, kind), timeout,
                        f"{count} {kind} at {path}")


@pytest.fixture(scope="module")
def hook():
    h = Hook().start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, smtp):
    s = make_server(tmp_path_factory.mktemp("sns"),
                    extra_args=["--smtp-url", f"smtp://127.0.0.1:{smtp.port}", *FAST_RETRIES])
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sns(srv):
    return srv.client("sns")


@pytest.fixture(scope="module")
def raw_sns(srv):
    return srv.client("sns", validate=False)


def topic(sns, **kw) -> str:
    return sns.create_topic(Name=unique("t"), **kw)["TopicArn"]


# ----- signatures, as a subscriber checks them ---------------------------------------------------

def string_to_sign(doc: dict) -> bytes:
    if doc["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{doc[k]}\n" for k in keys if k in doc).encode()


def verify(doc: dict) -> None:
    """Raises unless the document's signature verifies with the certificate at SigningCertURL."""
    assert doc["SignatureVersion"] == "2"
    pem = requests.get(doc["SigningCertURL"], timeout=10)
    assert pem.status_code == 200
    cert = x509.load_pem_x509_certificate(pem.content)
    cert.public_key().verify(base64.b64decode(doc["Signature"]), string_to_sign(doc), padding.PKCS1v15(),
                             hashes.SHA256())


def subscription(sns, topic_arn: str, endpoint: str) -> dict:
    subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return next(s for s in subs if s["Endpoint"] == endpoint)


def confirm_http(sns, hook: Hook, topic_arn: str, path: str) -> str:
    """Subscribes hook's `path`, confirms through the SubscribeURL, returns the SubscriptionArn."""
    assert sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=hook.url(path))["SubscriptionArn"] \
        == "pending confirmation"
    conf = hook.wait(path, "SubscriptionConfirmation")[-1]["body"]
    r = requests.get(conf["SubscribeURL"], timeout=10)
    assert r.status_code == 200, r.text
    return re.search(r"<SubscriptionArn>(.*?)</SubscriptionArn>", r.text).group(1)


def failed_deliveries(server) -> list[dict]:
    r = server.admin_get("/_lookout/sns/failed-deliveries", service="sns")
    assert r.status_code == 200
    return r.json()["failedDeliveries"]


# ----- topics ------------------------------------------------------------------------------------

def test_topics_create_get_set_list_delete(sns, srv):
    name = unique("alerts")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Ops"})["TopicArn"]
    assert arn == f"arn:aws:sns:{srv.region}:{srv.account_id}:{name}"
    assert sns.create_topic(Name=name)["TopicArn"] == arn, "CreateTopic is idempotent by name"
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Ops"})["TopicArn"] == arn
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn
    assert attrs["Owner"] == srv.account_id
    assert attrs["DisplayName"] == "Ops"
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"], attrs["SubscriptionsDeleted"]) \
        == ("0", "0", "0")
    assert json.loads(attrs["Policy"])["Statement"][0]["Resource"] == arn
    policy = json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]
    assert policy["numRetries"] == 3
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Ops & <Friends>")
    delivery_policy = json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 5}}})
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue=delivery_policy)
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Ops & <Friends>"
    assert attrs["DeliveryPolicy"] == delivery_policy
    arns = [t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]]
    assert arn in arns
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting again is fine, as on AWS
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.get_topic_attributes(TopicArn=arn)
    assert error_of(e) == ("NotFound", "Topic does not exist")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_list_topics_pages_by_one_hundred(new_server):
    s = new_server()
    sns = s.client("sns")
    for i in range(130):
        sns.create_topic(Name=f"page-{i:03d}")
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    second = sns.list_topics(NextToken=first["NextToken"])
    assert len(second["Topics"]) == 30 and "NextToken" not in second
    arns = [t["TopicArn"] for t in first["Topics"] + second["Topics"]]
    assert arns == sorted(set(arns))


@pytest.mark.parametrize("call, code, message", [
    (lambda s: s.create_topic(Name="bad name"), "InvalidParameter", "Invalid parameter: Topic Name"),
    (lambda s: s.create_topic(Name="x" * 257), "InvalidParameter", "Invalid parameter: Topic Name"),
    (lambda s: s.get_topic_attributes(TopicArn="arn:aws:sns:us-east-1:000000000000:missing"),
     "NotFound", "Topic does not exist"),
    (lambda s: s.get_topic_attributes(TopicArn="not-an-arn"), "InvalidParameter", "Invalid parameter: TopicArn"),
    (lambda s: s.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:missing", Message="m"),
     "NotFound", "Topic does not exist"),
    (lambda s: s.subscribe(TopicArn="arn:aws:sns:us-east-1:000000000000:missing", Protocol="email",
                           Endpoint="a@example.com"), "NotFound", "Topic does not exist"),
    (lambda s: s.unsubscribe(SubscriptionArn="nope"), "InvalidParameter", "Invalid parameter: SubscriptionArn"),
    (lambda s: s.unsubscribe(SubscriptionArn="arn:aws:sns:us-east-1:000000000000:t:0000"),
     "NotFound", "Subscription does not exist"),
    (lambda s: s.get_subscription_attributes(SubscriptionArn="arn:aws:sns:us-east-1:000000000000:t:0000"),
     "NotFound", "Subscription does not exist"),
    (lambda s: s.set_topic_attributes(TopicArn="arn:aws:sns:us-east-1:000000000000:missing",
                                      AttributeName="DisplayName", AttributeValue="x"),
     "NotFound", "Topic does not exist"),
])
def test_errors_have_aws_codes_and_messages(sns, call, code, message):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(sns)
    assert error_of(e) == (code, message)


def test_topic_and_subscription_argument_errors(sns, raw_sns):
    arn = topic(sns)
    cases = [
        (lambda: sns.create_topic(Name=arn.split(":")[-1], Attributes={"DisplayName": "Other"}),
         "Invalid parameter: Attributes Reason: Topic already exists with different attributes"),
        (lambda: sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue="not json"),
         "Invalid parameter: Policy: must be a JSON object"),
        (lambda: sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="not-an-address"),
         "Invalid parameter: Email address"),
        (lambda: sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="https://example.com/x"),
         "Invalid parameter: Endpoint must match the specified protocol"),
        (lambda: sns.subscribe(TopicArn=arn, Protocol="https", Endpoint="not a url"), "Invalid parameter: Endpoint"),
        (lambda: sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"),
         "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"),
        (lambda: sns.confirm_subscription(TopicArn=arn, Token="0" * 64), "Invalid parameter: Token"),
        (lambda: sns.publish(TopicArn=arn, Message="m", Subject="x" * 100), "Invalid parameter: Subject"),
        (lambda: sns.publish(TopicArn=arn, Message="m", Subject="two\nlines"), "Invalid parameter: Subject"),
        (lambda: sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1)), "Invalid parameter: Message too long"),
        (lambda: raw_sns.publish(TopicArn=arn, Message=""), "Invalid parameter: Empty message"),
        (lambda: sns.publish(TopicArn=arn, Message='{"email": "e"}', MessageStructure="json"),
         "Invalid parameter: Message Structure - No default entry in JSON message body"),
        (lambda: sns.publish(TopicArn=arn, Message="{oops", MessageStructure="json"),
         "Invalid parameter: Message Structure - JSON message body failed to parse"),
        (lambda: sns.publish(TopicArn=arn, Message="m", MessageStructure="xml"), "Invalid parameter: MessageStructure"),
    ]
    for call, message in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("InvalidParameter", message)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The limits themselves are accepted.
    assert sns.publish(TopicArn=arn, Message="x" * (256 * 1024), Subject="s" * 99)["MessageId"]


def test_publish_without_subscribers_returns_a_message_id(sns):
    arn = topic(sns)
    ids = {sns.publish(TopicArn=arn, Message="nobody listens")["MessageId"] for _ in range(3)}
    assert len(ids) == 3
    assert sns.publish(TargetArn=arn, Message="by TargetArn")["MessageId"]


# ----- email -------------------------------------------------------------------------------------

def test_email_confirmation_link_then_exactly_one_plain_text_mail(sns, smtp):
    arn = topic(sns, Attributes={"DisplayName": "Prod alerts"})
    address = f"{unique('ops')}@example.com"
    assert sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=address)["SubscriptionArn"] == "pending confirmation"
    pending = subscription(sns, arn, address)
    assert (pending["SubscriptionArn"], pending["Protocol"]) == ("PendingConfirmation", "email")
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["SubscriptionsPending"] == "1"

    [confirmation] = smtp.wait(address, 1)
    assert confirmation["Subject"] == "AWS Notification - Subscription Confirmation"
    assert "Prod alerts" in confirmation["From"]
    body = text(confirmation)
    assert arn in body
    link = re.search(r"(http://\S+/sns/confirm\?\S+)", body).group(1)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200
    assert "Subscription confirmed!" in page.text
    confirmed = subscription(sns, arn, address)
    assert confirmed["SubscriptionArn"].startswith(arn + ":")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "1"
    # Opening the link again is harmless.
    assert requests.get(link, timeout=10).status_code == 200

    sns.publish(TopicArn=arn, Subject="Disk full on db-1", Message="95% used on /data\nsecond line")
    mails = smtp.wait(address, 2)
    time.sleep(1.0)
    assert len(smtp.to(address)) == 2, "exactly one mail per Publish"
    mail = mails[1]
    assert mail["Subject"] == "Disk full on db-1"
    assert mail.get_content_type() == "text/plain"
    body = text(mail)
    assert body.startswith("95% used on /data\nsecond line\n")
    unsubscribe = re.search(r"(http://\S+/sns/unsubscribe\?\S+)", body).group(1)

    # Without a subject: AWS's default one.
    sns.publish(TopicArn=arn, Message="no subject")
    assert smtp.wait(address, 3)[2]["Subject"] == "AWS Notification Message"

    # The footer's link unsubscribes; later messages are not sent.
    page = requests.get(unsubscribe, timeout=10)
    assert page.status_code == 200 and "Subscription removed!" in page.text
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"
    sns.publish(TopicArn=arn, Message="after unsubscribe")
    time.sleep(1.0)
    assert len(smtp.to(address)) == 3


def test_email_json_sends_json_documents(sns, smtp):
    arn = topic(sns)
    address = f"{unique('json')}@example.com"
    sub_arn = sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint=address,
                            ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert sub_arn.startswith(arn + ":"), "ReturnSubscriptionArn returns the ARN while pending"
    [mail] = smtp.wait(address, 1)
    doc = json.loads(text(mail))
    assert doc["Type"] == "SubscriptionConfirmation"
    verify(doc)
    r = requests.get(doc["SubscribeURL"], timeout=10)
    assert r.status_code == 200
    assert f"<SubscriptionArn>{sub_arn}</SubscriptionArn>" in r.text
    message_id = sns.publish(TopicArn=arn, Message='{"default": "d", "email-json": "for json mail"}',
                             MessageStructure="json")["MessageId"]
    doc = json.loads(text(smtp.wait(address, 2)[1]))
    assert (doc["Type"], doc["MessageId"], doc["Message"], doc["TopicArn"]) \
        == ("Notification", message_id, "for json mail", arn)
    verify(doc)


def test_email_without_a_relay_is_recorded_failed(new_server):
    s = new_server(extra_args=["--sns-email-retries", "1", "--sns-email-min-delay", "100ms",
                               "--public-url", "http://alerts.example.com:8080/"])
    sns = s.client("sns")
    arn = topic(sns)
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="nobody@example.com")
    failed = wait_for(lambda: failed_deliveries(s), what="a failed delivery")
    assert failed[0]["kind"] == "SubscriptionConfirmation"
    assert failed[0]["attempts"] == 2
    assert failed[0]["lastError"] == "email delivery is off: lookout was started without --smtp-url"
    assert "SNS email is off" in s.output()


# ----- http --------------------------------------------------------------------------------------

def test_http_confirmation_and_signed_notifications(sns, hook, srv):
    arn = topic(sns)
    path = "/" + unique("hook")
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=hook.url(path))["SubscriptionArn"] \
        == "pending confirmation"
    [conf] = hook.wait(path, "SubscriptionConfirmation")
    h, doc = conf["headers"], conf["body"]
    assert h["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert h["x-amz-sns-topic-arn"] == arn
    assert h["x-amz-sns-message-id"] == doc["MessageId"]
    assert h["content-type"] == "text/plain; charset=UTF-8"
    assert doc["TopicArn"] == arn and doc["Token"]
    assert doc["SubscribeURL"].startswith(f"{srv.endpoint}/?Action=ConfirmSubscription&")
    assert doc["SigningCertURL"] == f"{srv.endpoint}/sns/SimpleNotificationService-lookout.pem"
    verify(doc)

    # Visiting the SubscribeURL confirms (an unsigned GET, like a browser's).
    r = requests.get(doc["SubscribeURL"], timeout=10)
    assert r.status_code == 200
    sub_arn = re.search(r"<SubscriptionArn>(.*?)</SubscriptionArn>", r.text).group(1)
    assert sub_arn.startswith(arn + ":")
    assert "<ConfirmSubscriptionResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">" in r.text
    # Confirming through the API again answers the same ARN; subscribing again too.
    assert sns.confirm_subscription(TopicArn=arn, Token=doc["Token"])["SubscriptionArn"] == sub_arn
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=hook.url(path))["SubscriptionArn"] == sub_arn
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
    assert (attrs["Protocol"], attrs["Endpoint"], attrs["PendingConfirmation"], attrs["TopicArn"]) \
        == ("http", hook.url(path), "false", arn)
    listed = [s for s in sns.list_subscriptions()["Subscriptions"] if s["SubscriptionArn"] == sub_arn]
    assert listed and listed[0]["Owner"] == srv.account_id

    message_id = sns.publish(TopicArn=arn, Subject="build failed", Message="pipeline <main> & friends")["MessageId"]
    [n] = hook.wait(path, "Notification")
    h, doc = n["headers"], n["body"]
    assert h["x-amz-sns-message-id"] == message_id
    assert h["x-amz-sns-subscription-arn"] == sub_arn
    assert h["x-amz-sns-topic-arn"] == arn
    assert h["user-agent"] == "Amazon Simple Notification Service Agent"
    assert (doc["Type"], doc["MessageId"], doc["TopicArn"], doc["Subject"], doc["Message"]) \
        == ("Notification", message_id, arn, "build failed", "pipeline <main> & friends")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["Timestamp"])
    verify(doc)
    tampered = dict(doc, Message="something else")
    with pytest.raises(Exception):
        verify(tampered)

    # MessageStructure=json: the http entry wins over default; no Subject when none is given.
    sns.publish(TopicArn=arn, Message=json.dumps({"default": "d", "http": "for webhooks", "https": "s"}),
                MessageStructure="json")
    doc = hook.wait(path, "Notification", 2)[1]["body"]
    assert doc["Message"] == "for webhooks" and "Subject" not in doc
    verify(doc)

    # The UnsubscribeURL works as on AWS (a GET of the Query API).
    r = requests.get(doc["UnsubscribeURL"], timeout=10)
    assert r.status_code == 200 and "<UnsubscribeResponse" in r.text
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_http_retries_keep_the_message_id(sns, hook):
    arn = topic(sns)
    path = "/" + unique("flaky")
    confirm_http(sns, hook, arn, path)
    hook.fail[path] = [500, 500]
    message_id = sns.publish(TopicArn=arn, Message="eventually")["MessageId"]
    attempts = hook.wait(path, "Notification", 3)
    time.sleep(1.0)
    attempts = hook.at(path, "Notification")
    assert len(attempts) == 3, "two failures, then one success, then nothing"
    assert {a["headers"]["x-amz-sns-message-id"] for a in attempts} == {message_id}
    assert len({a["raw"] for a in attempts}) == 1, "every attempt sends the same document"


def test_a_delivery_that_keeps_failing_is_recorded(sns, hook, srv):
    arn = topic(sns)
    path = "/" + unique("broken")
    sub_arn = confirm_http(sns, hook, arn, path)
    hook.always[path] = 503
    message_id = sns.publish(TopicArn=arn, Message="nobody home")["MessageId"]
    failed = wait_for(lambda: [f for f in failed_deliveries(srv) if f["messageId"] == message_id],
                      what="the failed delivery")
    [f] = failed
    assert f["attempts"] == 4, "the first attempt and 3 retries"
    assert (f["kind"], f["subscriptionArn"], f["topicArn"], f["protocol"], f["endpoint"]) \
        == ("Notification", sub_arn, arn, "http", hook.url(path))
    assert f["lastError"] == "the endpoint answered http 503"
    assert len(hook.at(path, "Notification")) == 4
    assert "delivery failed permanently" in srv.output() and message_id in srv.output()


@pytest.mark.slow
def test_kill9_between_publish_and_delivery(new_server):
    down = Hook().start()
    s = new_server(extra_args=["--sns-http-retries", "30", "--sns-http-min-delay", "500ms",
                               "--sns-http-max-delay", "500ms"])
    sns = s.client("sns")
    arn = topic(sns)
    sub_arn = confirm_http(sns, down, arn, "/hook")
    down.stop()  # the endpoint goes away
    message_id = sns.publish(TopicArn=arn, Message="survives kill -9")["MessageId"]
    wait_for(lambda: "delivery attempt failed" in s.output(), what="a failed attempt")
    s.kill9()
    up = Hook(port=down.port).start()
    try:
        s.restart()
        [n] = up.wait("/hook", "Notification", timeout=20)
        assert n["headers"]["x-amz-sns-message-id"] == message_id
        assert n["headers"]["x-amz-sns-subscription-arn"] == sub_arn
        assert n["body"]["Message"] == "survives kill -9"
        verify(n["body"])
        time.sleep(1.0)
        assert len(up.at("/hook", "Notification")) == 1
        assert failed_deliveries(s) == []
    finally:
        up.stop()


# ----- the AWS CLI -------------------------------------------------------------------------------

def test_aws_cli_sns(srv, hook):
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.fail("the AWS CLI (v1) is not installed: run scripts/setup-python.sh")
    env = srv.env

    def cli(*args):
        p = subprocess.run([str(aws), "sns", *args, "--output", "json"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}

    name = unique("cli")
    arn = cli("create-topic", "--name", name)["TopicArn"]
    assert arn.endswith(":" + name)
    assert arn in [t["TopicArn"] for t in cli("list-topics")["Topics"]]
    path = "/" + unique("cli")
    sns = srv.client("sns")
    confirm_http(sns, hook, arn, path)
    message_id = cli("publish", "--topic-arn", arn, "--message", "from the cli")["MessageId"]
    assert hook.wait(path, "Notification")[0]["body"]["MessageId"] == message_id
    cli("delete-topic", "--topic-arn", arn)
