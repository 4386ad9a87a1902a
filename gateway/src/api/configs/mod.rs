//! Config APIs: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
//! What they share is [`crate::api_support::topic_config`],
//! [`crate::api_support::config_entries`] and
//! [`crate::api_support::config_changes`].

pub mod alter_configs;
pub mod describe_configs;
pub mod incremental_alter_configs;
