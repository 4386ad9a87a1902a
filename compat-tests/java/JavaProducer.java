import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Java producer with its defaults: enable.idempotence=true and acks=all, so
 * it starts with InitProducerId and sends sequenced batches.
 *
 * Usage: JavaProducer BOOTSTRAP TOPIC COUNT COMPRESSION
 * Sends COUNT records keyed "k<i % 50>", value "v<i>", header idx=<i>, waits
 * for every acknowledgement and prints one line per record:
 * "ACK <i> <partition> <offset>", then "DONE <count>".
 */
public class JavaProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        String compression = args[3];

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "cxk-java-producer");

        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> r =
                        new ProducerRecord<>(topic, "k" + (i % 50), "v" + i);
                r.headers().add(new RecordHeader("idx",
                        Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
                acks.add(producer.send(r));
            }
            producer.flush();
            StringBuilder out = new StringBuilder();
            for (int i = 0; i < count; i++) {
                RecordMetadata m = acks.get(i).get();
                out.append("ACK ").append(i).append(' ').append(m.partition())
                        .append(' ').append(m.offset()).append('\n');
            }
            out.append("DONE ").append(count).append('\n');
            System.out.print(out);
            System.out.flush();
        }
    }
}
