//! `cxlkafka topic create|list|describe|alter-config|add-partitions|delete|trim`:
//! topic administration, one Kafka API each (describe combines Metadata,
//! DescribeConfigs and ListOffsets, as `kafka-topics --describe` and
//! `rpk topic describe -a` do).

use clap::{ArgAction, Args};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::AdminError;
use super::layout::{self, EARLIEST, LATEST};
use super::output::{ids, obj, Json, Report, Table};
use super::{parse_key_value, print, CommonArgs, Status};

/// CreateTopics: v4 lets the broker pick partitions and replication factor
/// (-1); v7 is the newest before topic ids in the answer matter.
const CREATE_TOPICS: (i16, i16) = (2, 7);
/// DeleteTopics up to v5 names topics in `topic_names`; v6 by name or id.
const DELETE_TOPICS: (i16, i16) = (1, 6);
const CREATE_PARTITIONS: (i16, i16) = (0, 3);
/// DescribeConfigs v1+ reports each entry's source.
const DESCRIBE_CONFIGS: (i16, i16) = (1, 4);
const INCREMENTAL_ALTER_CONFIGS: (i16, i16) = (0, 1);
const DELETE_RECORDS: (i16, i16) = (0, 2);

/// ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs source of a topic's own setting (an override).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Flags of `topic create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// The topic's name.
    pub name: String,
    /// Partition count (default: the broker's `num.partitions`).
    #[arg(short = 'p', long, env = "CXLKAFKA_TOPIC_PARTITIONS",
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replication factor (default: the broker's
    /// `default.replication.factor`).
    #[arg(short = 'r', long, env = "CXLKAFKA_TOPIC_REPLICATION_FACTOR",
          value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: Option<i16>,
    /// A topic config as key=value (repeat for more), e.g.
    /// `--config retention.ms=3600000`.
    #[arg(short = 'c', long, env = "CXLKAFKA_TOPIC_CONFIG", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Include internal topics (`__consumer_offsets`, `__cxlkafka_order`).
    #[arg(long, env = "CXLKAFKA_TOPIC_INTERNAL", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub internal: bool,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic describe`.
#[derive(Debug, Clone, Args)]
pub struct DescribeArgs {
    /// The topic's name.
    pub name: String,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic alter-config`.
#[derive(Debug, Clone, Args)]
pub struct AlterConfigArgs {
    /// The topic's name.
    pub name: String,
    /// Set a config, as key=value (repeat for more).
    #[arg(long, env = "CXLKAFKA_TOPIC_SET", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove a config override, back to the broker default (repeat for
    /// more).
    #[arg(long, env = "CXLKAFKA_TOPIC_DELETE")]
    pub delete: Vec<String>,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic add-partitions`.
#[derive(Debug, Clone, Args)]
pub struct AddPartitionsArgs {
    /// The topic's name.
    pub name: String,
    /// The partition count to grow to (above the current one).
    #[arg(long, env = "CXLKAFKA_TOPIC_TOTAL", value_parser = clap::value_parser!(i32).range(1..))]
    pub total: i32,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The topics to delete.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `topic trim`.
#[derive(Debug, Clone, Args)]
pub struct TrimArgs {
    /// The topic's name.
    pub name: String,
    /// The partition to trim.
    #[arg(long, env = "CXLKAFKA_TOPIC_PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: i32,
    /// Delete every record below this offset (-1: up to the high
    /// watermark).
    #[arg(long, env = "CXLKAFKA_TOPIC_BEFORE", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..))]
    pub before: i64,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// `topic create`.
pub async fn create(args: CreateArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::CreateTopics, CREATE_TOPICS)?;
    if version < 4 && (args.partitions.is_none() || args.replication_factor.is_none()) {
        return Err(AdminError::Other(format!(
            "the broker at {} speaks CreateTopics v{version}, which needs --partitions and \
             --replication-factor",
            broker.addr
        )));
    }
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(&args.name))
            .with_num_partitions(args.partitions.unwrap_or(-1))
            .with_replication_factor(args.replication_factor.unwrap_or(-1))
            .with_configs(
                args.config
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(key.clone()))
                            .with_value(Some(StrBytes::from_string(value.clone())))
                    })
                    .collect(),
            )])
        .with_timeout_ms(args.common.conn.timeout_ms_i32());
    let response: CreateTopicsResponse =
        broker.call(ApiKey::CreateTopics, version, &request).await?;
    let result = response
        .topics
        .first()
        .ok_or_else(|| AdminError::Other("CreateTopics answered no topic".into()))?;
    AdminError::check_with(
        result.error_code,
        || format!("topic {:?}", args.name),
        result.error_message.as_ref(),
    )?;
    // v5+ answers what the broker chose; older versions echo the request.
    let partitions = if version >= 5 {
        result.num_partitions
    } else {
        args.partitions.unwrap_or(-1)
    };
    let factor = if version >= 5 {
        result.replication_factor
    } else {
        args.replication_factor.unwrap_or(-1)
    };
    let report = Report {
        json: obj([
            ("topic", Json::from(args.name.as_str())),
            ("partitions", Json::from(partitions)),
            ("replication_factor", Json::from(factor)),
        ]),
        text: format!(
            "created topic {} ({partitions} partitions, replication factor {factor})\n",
            args.name
        ),
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}

/// `topic list`.
pub async fn list(args: ListArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let response = admin.metadata(None).await?;
    let mut topics: Vec<_> = layout::topics(&response)
        .into_iter()
        .filter(|t| args.internal || !t.internal)
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS", "INTERNAL"]);
    let mut json = Vec::new();
    for topic in &topics {
        table.row(vec![
            topic.name.clone(),
            topic.partitions.len().to_string(),
            topic.replication_factor().to_string(),
            topic.internal.to_string(),
        ]);
        json.push(obj([
            ("name", Json::from(topic.name.as_str())),
            ("partitions", Json::from(topic.partitions.len())),
            ("replication_factor", Json::from(topic.replication_factor())),
            ("internal", Json::from(topic.internal)),
        ]));
    }
    let report = Report {
        json: obj([("topics", Json::Arr(json))]),
        text: table.render(),
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}

/// `topic describe`.
pub async fn describe(args: DescribeArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let topic = layout::topic(&mut admin, &args.name).await?;
    let indexes: Vec<i32> = topic
        .partitions
        .iter()
        .filter(|p| p.leader >= 0)
        .map(|p| p.index)
        .collect();
    let starts = layout::list_offsets(&mut admin, &topic, &indexes, EARLIEST).await?;
    let ends = layout::list_offsets(&mut admin, &topic, &indexes, LATEST).await?;
    let configs = topic_overrides(&mut admin, &args.name).await?;

    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START",
        "HIGH-WATERMARK",
    ]);
    let mut partitions = Vec::new();
    for p in &topic.partitions {
        let start = starts.get(&p.index).copied();
        let end = ends.get(&p.index).copied();
        let cell = |offset: Option<i64>| offset.map_or_else(|| "-".into(), |o| o.to_string());
        table.row(vec![
            p.index.to_string(),
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            cell(start),
            cell(end),
        ]);
        partitions.push(obj([
            ("partition", Json::from(p.index)),
            ("leader", Json::from(p.leader)),
            ("replicas", Json::from(p.replicas.clone())),
            ("isr", Json::from(p.isr.clone())),
            ("log_start_offset", Json::from(start)),
            ("high_watermark", Json::from(end)),
            ("error", error_json(p.error_code)),
        ]));
    }
    let mut text = format!(
        "topic {}  partitions {}  replication factor {}{}\n",
        topic.name,
        topic.partitions.len(),
        topic.replication_factor(),
        if topic.internal { "  (internal)" } else { "" }
    );
    if configs.is_empty() {
        text.push_str("configs: (broker defaults)\n");
    } else {
        text.push_str("configs:\n");
        for (key, value) in &configs {
            text.push_str(&format!("  {key}={}\n", value.as_deref().unwrap_or("")));
        }
    }
    text.push('\n');
    text.push_str(&table.render());
    let report = Report {
        json: obj([
            ("topic", Json::from(topic.name.as_str())),
            ("internal", Json::from(topic.internal)),
            ("replication_factor", Json::from(topic.replication_factor())),
            (
                "configs",
                Json::Obj(
                    configs
                        .into_iter()
                        .map(|(key, value)| (key, Json::from(value)))
                        .collect(),
                ),
            ),
            ("partitions", Json::Arr(partitions)),
        ]),
        text,
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}

/// A partition error as JSON: null, or Kafka's name.
fn error_json(code: i16) -> Json {
    if code == 0 {
        Json::Null
    } else {
        Json::from(super::client::error_name(code))
    }
}

/// The topic's own config settings (DescribeConfigs entries whose source
/// is the topic), sorted by key.
async fn topic_overrides(
    admin: &mut super::client::Admin,
    name: &str,
) -> Result<Vec<(String, Option<String>)>, AdminError> {
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS)?;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configuration_keys(None)]);
    let response: DescribeConfigsResponse = broker
        .call(ApiKey::DescribeConfigs, version, &request)
        .await?;
    let result = response
        .results
        .first()
        .ok_or_else(|| AdminError::Other("DescribeConfigs answered no resource".into()))?;
    AdminError::check_with(
        result.error_code,
        || format!("configs of topic {name:?}"),
        result.error_message.as_ref(),
    )?;
    let mut configs: Vec<(String, Option<String>)> = result
        .configs
        .iter()
        .filter(|c| c.config_source == DYNAMIC_TOPIC_CONFIG)
        .map(|c| {
            let value = if c.is_sensitive {
                Some("(sensitive)".to_owned())
            } else {
                c.value.as_ref().map(|v| v.to_string())
            };
            (c.name.to_string(), value)
        })
        .collect();
    configs.sort();
    Ok(configs)
}

/// `topic alter-config`.
pub async fn alter_config(args: AlterConfigArgs) -> Result<Status, AdminError> {
    if args.set.is_empty() && args.delete.is_empty() {
        return Err(AdminError::Other(
            "nothing to change: give --set key=value and/or --delete key".into(),
        ));
    }
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::IncrementalAlterConfigs, INCREMENTAL_ALTER_CONFIGS)?;
    let sets = args.set.iter().map(|(key, value)| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(key.clone()))
            .with_config_operation(OP_SET)
            .with_value(Some(StrBytes::from_string(value.clone())))
    });
    let deletes = args.delete.iter().map(|key| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(key.clone()))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    });
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(args.name.clone()))
            .with_configs(sets.chain(deletes).collect()),
    ]);
    let response: IncrementalAlterConfigsResponse = broker
        .call(ApiKey::IncrementalAlterConfigs, version, &request)
        .await?;
    for result in &response.responses {
        AdminError::check_with(
            result.error_code,
            || format!("configs of topic {:?}", args.name),
            result.error_message.as_ref(),
        )?;
    }
    let report = Report {
        json: obj([
            ("topic", Json::from(args.name.as_str())),
            (
                "set",
                Json::Obj(
                    args.set
                        .iter()
                        .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
                        .collect(),
                ),
            ),
            ("deleted", Json::from(args.delete.clone())),
        ]),
        text: format!(
            "topic {}: {} set, {} deleted\n",
            args.name,
            args.set.len(),
            args.delete.len()
        ),
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}

/// `topic add-partitions`.
pub async fn add_partitions(args: AddPartitionsArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::CreatePartitions, CREATE_PARTITIONS)?;
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(&args.name))
            .with_count(args.total)
            .with_assignments(None)])
        .with_timeout_ms(args.common.conn.timeout_ms_i32());
    let response: CreatePartitionsResponse = broker
        .call(ApiKey::CreatePartitions, version, &request)
        .await?;
    for result in &response.results {
        AdminError::check_with(
            result.error_code,
            || format!("topic {:?} to {} partitions", args.name, args.total),
            result.error_message.as_ref(),
        )?;
    }
    let report = Report {
        json: obj([
            ("topic", Json::from(args.name.as_str())),
            ("partitions", Json::from(args.total)),
        ]),
        text: format!("topic {} now has {} partitions\n", args.name, args.total),
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}

/// `topic delete`: every topic is tried; each failure is reported, and
/// any makes the exit status 1.
pub async fn delete(args: DeleteArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::DeleteTopics, DELETE_TOPICS)?;
    let mut request =
        DeleteTopicsRequest::default().with_timeout_ms(args.common.conn.timeout_ms_i32());
    if version >= 6 {
        request.topics = args
            .names
            .iter()
            .map(|name| DeleteTopicState::default().with_name(Some(topic_name(name))))
            .collect();
    } else {
        request.topic_names = args.names.iter().map(|name| topic_name(name)).collect();
    }
    let response: DeleteTopicsResponse =
        broker.call(ApiKey::DeleteTopics, version, &request).await?;
    let mut results = Vec::new();
    let mut text = String::new();
    let mut failed = false;
    for result in &response.responses {
        let name = result
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .unwrap_or_default();
        let outcome = AdminError::check_with(
            result.error_code,
            || format!("topic {name:?}"),
            result.error_message.as_ref(),
        );
        match &outcome {
            Ok(()) => text.push_str(&format!("deleted topic {name}\n")),
            Err(error) => {
                failed = true;
                eprintln!("cxlkafka: {error}");
            }
        }
        results.push(obj([
            ("topic", Json::from(name)),
            ("error", error_json(result.error_code)),
        ]));
    }
    let report = Report {
        json: obj([("results", Json::Arr(results))]),
        text,
    };
    print(args.common.format, &report);
    Ok(if failed { Status::Failed } else { Status::Done })
}

/// `topic trim`.
pub async fn trim(args: TrimArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let topic = layout::topic(&mut admin, &args.name).await?;
    let leader = topic
        .leader(args.partition)
        .ok_or_else(|| AdminError::Kafka {
            code: if topic.partitions.iter().any(|p| p.index == args.partition) {
                5
            } else {
                3
            },
            what: format!("partition {}/{}", args.name, args.partition),
            message: None,
        })?;
    let timeout = args.common.conn.timeout_ms_i32();
    let broker = admin.broker(leader).await?;
    let version = broker.version(ApiKey::DeleteRecords, DELETE_RECORDS)?;
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(&args.name))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(args.partition)
                .with_offset(args.before)])])
        .with_timeout_ms(timeout);
    let response: DeleteRecordsResponse = broker
        .call(ApiKey::DeleteRecords, version, &request)
        .await?;
    let result = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == args.partition)
        .ok_or_else(|| AdminError::Other("DeleteRecords did not answer the partition".into()))?;
    AdminError::check(result.error_code, || {
        format!(
            "trimming {}/{} before offset {}",
            args.name, args.partition, args.before
        )
    })?;
    let report = Report {
        json: obj([
            ("topic", Json::from(args.name.as_str())),
            ("partition", Json::from(args.partition)),
            ("log_start_offset", Json::from(result.low_watermark)),
        ]),
        text: format!(
            "{}/{}: log now starts at offset {}\n",
            args.name, args.partition, result.low_watermark
        ),
    };
    print(args.common.format, &report);
    Ok(Status::Done)
}
