//! `cxlkafka acl create|list|delete`: ACL bindings through CreateAcls,
//! DescribeAcls and DeleteAcls, with `kafka-acls.sh`-like flags.
//!
//! A filter (list, delete) matches any value of each flag not given: no
//! resource flag matches every resource, no `--pattern` every pattern
//! type, no `--deny` both permissions. `delete` wants at least a resource
//! or a principal, so that a bare `acl delete` cannot remove everything.

use clap::{ArgAction, Args, ValueEnum};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::AdminError;
use super::output::{obj, Json, Report, Table};
use super::{print, CommonArgs, Status};
use crate::security::acl::{AclOperation, PatternType, Permission, ResourceType, CLUSTER_NAME};

/// v1 added pattern types; v2+ are flexible. Kafka 3.x serves 1..3.
const ACL_VERSIONS: (i16, i16) = (1, 3);

/// `--operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum OperationArg {
    /// Every operation.
    All,
    /// Read.
    Read,
    /// Write.
    Write,
    /// Create.
    Create,
    /// Delete.
    Delete,
    /// Alter.
    Alter,
    /// Describe.
    Describe,
    /// Broker-to-broker actions.
    ClusterAction,
    /// Describe configs.
    DescribeConfigs,
    /// Alter configs.
    AlterConfigs,
    /// Idempotent produce.
    IdempotentWrite,
}

impl OperationArg {
    fn operation(self) -> AclOperation {
        match self {
            OperationArg::All => AclOperation::All,
            OperationArg::Read => AclOperation::Read,
            OperationArg::Write => AclOperation::Write,
            OperationArg::Create => AclOperation::Create,
            OperationArg::Delete => AclOperation::Delete,
            OperationArg::Alter => AclOperation::Alter,
            OperationArg::Describe => AclOperation::Describe,
            OperationArg::ClusterAction => AclOperation::ClusterAction,
            OperationArg::DescribeConfigs => AclOperation::DescribeConfigs,
            OperationArg::AlterConfigs => AclOperation::AlterConfigs,
            OperationArg::IdempotentWrite => AclOperation::IdempotentWrite,
        }
    }
}

/// `--pattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatternArg {
    /// Filters only: every binding that applies to the named resource
    /// (literal, wildcard and prefixes of it).
    Match,
    /// The name itself (`*`: every resource of the type).
    Literal,
    /// Every resource whose name starts with it.
    Prefixed,
}

impl PatternArg {
    fn pattern(self) -> PatternType {
        match self {
            PatternArg::Match => PatternType::Match,
            PatternArg::Literal => PatternType::Literal,
            PatternArg::Prefixed => PatternType::Prefixed,
        }
    }
}

/// The resource flags: at most one.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct ResourceArgs {
    /// A topic (name, prefix with --pattern prefixed, or `*`).
    #[arg(long, env = "CXLKAFKA_ACL_TOPIC")]
    pub topic: Option<String>,
    /// A consumer group.
    #[arg(long, env = "CXLKAFKA_ACL_GROUP")]
    pub group: Option<String>,
    /// The cluster.
    #[arg(long, env = "CXLKAFKA_ACL_CLUSTER", action = ArgAction::SetTrue)]
    pub cluster: bool,
    /// A transactional id.
    #[arg(long, env = "CXLKAFKA_ACL_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,
}

impl ResourceArgs {
    /// (type, name) of the resource named, if any.
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(topic) = &self.topic {
            Some((ResourceType::Topic, topic.clone()))
        } else if let Some(group) = &self.group {
            Some((ResourceType::Group, group.clone()))
        } else if self.cluster {
            Some((ResourceType::Cluster, CLUSTER_NAME.to_owned()))
        } else {
            self.transactional_id
                .as_ref()
                .map(|id| (ResourceType::TransactionalId, id.clone()))
        }
    }
}

/// Flags of `acl create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Who: `User:alice` (`User:*` for everyone).
    #[arg(long, env = "CXLKAFKA_ACL_PRINCIPAL")]
    pub principal: String,
    /// What (repeat for more; one ACL each).
    #[arg(
        long,
        env = "CXLKAFKA_ACL_OPERATION",
        value_enum,
        ignore_case = true,
        required = true
    )]
    pub operation: Vec<OperationArg>,
    /// The resource the ACL is about.
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// How the resource name matches: literal or prefixed.
    #[arg(long, env = "CXLKAFKA_ACL_PATTERN", value_enum, default_value_t = PatternArg::Literal)]
    pub pattern: PatternArg,
    /// The client host the ACL applies to (`*`: any).
    #[arg(long, env = "CXLKAFKA_ACL_HOST", default_value = "*")]
    pub host: String,
    /// Deny instead of allow.
    #[arg(long, env = "CXLKAFKA_ACL_DENY", action = ArgAction::SetTrue)]
    pub deny: bool,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `acl list` and `acl delete`: a filter.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only this principal.
    #[arg(long, env = "CXLKAFKA_ACL_PRINCIPAL")]
    pub principal: Option<String>,
    /// Only this operation.
    #[arg(long, env = "CXLKAFKA_ACL_OPERATION", value_enum, ignore_case = true)]
    pub operation: Option<OperationArg>,
    /// The resource the ACL is about.
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// Only this pattern type (default: any).
    #[arg(long, env = "CXLKAFKA_ACL_PATTERN", value_enum)]
    pub pattern: Option<PatternArg>,
    /// Only this host.
    #[arg(long, env = "CXLKAFKA_ACL_HOST")]
    pub host: Option<String>,
    /// Only DENY bindings (default: allow and deny).
    #[arg(long, env = "CXLKAFKA_ACL_DENY", action = ArgAction::SetTrue)]
    pub deny: bool,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One binding, as printed.
struct Binding {
    resource_type: i8,
    name: String,
    pattern: i8,
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
}

fn resource_name(code: i8) -> &'static str {
    match ResourceType::from_code(code) {
        Some(ResourceType::Any) => "ANY",
        Some(ResourceType::Topic) => "TOPIC",
        Some(ResourceType::Group) => "GROUP",
        Some(ResourceType::Cluster) => "CLUSTER",
        Some(ResourceType::TransactionalId) => "TRANSACTIONAL_ID",
        Some(ResourceType::DelegationToken) => "DELEGATION_TOKEN",
        Some(ResourceType::User) => "USER",
        None => "UNKNOWN",
    }
}

fn pattern_name(code: i8) -> &'static str {
    match PatternType::from_code(code) {
        Some(PatternType::Any) => "ANY",
        Some(PatternType::Match) => "MATCH",
        Some(PatternType::Literal) => "LITERAL",
        Some(PatternType::Prefixed) => "PREFIXED",
        None => "UNKNOWN",
    }
}

/// Kafka's name of an ACL operation code.
pub fn operation_name(code: i8) -> &'static str {
    match AclOperation::from_code(code) {
        Some(AclOperation::Any) => "ANY",
        Some(AclOperation::All) => "ALL",
        Some(AclOperation::Read) => "READ",
        Some(AclOperation::Write) => "WRITE",
        Some(AclOperation::Create) => "CREATE",
        Some(AclOperation::Delete) => "DELETE",
        Some(AclOperation::Alter) => "ALTER",
        Some(AclOperation::Describe) => "DESCRIBE",
        Some(AclOperation::ClusterAction) => "CLUSTER_ACTION",
        Some(AclOperation::DescribeConfigs) => "DESCRIBE_CONFIGS",
        Some(AclOperation::AlterConfigs) => "ALTER_CONFIGS",
        Some(AclOperation::IdempotentWrite) => "IDEMPOTENT_WRITE",
        Some(AclOperation::CreateTokens) => "CREATE_TOKENS",
        Some(AclOperation::DescribeTokens) => "DESCRIBE_TOKENS",
        None => "UNKNOWN",
    }
}

fn permission_name(code: i8) -> &'static str {
    match Permission::from_code(code) {
        Some(Permission::Any) => "ANY",
        Some(Permission::Deny) => "DENY",
        Some(Permission::Allow) => "ALLOW",
        None => "UNKNOWN",
    }
}

/// Prints bindings as a table or a JSON list under `key`.
fn report(key: &str, bindings: &[Binding]) -> Report {
    let mut table = Table::new(&[
        "RESOURCE-TYPE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]);
    let mut json = Vec::new();
    for b in bindings {
        table.row(vec![
            resource_name(b.resource_type).into(),
            b.name.clone(),
            pattern_name(b.pattern).into(),
            b.principal.clone(),
            b.host.clone(),
            operation_name(b.operation).into(),
            permission_name(b.permission).into(),
        ]);
        json.push(obj([
            ("resource_type", Json::from(resource_name(b.resource_type))),
            ("resource_name", Json::from(b.name.as_str())),
            ("pattern_type", Json::from(pattern_name(b.pattern))),
            ("principal", Json::from(b.principal.as_str())),
            ("host", Json::from(b.host.as_str())),
            ("operation", Json::from(operation_name(b.operation))),
            ("permission", Json::from(permission_name(b.permission))),
        ]));
    }
    Report {
        json: Json::Obj(vec![(key.to_owned(), Json::Arr(json))]),
        text: table.render(),
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// `acl create`.
pub async fn create(args: CreateArgs) -> Result<Status, AdminError> {
    let (resource_type, name) = args.resource.resource().ok_or_else(|| {
        AdminError::Other(
            "name the resource: --topic, --group, --cluster or --transactional-id".into(),
        )
    })?;
    if !args.principal.contains(':') {
        return Err(AdminError::Other(format!(
            "--principal {:?}: expected TYPE:NAME, e.g. User:alice",
            args.principal
        )));
    }
    if args.pattern == PatternArg::Match {
        return Err(AdminError::Other(
            "--pattern match is for filters; create literal or prefixed ACLs".into(),
        ));
    }
    let permission = if args.deny {
        Permission::Deny
    } else {
        Permission::Allow
    };
    let bindings: Vec<Binding> = args
        .operation
        .iter()
        .map(|op| Binding {
            resource_type: resource_type.code(),
            name: name.clone(),
            pattern: args.pattern.pattern().code(),
            principal: args.principal.clone(),
            host: args.host.clone(),
            operation: op.operation().code(),
            permission: permission.code(),
        })
        .collect();
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::CreateAcls, ACL_VERSIONS)?;
    let request = CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type)
                    .with_resource_name(text(&b.name))
                    .with_resource_pattern_type(b.pattern)
                    .with_principal(text(&b.principal))
                    .with_host(text(&b.host))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission)
            })
            .collect(),
    );
    let response: CreateAclsResponse = broker.call(ApiKey::CreateAcls, version, &request).await?;
    for (result, b) in response.results.iter().zip(&bindings) {
        AdminError::check_with(
            result.error_code,
            || {
                format!(
                    "ACL {} {} on {} {:?} for {}",
                    permission_name(b.permission),
                    operation_name(b.operation),
                    resource_name(b.resource_type),
                    b.name,
                    b.principal
                )
            },
            result.error_message.as_ref(),
        )?;
    }
    print(args.common.format, &report("created", &bindings));
    Ok(Status::Done)
}

/// A filter's seven wire fields (DescribeAclsRequest and DeleteAclsFilter
/// name them alike but are different types).
struct WireFilter {
    resource_type: i8,
    name: Option<StrBytes>,
    pattern: i8,
    principal: Option<StrBytes>,
    host: Option<StrBytes>,
    operation: i8,
    permission: i8,
}

fn wire_filter(args: &FilterArgs) -> WireFilter {
    let (resource_type, name) = match args.resource.resource() {
        Some((kind, name)) => (kind.code(), Some(text(&name))),
        None => (ResourceType::Any.code(), None),
    };
    WireFilter {
        resource_type,
        name,
        pattern: args
            .pattern
            .map_or(PatternType::Any, PatternArg::pattern)
            .code(),
        principal: args.principal.as_deref().map(text),
        host: args.host.as_deref().map(text),
        operation: args
            .operation
            .map_or(AclOperation::Any, OperationArg::operation)
            .code(),
        permission: if args.deny {
            Permission::Deny
        } else {
            Permission::Any
        }
        .code(),
    }
}

/// `acl list`.
pub async fn list(args: FilterArgs) -> Result<Status, AdminError> {
    let WireFilter {
        resource_type,
        name,
        pattern,
        principal,
        host,
        operation,
        permission,
    } = wire_filter(&args);
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::DescribeAcls, ACL_VERSIONS)?;
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(name)
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal)
        .with_host_filter(host)
        .with_operation(operation)
        .with_permission_type(permission);
    let response: DescribeAclsResponse =
        broker.call(ApiKey::DescribeAcls, version, &request).await?;
    AdminError::check_with(
        response.error_code,
        || "DescribeAcls".into(),
        response.error_message.as_ref(),
    )?;
    let bindings: Vec<Binding> = response
        .resources
        .iter()
        .flat_map(|resource| {
            resource.acls.iter().map(move |acl| Binding {
                resource_type: resource.resource_type,
                name: resource.resource_name.to_string(),
                pattern: resource.pattern_type,
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation: acl.operation,
                permission: acl.permission_type,
            })
        })
        .collect();
    print(args.common.format, &report("acls", &bindings));
    Ok(Status::Done)
}

/// `acl delete`.
pub async fn delete(args: FilterArgs) -> Result<Status, AdminError> {
    if args.resource.resource().is_none() && args.principal.is_none() {
        return Err(AdminError::Other(
            "acl delete needs a resource (--topic, --group, --cluster, --transactional-id) or \
             --principal; it will not delete every ACL"
                .into(),
        ));
    }
    let WireFilter {
        resource_type,
        name,
        pattern,
        principal,
        host,
        operation,
        permission,
    } = wire_filter(&args);
    let mut admin = args.common.conn.connect().await?;
    let broker = admin.bootstrap();
    let version = broker.version(ApiKey::DeleteAcls, ACL_VERSIONS)?;
    let request = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(name)
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal)
        .with_host_filter(host)
        .with_operation(operation)
        .with_permission_type(permission)]);
    let response: DeleteAclsResponse = broker.call(ApiKey::DeleteAcls, version, &request).await?;
    let mut bindings = Vec::new();
    for result in &response.filter_results {
        AdminError::check_with(
            result.error_code,
            || "DeleteAcls".into(),
            result.error_message.as_ref(),
        )?;
        for acl in &result.matching_acls {
            AdminError::check_with(
                acl.error_code,
                || format!("deleting an ACL of {:?}", acl.resource_name.as_str()),
                acl.error_message.as_ref(),
            )?;
            bindings.push(Binding {
                resource_type: acl.resource_type,
                name: acl.resource_name.to_string(),
                pattern: acl.pattern_type,
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation: acl.operation,
                permission: acl.permission_type,
            });
        }
    }
    print(args.common.format, &report("deleted", &bindings));
    Ok(Status::Done)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::admin::AclCommand;
    use crate::config::{Cli, Command};

    fn create_args(argv: &[&str]) -> Result<CreateArgs, clap::Error> {
        let argv = ["cxlkafka", "acl", "create"].iter().chain(argv).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Acl(AclCommand::Create(args)) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn create_flags_parse_like_kafka_acls() {
        let args = create_args(&[
            "--principal",
            "User:alice",
            "--operation",
            "Read",
            "--operation",
            "describe",
            "--topic",
            "orders",
            "--pattern",
            "prefixed",
        ])
        .expect("parses");
        assert_eq!(args.operation, [OperationArg::Read, OperationArg::Describe]);
        assert_eq!(
            args.resource.resource(),
            Some((ResourceType::Topic, "orders".into()))
        );
        assert_eq!(args.pattern, PatternArg::Prefixed);
        assert_eq!(args.host, "*");
        assert!(!args.deny);
    }

    #[test]
    fn one_resource_at_most() {
        let both = create_args(&[
            "--principal",
            "User:a",
            "--operation",
            "read",
            "--topic",
            "t",
            "--group",
            "g",
        ]);
        assert!(both.is_err(), "--topic and --group conflict");
        let cluster = create_args(&["--principal", "User:a", "--operation", "alter", "--cluster"])
            .expect("parses");
        assert_eq!(
            cluster.resource.resource(),
            Some((ResourceType::Cluster, "kafka-cluster".into()))
        );
    }

    #[test]
    fn codes_have_kafkas_names() {
        assert_eq!(
            operation_name(AclOperation::IdempotentWrite.code()),
            "IDEMPOTENT_WRITE"
        );
        assert_eq!(
            resource_name(ResourceType::TransactionalId.code()),
            "TRANSACTIONAL_ID"
        );
        assert_eq!(pattern_name(PatternType::Prefixed.code()), "PREFIXED");
        assert_eq!(permission_name(Permission::Deny.code()), "DENY");
    }
}
