#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-topics.sh, which librdkafka's test
# suite runs through $KAFKA_PATH/bin/ (test_kafka_topics() in tests/test.c).
# Apache Kafka's tools are not available here; this answers the same
# command lines through the Admin API (confluent-kafka in compat-tests/.venv).
here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../../.." && pwd)/.venv"
exec "$venv/bin/python" "$here/kafka_topics.py" "$@"
