import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Java AdminClient: describe cluster, create topics (and a duplicate),
 * describe them, add partitions, list, delete, and check they are gone.
 *
 * Usage: JavaAdmin BOOTSTRAP PREFIX
 * Prints one line per observation ("CLUSTER ...", "NODE ...", "TOPIC ...",
 * "PARTITION ...", "LISTED ...", "ERROR <what> <exception class>",
 * "DELETED ...", "GONE ...") and "DONE"; exits 1 with "FAIL <why>" on an
 * unexpected result.
 */
public class JavaAdmin {
    static void fail(String why) {
        System.out.println("FAIL " + why);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String prefix = args[1];
        String a = prefix + "-a";
        String b = prefix + "-b";

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "cxk-java-admin");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");

        try (Admin admin = Admin.create(p)) {
            DescribeClusterResult cluster = admin.describeCluster();
            String clusterId = cluster.clusterId().get(30, TimeUnit.SECONDS);
            Node controller = cluster.controller().get(30, TimeUnit.SECONDS);
            Collection<Node> nodes = cluster.nodes().get(30, TimeUnit.SECONDS);
            System.out.println("CLUSTER " + clusterId + " controller=" + controller.id());
            for (Node n : nodes) {
                System.out.println("NODE " + n.id() + " " + n.host() + ":" + n.port());
            }

            admin.createTopics(List.of(
                    new NewTopic(a, 3, (short) 1),
                    new NewTopic(b, 1, (short) 1).configs(Map.of("retention.ms", "3600000"))))
                    .all().get(30, TimeUnit.SECONDS);
            try {
                admin.createTopics(List.of(new NewTopic(a, 1, (short) 1))).all()
                        .get(30, TimeUnit.SECONDS);
                fail("second create of " + a + " succeeded");
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    fail("second create: " + e.getCause());
                }
                System.out.println("ERROR create-again " + e.getCause().getClass().getSimpleName());
            }

            admin.createPartitions(Map.of(a, NewPartitions.increaseTo(5)))
                    .all().get(30, TimeUnit.SECONDS);

            Map<String, TopicDescription> described =
                    admin.describeTopics(List.of(a, b)).allTopicNames().get(30, TimeUnit.SECONDS);
            for (String t : List.of(a, b)) {
                TopicDescription d = described.get(t);
                System.out.println("TOPIC " + d.name() + " partitions=" + d.partitions().size()
                        + " id=" + d.topicId() + " internal=" + d.isInternal());
                for (TopicPartitionInfo info : d.partitions()) {
                    System.out.println("PARTITION " + d.name() + " " + info.partition()
                            + " leader=" + (info.leader() == null ? -1 : info.leader().id())
                            + " replicas=" + info.replicas().size());
                }
            }

            Set<String> listed = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            for (String t : List.of(a, b)) {
                if (!listed.contains(t)) {
                    fail("listTopics lacks " + t);
                }
                System.out.println("LISTED " + t);
            }

            admin.deleteTopics(List.of(a)).all().get(30, TimeUnit.SECONDS);
            System.out.println("DELETED " + a);
            long deadline = System.currentTimeMillis() + 20000;
            while (admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(a)) {
                if (System.currentTimeMillis() > deadline) {
                    fail(a + " still listed after delete");
                }
                Thread.sleep(100);
            }
            try {
                admin.describeTopics(List.of(a)).allTopicNames().get(30, TimeUnit.SECONDS);
                fail("describe of deleted " + a + " succeeded");
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                    fail("describe deleted: " + e.getCause());
                }
                System.out.println("GONE " + a + " " + e.getCause().getClass().getSimpleName());
            }
            if (!admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(b)) {
                fail(b + " vanished with " + a);
            }
        }
        System.out.println("DONE");
    }
}
