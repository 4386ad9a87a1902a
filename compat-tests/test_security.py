"""TLS, SASL/SCRAM and ACLs with real clients.

One gateway per test with a PLAINTEXT admin listener (loopback, where
``User:ANONYMOUS`` is a super user, as a Kafka broker's internal listener
often is) and a SASL_SSL listener with a certificate made at test time by
a CA of the test's own. Users are created with ``cxlkafka user add``
(SCRAM-SHA-256). The authorizer is on: ``User:admin`` is a super user,
``User:alice`` may do only what ACLs allow.

- confluent-kafka (librdkafka 2.16) and kcat (librdkafka 2.0.2) produce and
  consume over SASL_SSL with SCRAM-SHA-256;
- a wrong password is refused (SASL authentication failure);
- alice is refused on produce and on fetch (TOPIC_AUTHORIZATION_FAILED)
  until AdminClient.create_acls grants her WRITE and READ.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

import cxk_clients as cc
from conftest import HOST, free_port, gateway_binary

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret"}


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.fixture
def certs(tmp_path) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    d = tmp_path / "tls"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=cxlkafka test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server.key")}


@pytest.fixture
def secure(start_gateway, certs, tmp_path):
    """(gateway, SASL_SSL bootstrap) with users admin and alice."""
    tls_port = free_port()
    gw = start_gateway(
        tls_listen=f"{HOST}:{tls_port}",
        tls_listen_protocol="SASL_SSL",
        tls_cert=certs["cert"],
        tls_key=certs["key"],
        authorizer=True,
        super_users="User:admin;User:ANONYMOUS",
        default_partitions=1,
    )
    for user, password in PASSWORDS.items():
        pw = tmp_path / f"{user}.password"
        pw.write_text(password + "\n")
        done = subprocess.run(
            [gateway_binary(), "user", "add", user, "--mechanism", "SCRAM-SHA-256",
             "--password-file", str(pw), "--bootstrap", gw.bootstrap],
            capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    listed = subprocess.run([gateway_binary(), "user", "list", "--bootstrap", gw.bootstrap],
                            capture_output=True, timeout=30, text=True)
    assert "alice: SCRAM-SHA-256" in listed.stdout, listed
    return gw, f"{HOST}:{tls_port}"


def sasl(user: str, ca: str, password: str | None = None) -> dict:
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": password if password is not None else PASSWORDS[user],
        "ssl.ca.location": ca,
    }


def create_topic(bootstrap: str, ca: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("admin", ca)})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=30)


def produce_one(bootstrap: str, topic: str, conf: dict, value: bytes) -> tuple:
    """(delivery error or None, client errors)."""
    p, errors = cc.producer(bootstrap, **{"message.timeout.ms": 10000, **conf})
    result = []
    p.produce(topic, value=value, partition=0, on_delivery=lambda err, msg: result.append(err))
    deadline = time.monotonic() + 20
    while not result and time.monotonic() < deadline:
        p.poll(0.2)
    p.flush(5)
    assert result, f"no delivery report; client errors {errors[:5]}"
    return result[0], errors


def fetch_first(bootstrap: str, topic: str, conf: dict, timeout: float = 15.0):
    """The first message or error the consumer sees at offset 0."""
    c, errors = cc.consumer(bootstrap, **conf)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                return msg.value()
            if msg.error().code() != KafkaError._PARTITION_EOF:
                return msg.error()
        return errors
    finally:
        c.close()


def test_confluent_kafka_produces_and_consumes_over_sasl_ssl_scram(secure, certs, topic_name):
    gw, bootstrap = secure
    conf = sasl("admin", certs["ca"])
    create_topic(bootstrap, certs["ca"], topic_name)
    msgs = cc.make_messages(200, 1, seed=7)
    p, perrors = cc.producer(bootstrap, **conf)
    tracker = cc.DeliveryTracker(len(msgs))
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=30)
    assert tracker.failures() == [], f"{tracker.failures()[:5]}; client errors {perrors[:5]}"
    got = cc.consume_from_beginning(bootstrap, topic_name, 1, len(msgs), timeout=30, **conf)
    cc.check_round_trip(msgs, tracker, got)


def test_kcat_produces_and_consumes_over_sasl_ssl_scram(secure, certs, topic_name):
    gw, bootstrap = secure
    create_topic(bootstrap, certs["ca"], topic_name)
    x = []
    for k, v in sasl("admin", certs["ca"]).items():
        x += ["-X", f"{k}={v}"]
    lines = [f"line-{i}" for i in range(100)]
    prod = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic_name, "-p", "0", *x],
                          input="\n".join(lines).encode(), capture_output=True, timeout=60)
    err = prod.stderr.decode(errors="replace")
    assert prod.returncode == 0 and "ERROR" not in err, err[-3000:]
    cons = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic_name, "-p", "0",
                           "-o", "beginning", "-e", "-q", *x],
                          capture_output=True, timeout=60)
    assert cons.returncode == 0, cons.stderr.decode(errors="replace")[-3000:]
    assert cons.stdout.decode().split("\n")[:len(lines)] == lines


def test_a_wrong_password_is_refused(secure, certs):
    gw, bootstrap = secure
    p, errors = cc.producer(bootstrap, **sasl("alice", certs["ca"], password="not-alice"))
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert "invalid credentials" in str(errors[0]), errors
    assert "SASL authentication failed" in gw.log_text()


def test_alice_needs_acls_to_produce_and_fetch(secure, certs, topic_name):
    gw, bootstrap = secure
    create_topic(bootstrap, certs["ca"], topic_name)
    alice = sasl("alice", certs["ca"])
    # Something to fetch, written by the super user.
    err, _ = produce_one(bootstrap, topic_name, sasl("admin", certs["ca"]), b"from-admin")
    assert err is None, err

    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("admin", certs["ca"])})

    def grant(*bindings):
        for future in admin.create_acls(list(bindings)).values():
            future.result(timeout=30)

    def allow(kind, name, pattern, operation):
        return AclBinding(kind, name, pattern, "User:alice", "*", operation,
                          AclPermissionType.ALLOW)

    # The consumer's group (librdkafka asks for its coordinator even with
    # assign()) and DESCRIBE on the topic (Metadata), so that what is
    # refused below are Produce and Fetch themselves.
    grant(allow(ResourceType.GROUP, "cxk-compat-", ResourcePatternType.PREFIXED,
                AclOperation.READ),
          allow(ResourceType.TOPIC, topic_name, ResourcePatternType.LITERAL,
                AclOperation.DESCRIBE))
    err, _ = produce_one(bootstrap, topic_name, alice, b"denied")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    seen = fetch_first(bootstrap, topic_name, alice)
    assert isinstance(seen, KafkaError) and seen.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, seen

    grant(allow(ResourceType.TOPIC, topic_name, ResourcePatternType.LITERAL, AclOperation.WRITE),
          allow(ResourceType.TOPIC, topic_name, ResourcePatternType.LITERAL, AclOperation.READ))

    err, _ = produce_one(bootstrap, topic_name, alice, b"from-alice")
    assert err is None, err
    assert fetch_first(bootstrap, topic_name, alice) == b"from-admin"
