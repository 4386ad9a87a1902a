#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-run-class.sh, which librdkafka's
# tests/java/run-class.sh runs (0098 drives its TransactionProducerCli
# this way): the class on $CLASSPATH (the compiled tests/java) with the
# kafka-clients jars the runner put in $CXK_KAFKA_JARS.
set -euo pipefail
if [[ -z "${CXK_KAFKA_JARS:-}" ]]; then
    echo "$0: CXK_KAFKA_JARS is not set (compat-tests/librdkafka/run sets it)" >&2
    exit 1
fi
exec java -Xshare:auto -XX:TieredStopAtLevel=1 -cp "${CLASSPATH:-.}:${CXK_KAFKA_JARS}/*" "$@"
