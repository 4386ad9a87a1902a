//! Client-side helpers for the admin API tests (CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
//! DescribeCluster): requests built and responses decoded with
//! `kafka-protocol`'s client side, as an admin client would.

#![allow(dead_code)] // each test binary uses a different part

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::common::{decode_response, request_frame, Client};

/// Config resource types.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;

/// Config sources.
pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub const STATIC_BROKER_CONFIG: i8 = 4;
pub const DEFAULT_CONFIG: i8 = 5;

/// A client that numbers its requests.
pub struct Admin {
    pub client: Client,
    next_correlation_id: i32,
}

impl Admin {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            next_correlation_id: 1,
        }
    }

    /// Sends one request at `version` and decodes its response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Resp {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        self.client
            .send(&request_frame(
                api_key,
                version,
                version,
                correlation_id,
                request,
            ))
            .await;
        let payload = self.client.read_frame().await.expect("a response");
        let (header, response) = decode_response(payload, api_key, version, version);
        assert_eq!(header.correlation_id, correlation_id);
        response
    }

    /// Creates topics at CreateTopics v7 and returns the results.
    pub async fn create(&mut self, topics: Vec<CreatableTopic>) -> Vec<CreatableTopicResult> {
        let request = CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(10_000);
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 7, &request).await;
        response.topics
    }

    /// Creates one topic and asserts it worked.
    pub async fn create_ok(&mut self, name: &str, partitions: i32) -> CreatableTopicResult {
        let mut results = self.create(vec![new_topic(name, partitions, 1)]).await;
        assert_eq!(results.len(), 1);
        let result = results.remove(0);
        assert_eq!(result.error_code, 0, "{name}: {:?}", result.error_message);
        result
    }

    /// The Metadata entry of `name`, without auto-creating it.
    pub async fn metadata(&mut self, name: &str) -> MetadataResponseTopic {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(name)))
            ]))
            .with_allow_auto_topic_creation(false);
        let mut response: MetadataResponse = self.call(ApiKey::Metadata, 12, &request).await;
        assert_eq!(response.topics.len(), 1);
        response.topics.remove(0)
    }

    /// Whether Metadata knows `name`, and with how many partitions.
    pub async fn partitions(&mut self, name: &str) -> Option<usize> {
        let topic = self.metadata(name).await;
        match topic.error_code {
            0 => Some(topic.partitions.len()),
            3 => None,
            other => panic!("Metadata for {name}: error {other}"),
        }
    }

    /// DescribeConfigs v4 of one resource, with synonyms and documentation.
    pub async fn describe(&mut self, resource_type: i8, name: &str) -> DescribeConfigsResult {
        let request = DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configuration_keys(None)])
            .with_include_synonyms(true)
            .with_include_documentation(true);
        let mut response: DescribeConfigsResponse =
            self.call(ApiKey::DescribeConfigs, 4, &request).await;
        assert_eq!(response.results.len(), 1);
        response.results.remove(0)
    }

    /// The value and source of a topic config.
    pub async fn topic_config(&mut self, topic: &str, config: &str) -> (String, i8) {
        let result = self.describe(TOPIC, topic).await;
        assert_eq!(result.error_code, 0, "{topic}: {:?}", result.error_message);
        let entry = find_config(&result, config).unwrap_or_else(|| panic!("{config} listed"));
        (
            entry
                .value
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            entry.config_source,
        )
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A topic to create with explicit counts and no configs.
pub fn new_topic(name: &str, partitions: i32, replication_factor: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
}

/// A topic config for CreateTopics.
pub fn config(name: &str, value: Option<&str>) -> CreatableTopicConfig {
    CreatableTopicConfig::default()
        .with_name(text(name))
        .with_value(value.map(text))
}

pub fn find_config<'a>(
    result: &'a DescribeConfigsResult,
    name: &str,
) -> Option<&'a DescribeConfigsResourceResult> {
    result
        .configs
        .iter()
        .find(|entry| entry.name.as_str() == name)
}

pub fn message(message: &Option<StrBytes>) -> String {
    message.as_ref().map(|m| m.to_string()).unwrap_or_default()
}
