import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One member of a consumer group under either group protocol, until told
 * to stop: it consumes with auto-commit (committed on every revocation and
 * on close) and leaves cleanly.
 *
 * Usage: JavaGroupMember BOOTSTRAP TOPIC GROUP PROTOCOL STOP_FILE
 * Prints, flushed line by line, "ASSIGNED p,p,..." and "REVOKED p,p,..."
 * per rebalance callback and "REC <partition> <offset> <value>" per record;
 * once STOP_FILE exists it closes the consumer and prints "CLOSED".
 */
public class JavaGroupMember {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String group = args[2];
        String protocol = args[3];
        Path stop = Path.of(args[4]);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true");
        p.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, "200");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "cxk-java-member");

        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    report("REVOKED ", parts);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    report("ASSIGNED ", parts);
                }
            });
            while (!Files.exists(stop)) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    System.out.println("REC " + r.partition() + " " + r.offset() + " " + r.value());
                }
                System.out.flush();
            }
        }
        System.out.println("CLOSED");
        System.out.flush();
    }

    private static void report(String what, Collection<TopicPartition> parts) {
        StringBuilder s = new StringBuilder(what);
        parts.stream().map(TopicPartition::partition).sorted()
                .forEach(x -> s.append(x).append(','));
        System.out.println(s);
        System.out.flush();
    }
}
