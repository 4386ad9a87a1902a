"""TLS, SASL/SCRAM and ACLs with real clients.

One gateway per test with a PLAINTEXT admin listener (loopback, where
``User:ANONYMOUS`` is a super user, as a Kafka broker's internal listener
often is; only the test's own processes can reach it) and a SASL_SSL
listener with a certificate made at test time by a CA of the test's own.
Users are created with ``cxlkafka user add`` (SCRAM-SHA-256). The
authorizer is on: ``User:admin`` is a super user, ``User:alice`` may do
only what ACLs allow. A failed authentication is answered after
``--connection-failed-authentication-delay-ms`` (``DELAY_MS`` here).

- confluent-kafka (librdkafka 2.16) and kcat (librdkafka 2.0.2) produce and
  consume over SASL_SSL with SCRAM-SHA-256;
- a wrong password is refused (SASL authentication failure), no sooner
  than the delay, and the delayed failure is counted;
- alice is refused on produce and on fetch (TOPIC_AUTHORIZATION_FAILED)
  until AdminClient.create_acls grants her WRITE and READ;
- alice may not list ACLs without DESCRIBE on the cluster: kafka-python
  gets CLUSTER_AUTHORIZATION_FAILED; confluent-kafka an empty list
  (librdkafka drops DescribeAcls' top-level error code, whatever the
  broker), never the bindings;
- READ on ``__cxlkafka_order`` does not show alice the topics she may not
  describe: reading it also takes DESCRIBE on the cluster;
- a SASL_PLAINTEXT listener that enables only SCRAM refuses PLAIN
  (UNSUPPORTED_SASL_MECHANISM with its list) to librdkafka and on the wire.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

import cxk_clients as cc
import cxk_wire as wire
from conftest import HOST, free_port, gateway_binary

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret"}
# --connection-failed-authentication-delay-ms of the gateways here: long
# enough that an answer before it cannot be mistaken for one after it.
DELAY_MS = 1000
ORDER_TOPIC = "__cxlkafka_order"
ERR_UNSUPPORTED_SASL_MECHANISM = 33
API_SASL_HANDSHAKE = 17


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
        connection_failed_authentication_delay_ms=DELAY_MS,
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


def scraped(gw, series: str) -> float:
    """One sample of the gateway's /metrics; 0 when it is not there yet."""
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        body = resp.read().decode()
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_wrong_password_is_answered_after_the_failed_authentication_delay(secure, certs):
    gw, bootstrap = secure
    series = 'cxlkafka_sasl_delayed_failures_total{mechanism="SCRAM-SHA-256"}'
    before = scraped(gw, series)
    started = time.monotonic()
    p, errors = cc.producer(bootstrap, **sasl("alice", certs["ca"], password="not-alice"))
    deadline = started + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.05)
    waited = time.monotonic() - started
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # A lower bound only: the refusal cannot have come before the delay.
    assert waited >= DELAY_MS / 1000, f"refused after {waited:.3f}s"
    assert scraped(gw, series) >= before + 1


def any_acl() -> AclBindingFilter:
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                            AclOperation.ANY, AclPermissionType.ANY)


def alice_may(kind, name: str, operation) -> AclBinding:
    return AclBinding(kind, name, ResourcePatternType.LITERAL, "User:alice", "*", operation,
                      AclPermissionType.ALLOW)


def grant(admin: AdminClient, *bindings) -> None:
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=30)


def kafka_python_admin(bootstrap: str, user: str, ca: str):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
                            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                            sasl_plain_password=PASSWORDS[user], ssl_cafile=ca,
                            request_timeout_ms=30000)


def kafka_python_any_acl():
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePatternFilter)
    from kafka.admin import ResourceType as KResourceType
    return ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(KResourceType.ANY, None,
                                                            ACLResourcePatternType.ANY))


def test_describe_acls_needs_describe_on_the_cluster(secure, certs, topic_name):
    from kafka.errors import ClusterAuthorizationFailedError
    gw, bootstrap = secure
    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("admin", certs["ca"])})
    alice = AdminClient({"bootstrap.servers": bootstrap, **sasl("alice", certs["ca"])})
    grant(admin, alice_may(ResourceType.TOPIC, topic_name, AclOperation.READ))
    listed = admin.describe_acls(any_acl()).result(timeout=30)
    assert [b.name for b in listed] == [topic_name], listed

    # The gateway answers CLUSTER_AUTHORIZATION_FAILED, as Kafka does:
    # kafka-python raises it.
    k_alice = kafka_python_admin(bootstrap, "alice", certs["ca"])
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            k_alice.describe_acls(kafka_python_any_acl())
    finally:
        k_alice.close()
    # librdkafka drops DescribeAcls' top-level error code (against Kafka
    # too) and reports an empty list: alice still sees no binding.
    assert alice.describe_acls(any_acl()).result(timeout=30) == []

    grant(admin, alice_may(ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE))
    listed = alice.describe_acls(any_acl()).result(timeout=30)
    assert sorted(b.name for b in listed) == sorted([topic_name, "kafka-cluster"]), listed
    k_alice = kafka_python_admin(bootstrap, "alice", certs["ca"])
    try:
        acls, error = k_alice.describe_acls(kafka_python_any_acl())
        assert sorted(a.resource_pattern.resource_name for a in acls) == \
            sorted([topic_name, "kafka-cluster"]), (acls, error)
    finally:
        k_alice.close()


def order_records(bootstrap: str, conf: dict, timeout: float = 20.0):
    """Every record value of __cxlkafka_order up to its end, or the first
    error the consumer is given instead."""
    c, errors = cc.consumer(bootstrap, **conf)
    values = []
    try:
        c.assign([TopicPartition(ORDER_TOPIC, 0, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                values.append(msg.value().decode())
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                return values
            else:
                return msg.error()
        return errors or values
    finally:
        c.close()


def test_the_order_topic_does_not_name_topics_alice_may_not_describe(secure, certs, topic_name):
    gw, bootstrap = secure
    hidden = f"hidden-{topic_name}"
    create_topic(bootstrap, certs["ca"], hidden)
    err, _ = produce_one(bootstrap, hidden, sasl("admin", certs["ca"]), b"payroll")
    assert err is None, err
    deadline = time.monotonic() + 20
    while True:
        seen = order_records(bootstrap, sasl("admin", certs["ca"]))
        assert isinstance(seen, list), seen
        if any(hidden in value for value in seen):
            break
        assert time.monotonic() < deadline, f"the order never named {hidden}: {seen[-5:]}"
        time.sleep(0.2)

    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("admin", certs["ca"])})
    # READ on the order topic, and the consumer's group (librdkafka asks for
    # its coordinator even with assign()).
    grant(admin,
          alice_may(ResourceType.TOPIC, ORDER_TOPIC, AclOperation.READ),
          AclBinding(ResourceType.GROUP, "cxk-compat-", ResourcePatternType.PREFIXED,
                     "User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW))
    alice = sasl("alice", certs["ca"])
    seen = order_records(bootstrap, alice)
    assert isinstance(seen, KafkaError) and seen.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, seen
    assert hidden not in str(seen)

    # DESCRIBE on the cluster is the right to see every topic's batches.
    grant(admin, alice_may(ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE))
    seen = order_records(bootstrap, alice)
    assert isinstance(seen, list) and any(hidden in value for value in seen), seen


def start_sasl_plaintext(start_gateway, **flags):
    """A gateway whose --listen is SASL_PLAINTEXT, ready once it answers
    ApiVersions (its Metadata needs authentication, so the usual readiness
    probe cannot run)."""
    gw = start_gateway(listen_protocol="SASL_PLAINTEXT", wait_ready=False, **flags)
    deadline = time.monotonic() + 20
    while True:
        try:
            with gw.connect(timeout=3) as c:
                wire.api_versions(c, 0)
            return gw
        except (OSError, wire.WireError) as e:
            assert gw.alive(), gw.log_tail()
            assert time.monotonic() < deadline, f"not ready: {e}\n{gw.log_tail()}"
            time.sleep(0.1)


def sasl_handshake(conn: wire.Connection, mechanism: str) -> tuple[int, list[str]]:
    """SaslHandshake v1: (error code, the listener's enabled mechanisms)."""
    r = conn.request(API_SASL_HANDSHAKE, 1, wire.string(mechanism),
                     flexible_request=False, flexible_response=False)
    return r.i16(), r.array(r.string)


def test_an_unencrypted_listener_can_refuse_plain(start_gateway):
    gw = start_sasl_plaintext(start_gateway,
                              listen_sasl_mechanisms="SCRAM-SHA-256,SCRAM-SHA-512",
                              connection_failed_authentication_delay_ms=DELAY_MS)
    with gw.connect() as c:
        asked = time.monotonic()
        code, enabled = sasl_handshake(c, "PLAIN")
        waited = time.monotonic() - asked
    assert (code, enabled) == (ERR_UNSUPPORTED_SASL_MECHANISM, ["SCRAM-SHA-256", "SCRAM-SHA-512"])
    assert waited >= DELAY_MS / 1000, f"refused after {waited:.3f}s"
    with gw.connect() as c:
        assert sasl_handshake(c, "SCRAM-SHA-256") == (0, ["SCRAM-SHA-256", "SCRAM-SHA-512"])

    # librdkafka is told why, with the listener's list.
    p, errors = cc.producer(gw.bootstrap, **{
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": "alice", "sasl.password": "alice-secret"})
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.1)
    assert any(e.code() == KafkaError._AUTHENTICATION
               and "Unsupported SASL mechanism" in str(e)
               and "SCRAM-SHA-256,SCRAM-SHA-512" in str(e) for e in errors), errors
    assert scraped(gw, 'cxlkafka_sasl_delayed_failures_total{mechanism="unsupported"}') >= 2


def test_the_admin_tools_reach_a_sasl_ssl_listener(secure, certs, tmp_path, topic_name):
    """`cxlkafka topic ...` over TLS (the CA from --tls-ca-file) with a
    SCRAM login; a CA that did not sign the broker's certificate is
    refused."""
    gw, bootstrap = secure
    password = tmp_path / "admin.secret"
    password.write_text(PASSWORDS["admin"] + "\n")
    login = ["-b", bootstrap, "--tls-ca-file", certs["ca"], "--sasl-mechanism", "SCRAM-SHA-256",
             "--sasl-username", "admin", "--sasl-password-file", str(password)]

    def cxlkafka(*args):
        return subprocess.run([gateway_binary(), *args, *login], capture_output=True, text=True,
                              timeout=60, env={k: v for k, v in os.environ.items()
                                               if not k.startswith("CXLKAFKA_")})

    created = cxlkafka("topic", "create", topic_name, "--partitions", "2")
    assert created.returncode == 0, created.stderr
    described = cxlkafka("topic", "describe", topic_name, "--format", "json")
    assert described.returncode == 0, described.stderr
    assert [p["partition"] for p in json.loads(described.stdout)["partitions"]] == [0, 1]

    other = tmp_path / "other-ca"
    other.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=another CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=other)
    login[login.index(certs["ca"])] = str(other / "ca.pem")
    refused = cxlkafka("topic", "list")
    assert refused.returncode == 1 and "TLS" in refused.stderr, refused.stderr
