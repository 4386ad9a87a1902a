import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java transactional producer, read_committed and read_uncommitted
 * consumers, and the Admin API's transaction listings (KIP-664).
 *
 * Usage: JavaTransactions BOOTSTRAP TOPIC PARTITIONS TRANSACTIONS PER_TXN
 *
 * Runs TRANSACTIONS transactions of PER_TXN records spread over the
 * partitions, aborting every third (the second, fifth, ...), leaves one
 * more transaction open and prints "LISTED <id> <state>",
 * "DESCRIBED <id> <state> <partitions>" and, per partition,
 * "PRODUCER <partition> <producer id> <epoch> open|none" (DescribeProducers:
 * whether its transaction there is open) as the Admin API sees them, then
 * aborts it as `kafka-transactions.sh abort` does (abortTransaction:
 * WriteTxnMarkers) and prints "AFTER_ABORT <id> <state>",
 * then fences that producer with a second instance of the same
 * transactional id ("FENCED" when the old one's commit fails as it must).
 * Then prints "COMMITTED <count>" and "UNCOMMITTED <count>": the records a
 * read_committed and a read_uncommitted consumer read from the beginning
 * to the end of every partition, and "EXPECTED <committed> <all>".
 */
public class JavaTransactions {
    static Properties producerProps(String bootstrap, String id) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return p;
    }

    static int readAll(String bootstrap, String topic, int partitions, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<TopicPartition> parts = new ArrayList<>();
        for (int i = 0; i < partitions; i++) {
            parts.add(new TopicPartition(topic, i));
        }
        int got = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts);
            long deadline = System.currentTimeMillis() + 60_000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got++;
                }
                boolean done = true;
                for (TopicPartition tp : parts) {
                    done &= consumer.position(tp) >= end.get(tp);
                }
                if (done) {
                    return got;
                }
            }
        }
        throw new IllegalStateException(isolation + ": did not reach the end offsets in 60 s");
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        int transactions = Integer.parseInt(args[3]);
        int perTxn = Integer.parseInt(args[4]);
        String id = "java-txn-" + topic;

        int committed = 0;
        int all = 0;
        KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap, id));
        producer.initTransactions();
        for (int t = 0; t < transactions; t++) {
            producer.beginTransaction();
            for (int i = 0; i < perTxn; i++) {
                producer.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "t" + t + "-" + i));
            }
            all += perTxn;
            // abortTransaction drops what is still unsent: flush first, so
            // the aborted records are in the log for read_uncommitted.
            producer.flush();
            if (t % 3 == 1) {
                producer.abortTransaction();
            } else {
                producer.commitTransaction();
                committed += perTxn;
            }
        }
        // One transaction left open: what an operator finds.
        producer.beginTransaction();
        for (int i = 0; i < perTxn; i++) {
            producer.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "open-" + i));
        }
        producer.flush();
        all += perTxn;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            Collection<TransactionListing> listed = admin.listTransactions().all().get();
            for (TransactionListing l : listed) {
                System.out.println("LISTED " + l.transactionalId() + " " + l.state());
            }
            Map<String, TransactionDescription> described =
                admin.describeTransactions(Set.of(id)).all().get();
            TransactionDescription d = described.get(id);
            System.out.println("DESCRIBED " + id + " " + d.state() + " " + d.topicPartitions().size());
            ProducerState hanging = null;
            for (int i = 0; i < partitions; i++) {
                TopicPartition tp = new TopicPartition(topic, i);
                for (ProducerState s : admin.describeProducers(List.of(tp)).partitionResult(tp).get()
                        .activeProducers()) {
                    System.out.println("PRODUCER " + i + " " + s.producerId() + " " + s.producerEpoch()
                        + " " + (s.currentTransactionStartOffset().isPresent() ? "open" : "none"));
                    hanging = s;
                }
            }
            // What `kafka-transactions.sh abort` does: WriteTxnMarkers.
            admin.abortTransaction(new AbortTransactionSpec(new TopicPartition(topic, 0),
                hanging.producerId(), (short) hanging.producerEpoch(), 0)).all().get();
            System.out.println("AFTER_ABORT " + id + " "
                + admin.describeTransactions(Set.of(id)).all().get().get(id).state());
        }
        // A second instance fences the first (whose open transaction the
        // operator aborted already).
        KafkaProducer<String, String> successor = new KafkaProducer<>(producerProps(bootstrap, id));
        successor.initTransactions();
        try {
            producer.commitTransaction();
            System.out.println("NOT FENCED");
        } catch (ProducerFencedException e) {
            System.out.println("FENCED");
        } catch (KafkaException e) {
            System.out.println("FENCED " + e.getClass().getSimpleName());
        }
        producer.close(Duration.ofSeconds(5));
        successor.close(Duration.ofSeconds(5));

        System.out.println("COMMITTED " + readAll(bootstrap, topic, partitions, "read_committed"));
        System.out.println("UNCOMMITTED " + readAll(bootstrap, topic, partitions, "read_uncommitted"));
        System.out.println("EXPECTED " + committed + " " + all);
    }
}
