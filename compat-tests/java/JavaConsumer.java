import java.time.Duration;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Java consumer in a group (classic protocol): subscribe, read from the
 * earliest offset until COUNT records arrived, commitSync, close (LeaveGroup).
 *
 * Usage: JavaConsumer BOOTSTRAP TOPIC GROUP COUNT TIMEOUT_S
 * Prints "ASSIGNED p,p,...", one
 * "REC <partition> <offset> <timestamp type> <timestamp> <key> <value>"
 * per record, "COMMITTED <partition> <offset>" per committed partition read
 * back with committed(), then "DONE <count>". Exits 1 on a timeout.
 */
public class JavaConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        int count = Integer.parseInt(args[3]);
        long deadline = System.currentTimeMillis() + 1000L * Integer.parseInt(args[4]);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "cxk-java-consumer");

        StringBuilder out = new StringBuilder();
        int got = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {}

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    StringBuilder s = new StringBuilder("ASSIGNED ");
                    parts.stream().map(TopicPartition::partition).sorted()
                            .forEach(x -> s.append(x).append(','));
                    System.out.println(s);
                }
            });
            while (got < count) {
                if (System.currentTimeMillis() > deadline) {
                    System.out.print(out);
                    System.out.println("TIMEOUT after " + got + " records");
                    System.exit(1);
                }
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<String, String> r : records) {
                    out.append("REC ").append(r.partition()).append(' ').append(r.offset())
                            .append(' ').append(r.timestampType().name).append(' ')
                            .append(r.timestamp()).append(' ').append(r.key()).append(' ')
                            .append(r.value()).append('\n');
                    got++;
                }
            }
            consumer.commitSync();
            Set<TopicPartition> parts = new HashSet<>(consumer.assignment());
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(parts);
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : committed.entrySet()) {
                if (e.getValue() != null) {
                    out.append("COMMITTED ").append(e.getKey().partition()).append(' ')
                            .append(e.getValue().offset()).append('\n');
                }
            }
        }
        out.append("DONE ").append(got).append('\n');
        System.out.print(out);
        System.out.flush();
    }
}
