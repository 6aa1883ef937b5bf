#!/bin/sh
# kafka-topics.sh for test_quickstart: Apache Kafka's own TopicCommand, from
# the jars `make kafka` installed (QS_KAFKA_LIBS), as the script of Kafka's
# distribution runs it.
exec java -Xmx256m -cp "$QS_KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand "$@"
