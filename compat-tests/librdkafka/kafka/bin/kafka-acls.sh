#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-acls.sh, which librdkafka's test
# suite runs through $KAFKA_PATH/bin/ (test_kafka_cmd() in tests/test.c) to
# deny topics in its authorization tests. Apache Kafka's tools are not
# available here; this answers the same command lines through the Admin API
# (confluent-kafka in compat-tests/.venv).
here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../../.." && pwd)/.venv"
exec "$venv/bin/python" "$here/kafka_acls.py" "$@"
