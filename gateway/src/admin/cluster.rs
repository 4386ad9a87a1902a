//! `cxlkafka cluster info|health`: who the brokers are, and whether the
//! cluster can serve every partition.
//!
//! Health is what Kafka's own checks look at: every broker Metadata lists
//! answers ApiVersions, there is a controller, no partition is without a
//! leader (offline) and none has fewer in-sync replicas than replicas
//! (under-replicated). On cxlkafka (recognised by its `__cxlkafka_order`
//! topic) the same Metadata says more, and the report names it: the
//! controller is the gateway that holds (or is next in line for) the
//! sequencer lease, and a replica outside the ISR is a gateway whose disk
//! does not yet hold every ordered entry, so those gateways are listed.

use std::collections::BTreeSet;

use clap::Args;
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse};

use super::client::{AdminError, Broker};
use super::layout;
use super::output::{obj, Json, Report, Table};
use super::{print, CommonArgs, Status};

/// DescribeCluster v0 and v1 (v1 adds the endpoint type; brokers are 1).
const DESCRIBE_CLUSTER: (i16, i16) = (0, 1);
/// The topic every cxlkafka cluster lists (the total order).
const CXLKAFKA_ORDER_TOPIC: &str = "__cxlkafka_order";

/// Flags of `cluster info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `cluster health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `cluster info`.
pub async fn info(args: InfoArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let metadata = admin.metadata(None).await?;
    let topics = layout::topics(&metadata);
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let mut cluster_id = metadata.cluster_id.as_ref().map(|id| id.to_string());
    let mut controller = metadata.controller_id.0;
    // Racks and fencing come from DescribeCluster where the broker has it.
    let mut fenced: BTreeSet<i32> = BTreeSet::new();
    let bootstrap = admin.bootstrap();
    if bootstrap.serves(ApiKey::DescribeCluster) {
        if let Ok(version) = bootstrap.version(ApiKey::DescribeCluster, DESCRIBE_CLUSTER) {
            let mut request = DescribeClusterRequest::default();
            if version >= 1 {
                request.endpoint_type = 1; // brokers
            }
            let response: DescribeClusterResponse = bootstrap
                .call(ApiKey::DescribeCluster, version, &request)
                .await?;
            AdminError::check_with(
                response.error_code,
                || "DescribeCluster".into(),
                response.error_message.as_ref(),
            )?;
            cluster_id = Some(response.cluster_id.to_string());
            controller = response.controller_id.0;
            fenced = response
                .brokers
                .iter()
                .filter(|b| b.is_fenced)
                .map(|b| b.broker_id.0)
                .collect();
        }
    }
    let mut table = Table::new(&["ID", "HOST", "PORT", "RACK", "CONTROLLER"]);
    let mut brokers = Vec::new();
    for broker in &metadata.brokers {
        let id = broker.node_id.0;
        let rack = broker.rack.as_ref().map(|r| r.to_string());
        table.row(vec![
            id.to_string(),
            broker.host.to_string(),
            broker.port.to_string(),
            rack.clone().unwrap_or_else(|| "-".into()),
            if id == controller {
                "*".into()
            } else {
                String::new()
            },
        ]);
        brokers.push(obj([
            ("id", Json::from(id)),
            ("host", Json::from(broker.host.to_string())),
            ("port", Json::from(broker.port)),
            ("rack", Json::from(rack)),
            ("fenced", Json::from(fenced.contains(&id))),
        ]));
    }
    let cxlkafka = topics.iter().any(|t| t.name == CXLKAFKA_ORDER_TOPIC);
    let text = format!(
        "cluster {}  controller {controller}  {} brokers  {} topics  {partitions} partitions{}\n\n{}",
        cluster_id.as_deref().unwrap_or("-"),
        metadata.brokers.len(),
        topics.len(),
        if cxlkafka { "  (cxlkafka)" } else { "" },
        table.render()
    );
    print(
        args.common.format,
        &Report {
            json: obj([
                ("cluster_id", Json::from(cluster_id)),
                ("controller_id", Json::from(controller)),
                ("cxlkafka", Json::from(cxlkafka)),
                ("brokers", Json::Arr(brokers)),
                ("topics", Json::from(topics.len())),
                ("partitions", Json::from(partitions)),
            ]),
            text,
        },
    );
    Ok(Status::Done)
}

/// `cluster health`.
pub async fn health(args: HealthArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let metadata = admin.metadata(None).await?;
    let topics = layout::topics(&metadata);
    let controller = metadata.controller_id.0;

    // Every broker must answer ApiVersions on a fresh connection.
    let mut table = Table::new(&["ID", "ADDRESS", "ANSWERS"]);
    let mut brokers = Vec::new();
    let mut silent = 0usize;
    for (&id, addr) in admin.brokers() {
        let answer = Broker::connect(addr, &admin.options).await;
        if answer.is_err() {
            silent += 1;
        }
        table.row(vec![
            id.to_string(),
            addr.clone(),
            match &answer {
                Ok(_) => "yes".into(),
                Err(error) => format!("no: {error}"),
            },
        ]);
        brokers.push(obj([
            ("id", Json::from(id)),
            ("address", Json::from(addr.as_str())),
            ("answers", Json::from(answer.is_ok())),
            ("error", Json::from(answer.err().map(|e| e.to_string()))),
        ]));
    }

    let mut offline = Vec::new();
    let mut under_replicated = Vec::new();
    let mut behind: BTreeSet<i32> = BTreeSet::new();
    let mut total = 0usize;
    for topic in &topics {
        for p in &topic.partitions {
            total += 1;
            let name = format!("{}/{}", topic.name, p.index);
            if p.leader < 0 {
                offline.push(name.clone());
            }
            if p.isr.len() < p.replicas.len() {
                under_replicated.push(name);
                behind.extend(p.replicas.iter().filter(|r| !p.isr.contains(r)));
            }
        }
    }
    let cxlkafka = topics.iter().any(|t| t.name == CXLKAFKA_ORDER_TOPIC);
    let healthy =
        silent == 0 && controller >= 0 && offline.is_empty() && under_replicated.is_empty();

    let mut text = format!(
        "{}: {} brokers ({silent} not answering), controller {controller}, {total} partitions, \
         {} offline, {} under-replicated\n",
        if healthy { "healthy" } else { "NOT HEALTHY" },
        metadata.brokers.len(),
        offline.len(),
        under_replicated.len()
    );
    if cxlkafka {
        text.push_str(&format!(
            "cxlkafka: sequencer lease with gateway {controller}; gateways without every \
             ordered entry on disk: {}\n",
            if behind.is_empty() {
                "none".to_owned()
            } else {
                super::output::ids(&behind.iter().copied().collect::<Vec<_>>())
            }
        ));
    }
    for name in &offline {
        text.push_str(&format!("offline: {name}\n"));
    }
    for name in &under_replicated {
        text.push_str(&format!("under-replicated: {name}\n"));
    }
    text.push('\n');
    text.push_str(&table.render());
    let mut json = vec![
        ("healthy".to_owned(), Json::from(healthy)),
        ("controller_id".to_owned(), Json::from(controller)),
        ("brokers".to_owned(), Json::Arr(brokers)),
        ("partitions".to_owned(), Json::from(total)),
        ("offline_partitions".to_owned(), Json::from(offline)),
        (
            "under_replicated_partitions".to_owned(),
            Json::from(under_replicated),
        ),
        ("cxlkafka".to_owned(), Json::from(cxlkafka)),
    ];
    if cxlkafka {
        json.push((
            "gateways_behind".to_owned(),
            Json::from(behind.into_iter().collect::<Vec<_>>()),
        ));
    }
    print(
        args.common.format,
        &Report {
            json: Json::Obj(json),
            text,
        },
    );
    Ok(if healthy {
        Status::Done
    } else {
        Status::Failed
    })
}
