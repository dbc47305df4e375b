"""TLS on the same port as plain HTTP (Fluent Bit's cloudwatch_logs output always speaks TLS), the
generated self-signed certificate and its reuse, --tls-cert/--tls-key, --no-tls, and /ready.

A connection that opens with a TLS ClientHello is served over TLS, any other as plain HTTP.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import socket
import ssl
import subprocess
import threading
import time

import boto3
import pytest
import requests
from botocore.config import Config

from lookout_harness import ACCESS_KEY, SECRET_KEY, lookout_bin, make_group, now_ms, peer, put_events, unique

pytestmark = [
    pytest.mark.skipif(peer() == "moto", reason="TLS on the same port is lookout's"),
    # verify=False is deliberate in several tests below; keep the run's output readable.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def https_endpoint(srv) -> str:
    return f"https://127.0.0.1:{srv.port}"


def tls_logs(srv, verify):
    """A boto3 CloudWatch Logs client speaking HTTPS to `srv` (verify: False, True or a CA file)."""
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=5)
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                    region_name=srv.region)
    return session.client("logs", endpoint_url=https_endpoint(srv), verify=verify, config=cfg)


def cert_paths(srv):
    return srv.data_dir / "tls" / "cert.pem", srv.data_dir / "tls" / "key.pem"


def pem_fingerprint(pem_path) -> str:
    der = ssl.PEM_cert_to_DER_cert(pem_path.read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def logged_fingerprints(srv) -> list[str]:
    return re.findall(r"tls_fingerprint=([0-9A-F:]+)", ANSI.sub("", srv.output()))


def roundtrip(logs, tag: str) -> None:
    """CreateLogGroup, CreateLogStream, PutLogEvents, GetLogEvents through one client."""
    group = make_group(logs, unique(f"/tls/{tag}"), streams=("s",))
    t = now_ms()
    put_events(logs, group, "s", [(t, f"{tag}-1"), (t + 1, f"{tag}-2")])
    got = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == [f"{tag}-1", f"{tag}-2"]


def test_https_and_plain_http_share_the_port(new_server):
    srv = new_server()
    plain, tls = srv.logs(), tls_logs(srv, verify=False)
    errors: list[BaseException] = []

    def loop(logs, tag):
        try:
            for i in range(10):
                roundtrip(logs, f"{tag}{i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(plain, "plain")),
               threading.Thread(target=loop, args=(tls, "tls")),
               threading.Thread(target=loop, args=(tls_logs(srv, verify=False), "tls2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    # One store behind both: each side sees what the other wrote.
    group = make_group(tls, unique("/tls/shared"), streams=("s",))
    put_events(tls, group, "s", [(now_ms(), "written over TLS")])
    got = plain.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["written over TLS"]
    names = {g["logGroupName"] for g in tls.describe_log_groups(logGroupNamePrefix="/tls/plain")["logGroups"]}
    assert len(names) == 10


def test_generated_certificate_is_kept_reused_and_logged(new_server):
    srv = new_server()
    cert, key = cert_paths(srv)
    assert cert.exists() and key.exists()
    assert key.stat().st_mode & 0o777 == 0o600
    first = cert.read_bytes()
    fp = pem_fingerprint(cert)
    assert logged_fingerprints(srv) == [fp]
    assert "generated now" in ANSI.sub("", srv.output())

    srv.stop()
    srv.restart()
    assert cert.read_bytes() == first
    assert logged_fingerprints(srv) == [fp]
    assert "generated on an earlier start" in ANSI.sub("", srv.output())
    roundtrip(tls_logs(srv, verify=str(cert)), "after-restart")


def test_generated_certificate_verifies_for_127_0_0_1(new_server):
    srv = new_server()
    cert, _ = cert_paths(srv)
    # boto3 verifying against the generated certificate, addressed as 127.0.0.1 (an IP SAN).
    roundtrip(tls_logs(srv, verify=str(cert)), "verified")
    r = requests.get(https_endpoint(srv) + "/ready", verify=str(cert), timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    # Python's strictest default context agrees (hostname check on).
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            assert s.selected_alpn_protocol() is None  # not offered by this client
    # Verification is real: the public CA bundle does not trust it.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_endpoint(srv) + "/health", timeout=10)


def test_tls12_and_alpn(new_server):
    srv = new_server()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == "TLSv1.2"
            assert s.selected_alpn_protocol() == "http/1.1"
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'{"status":"ready"}')


def _make_cert(tmp_path):
    """A self-signed RSA certificate for 127.0.0.1 made by the `cryptography` package (else openssl)."""
    cert_path, key_path = tmp_path / "own-cert.pem", tmp_path / "own-key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        cryptography = None
    else:
        cryptography = True
    if cryptography:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "compat test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(key, hashes.SHA256()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1
                                               serialization.NoEncryption()))
        return cert_path, key_path
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=compat test", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key_path), "-out", str(cert_path)],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a test certificate: neither `cryptography` nor a working openssl ({e})")
    return cert_path, key_path


def test_own_certificate_from_flags(new_server, tmp_path):
    cert, key = _make_cert(tmp_path)
    srv = new_server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    assert logged_fingerprints(srv) == [pem_fingerprint(cert)]
    assert not (srv.data_dir / "tls").exists(), "nothing is generated when a certificate is given"
    roundtrip(tls_logs(srv, verify=str(cert)), "own-cert")
    roundtrip(srv.logs(), "own-cert-plain")


def _run_serve(args, tmp_path, timeout=30):
    return subprocess.run([str(lookout_bin()), "serve", "--listen", "127.0.0.1:0",
                           "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_certificate_flags_are_checked(tmp_path):
    r = _run_serve(["--tls-cert", str(tmp_path / "c.pem")], tmp_path)
    assert r.returncode != 0 and "--tls-cert needs --tls-key" in r.stderr
    r = _run_serve(["--tls-key", str(tmp_path / "k.pem")], tmp_path)
    assert r.returncode != 0 and "--tls-key needs --tls-cert" in r.stderr
    r = _run_serve(["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")], tmp_path)
    assert r.returncode != 0 and "c.pem" in r.stderr
    assert not (tmp_path / "data" / "logs").exists(), "a bad certificate stops lookout before the store opens"
    help_text = subprocess.run([str(lookout_bin()), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    for flag in ("--tls-cert", "--tls-key", "--no-tls", "LOOKOUT_TLS_CERT", "LOOKOUT_TLS_KEY"):
        assert flag in help_text


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_tls_refuses_tls(new_server, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("LOOKOUT_NO_TLS", "1")  # the harness passes its environment on
        srv = new_server()
    else:
        srv = new_server(extra_args=["--no-tls"])
    assert not (srv.data_dir / "tls").exists()
    assert logged_fingerprints(srv) == []
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a ConnectionError
        requests.get(https_endpoint(srv) + "/ready", verify=False, timeout=10)
    assert requests.get(srv.endpoint + "/ready", timeout=10).status_code == 200
    roundtrip(srv.logs(), "no-tls")


def test_ready_and_health(server):
    r = requests.get(server.endpoint + "/ready", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert r.headers.get("x-amzn-RequestId")
    r = requests.get(https_endpoint(server) + "/ready", verify=False, timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert requests.get(https_endpoint(server) + "/health", verify=False, timeout=10).json() == {"status": "ok"}


def test_stalled_connections_do_not_hold_shutdown(new_server):
    """Sockets stuck before their first request (silent, or mid-ClientHello) and idle keep-alive
    connections (plain and TLS) neither block other clients nor delay a SIGTERM shutdown."""
    srv = new_server()
    silent = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    half_hello = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    half_hello.sendall(b"\x16\x03\x01")
    plain_session, tls_session = requests.Session(), requests.Session()
    assert plain_session.get(srv.endpoint + "/ready", timeout=10).status_code == 200
    assert tls_session.get(https_endpoint(srv) + "/ready", verify=False, timeout=10).status_code == 200
    roundtrip(tls_logs(srv, verify=False), "beside-stalled")
    started = time.monotonic()
    srv.stop(timeout=20)
    elapsed = time.monotonic() - started
    assert srv.proc.returncode == 0, srv.output()
    assert elapsed < 3, f"shutdown took {elapsed:.1f}s"
    for s in (silent, half_hello):
        s.close()


@pytest.mark.slow
def test_handshake_timeout_closes_a_stalled_client(new_server):
    srv = new_server()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"\x16\x03\x01")
        started = time.monotonic()
        assert s.recv(1024) == b""  # closed by lookout, not answered
        assert 5 < time.monotonic() - started < 20
