import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.config.ConfigResource;

/**
 * Java AdminClient and broker configs (KIP-226, KIP-412): the cluster-wide
 * default and one broker's value set with incrementalAlterConfigs, read back
 * with describeConfigs (value and source), a read-only config refused, a
 * broker value deleted, and a logger's level set.
 *
 * Usage: JavaBrokerConfigs BOOTSTRAP NODE_ID
 * Prints "CONFIG <step> <name> <value> <source>" per config read back,
 * "ERROR <step> <exception class>" per refusal, "LOGGER <step> <name>
 * <level>" per logger read back, then "DONE"; exits 1 with "FAIL <why>" on
 * an unexpected result.
 */
public class JavaBrokerConfigs {
    static final long TIMEOUT_S = 30;

    static void fail(String why) {
        System.out.println("FAIL " + why);
        System.exit(1);
    }

    static void alter(Admin admin, ConfigResource resource, AlterConfigOp... ops) throws Exception {
        admin.incrementalAlterConfigs(Map.of(resource, List.of(ops)))
                .all().get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    static Config describe(Admin admin, ConfigResource resource) throws Exception {
        return admin.describeConfigs(List.of(resource)).all()
                .get(TIMEOUT_S, TimeUnit.SECONDS).get(resource);
    }

    static void print(String step, Config config, Collection<String> names) {
        for (String name : names) {
            ConfigEntry entry = config.get(name);
            if (entry == null) {
                fail(step + ": " + name + " not described");
            }
            System.out.println("CONFIG " + step + " " + name + " " + entry.value() + " "
                    + entry.source());
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String node = args[1];
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "cxk-java-broker-configs");
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node);
        ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
        ConfigResource loggers = new ConfigResource(ConfigResource.Type.BROKER_LOGGER, node);
        List<String> names = List.of("log.retention.ms", "message.max.bytes");
        try (Admin admin = Admin.create(p)) {
            alter(admin, clusterDefault, new AlterConfigOp(
                    new ConfigEntry("log.retention.ms", "86400000"), AlterConfigOp.OpType.SET));
            alter(admin, broker, new AlterConfigOp(
                    new ConfigEntry("message.max.bytes", "200000"), AlterConfigOp.OpType.SET));
            print("set", describe(admin, broker), names);

            try {
                alter(admin, broker, new AlterConfigOp(
                        new ConfigEntry("num.partitions", "7"), AlterConfigOp.OpType.SET));
                fail("num.partitions changed at runtime");
            } catch (ExecutionException e) {
                System.out.println("ERROR read-only " + e.getCause().getClass().getSimpleName());
            }

            alter(admin, broker, new AlterConfigOp(
                    new ConfigEntry("message.max.bytes", ""), AlterConfigOp.OpType.DELETE));
            print("deleted", describe(admin, broker), names);

            alter(admin, loggers, new AlterConfigOp(
                    new ConfigEntry("cxlkafka_gateway", "DEBUG"), AlterConfigOp.OpType.SET));
            ConfigEntry level = describe(admin, loggers).get("cxlkafka_gateway");
            if (level == null) {
                fail("logger cxlkafka_gateway not described");
            }
            System.out.println("LOGGER set cxlkafka_gateway " + level.value());
        }
        System.out.println("DONE");
    }
}
