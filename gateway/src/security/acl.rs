//! Kafka's ACL model: bindings (resource pattern + principal, host,
//! operation, permission), the filters of DescribeAcls and DeleteAcls, and
//! the decision of Kafka's standard authorizer.
//!
//! The decision, as Kafka makes it (`allow.everyone.if.no.acl.found`
//! false):
//!
//! 1. a super user is allowed everything;
//! 2. an ACL applies when its resource type matches and its pattern does
//!    (LITERAL: same name or `*`; PREFIXED: the name starts with it), its
//!    principal is the caller's or `User:*`, its host the caller's or `*`;
//! 3. any applying DENY for the operation (or ALL) denies: deny wins;
//! 4. else any applying ALLOW for the operation, ALL, or an operation that
//!    implies it (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS
//!    implies DESCRIBE_CONFIGS) allows;
//! 5. else denied.

use cxlkafka_sequencer::control::AclRecord;

/// The one cluster resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name and host.
pub const WILDCARD: &str = "*";
/// The wildcard principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! kafka_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The value of a wire code, if known.
            pub fn from_code(code: i8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

kafka_codes!(
    /// What kind of resource an ACL is about.
    ResourceType {
        /// Filters only.
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (quotas, credentials).
        User = 7,
    }
);

kafka_codes!(
    /// How an ACL's resource name matches.
    PatternType {
        /// Filters only: any pattern type.
        Any = 1,
        /// Filters only: every binding that applies to the named resource.
        Match = 2,
        /// The name itself, or `*` for every resource.
        Literal = 3,
        /// Every resource whose name starts with it.
        Prefixed = 4,
    }
);

kafka_codes!(
    /// What an ACL allows or denies.
    AclOperation {
        /// Filters only.
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Broker-to-broker actions.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent produce.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
);

kafka_codes!(
    /// Allow or deny.
    Permission {
        /// Filters only.
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
);

/// A resource a request touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource<'a> {
    /// A topic by name.
    Topic(&'a str),
    /// A consumer group by id.
    Group(&'a str),
    /// The cluster.
    Cluster,
    /// A transactional id.
    TransactionalId(&'a str),
}

impl Resource<'_> {
    fn kind_and_name(&self) -> (ResourceType, &str) {
        match *self {
            Resource::Topic(name) => (ResourceType::Topic, name),
            Resource::Group(name) => (ResourceType::Group, name),
            Resource::Cluster => (ResourceType::Cluster, CLUSTER_NAME),
            Resource::TransactionalId(name) => (ResourceType::TransactionalId, name),
        }
    }
}

/// Who asks, from where.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    /// `User:<name>`.
    pub principal: &'a str,
    /// The client's IP address as text.
    pub host: &'a str,
}

/// Why a new binding is refused (INVALID_REQUEST, as Kafka answers).
pub fn validate(binding: &AclRecord) -> Result<(), String> {
    let resource_type = ResourceType::from_code(binding.resource_type as i8);
    match resource_type {
        None | Some(ResourceType::Any) => return Err("invalid resource type".into()),
        Some(_) => {}
    }
    match PatternType::from_code(binding.pattern_type as i8) {
        Some(PatternType::Literal | PatternType::Prefixed) => {}
        _ => return Err("pattern type must be LITERAL or PREFIXED".into()),
    }
    match AclOperation::from_code(binding.operation as i8) {
        None | Some(AclOperation::Any) => return Err("invalid operation".into()),
        Some(_) => {}
    }
    match Permission::from_code(binding.permission as i8) {
        Some(Permission::Allow | Permission::Deny) => {}
        _ => return Err("permission must be ALLOW or DENY".into()),
    }
    if binding.resource_name.is_empty() {
        return Err("resource name must not be empty".into());
    }
    if resource_type == Some(ResourceType::Cluster) && binding.resource_name != CLUSTER_NAME {
        return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
    }
    match binding.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => {
            return Err(format!(
                "principal {:?} is not of the form Type:name",
                binding.principal
            ))
        }
    }
    if binding.host.is_empty() {
        return Err("host must not be empty (use * for any)".into());
    }
    Ok(())
}

/// Whether `binding`'s pattern covers the resource `(kind, name)`.
fn pattern_covers(binding: &AclRecord, kind: ResourceType, name: &str) -> bool {
    if binding.resource_type != kind.code() as u8 {
        return false;
    }
    match PatternType::from_code(binding.pattern_type as i8) {
        Some(PatternType::Literal) => {
            binding.resource_name == name || binding.resource_name == WILDCARD
        }
        Some(PatternType::Prefixed) => name.starts_with(binding.resource_name.as_str()),
        _ => false,
    }
}

fn applies_to(binding: &AclRecord, requester: Requester<'_>) -> bool {
    (binding.principal == requester.principal || binding.principal == WILDCARD_PRINCIPAL)
        && (binding.host == requester.host || binding.host == WILDCARD)
}

/// Whether an ALLOW for `granted` allows `wanted`.
fn allow_implies(granted: u8, wanted: AclOperation) -> bool {
    let Some(granted) = AclOperation::from_code(granted as i8) else {
        return false;
    };
    granted == wanted
        || granted == AclOperation::All
        || (wanted == AclOperation::Describe
            && matches!(
                granted,
                AclOperation::Read
                    | AclOperation::Write
                    | AclOperation::Delete
                    | AclOperation::Alter
            ))
        || (wanted == AclOperation::DescribeConfigs && granted == AclOperation::AlterConfigs)
}

/// What the authorizer answers for a resource no ACL covers, for any
/// principal (Kafka's `allow.everyone.if.no.acl.found`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WithoutAcls {
    /// Only super users may use it (Kafka's default).
    #[default]
    Deny,
    /// Everyone may use it.
    Allow,
}

/// Kafka's decision for `requester` doing `operation` on `resource`, given
/// every binding (super users are decided by the caller). A resource that
/// no binding covers, whatever its principal, gets `without_acls`.
pub fn decide<'a>(
    bindings: impl IntoIterator<Item = &'a AclRecord> + Clone,
    requester: Requester<'_>,
    operation: AclOperation,
    resource: Resource<'_>,
    without_acls: WithoutAcls,
) -> bool {
    let (kind, name) = resource.kind_and_name();
    if without_acls == WithoutAcls::Allow
        && !bindings
            .clone()
            .into_iter()
            .any(|binding| pattern_covers(binding, kind, name))
    {
        return true;
    }
    let applying = bindings
        .into_iter()
        .filter(|b| pattern_covers(b, kind, name) && applies_to(b, requester));
    let mut allowed = false;
    for binding in applying {
        let all_or_same = binding.operation == operation.code() as u8
            || binding.operation == AclOperation::All.code() as u8;
        match Permission::from_code(binding.permission as i8) {
            Some(Permission::Deny) if all_or_same => return false,
            Some(Permission::Allow) if allow_implies(binding.operation, operation) => {
                allowed = true
            }
            _ => {}
        }
    }
    allowed
}

/// Whether `requester` holds an ALLOW for `operation` on any resource of
/// `kind` (Kafka's `authorizeByResourceType`, used for idempotent producers
/// that may write some topic). Denies on literal resources do not take it
/// away; a DENY on every resource of the kind (`*`, or prefix "") does.
/// With `without_acls` Allow, a kind whose names are not all covered by
/// some binding (of any principal) has resources anyone may use.
pub fn allowed_on_some<'a>(
    bindings: impl IntoIterator<Item = &'a AclRecord> + Clone,
    requester: Requester<'_>,
    operation: AclOperation,
    kind: ResourceType,
    without_acls: WithoutAcls,
) -> bool {
    let of_kind = |b: &&AclRecord| b.resource_type == kind.code() as u8 && applies_to(b, requester);
    let everything_denied = bindings.clone().into_iter().filter(of_kind).any(|b| {
        b.permission == Permission::Deny.code() as u8
            && (b.operation == operation.code() as u8
                || b.operation == AclOperation::All.code() as u8)
            && covers_every_name(b)
    });
    let some_name_uncovered = || {
        !bindings
            .clone()
            .into_iter()
            .any(|b| b.resource_type == kind.code() as u8 && covers_every_name(b))
    };
    !everything_denied
        && ((without_acls == WithoutAcls::Allow && some_name_uncovered())
            || bindings.clone().into_iter().filter(of_kind).any(|b| {
                b.permission == Permission::Allow.code() as u8
                    && allow_implies(b.operation, operation)
            }))
}

/// Whether `binding`'s pattern covers every name of its kind: `*`, or the
/// prefix "".
fn covers_every_name(binding: &AclRecord) -> bool {
    (binding.pattern_type == PatternType::Literal.code() as u8 && binding.resource_name == WILDCARD)
        || (binding.pattern_type == PatternType::Prefixed.code() as u8
            && binding.resource_name.is_empty())
}

/// A DescribeAcls/DeleteAcls filter, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    /// Resource type, or ANY.
    pub resource_type: i8,
    /// Resource name, or any.
    pub resource_name: Option<String>,
    /// Pattern type, ANY or MATCH.
    pub pattern_type: i8,
    /// Principal, or any.
    pub principal: Option<String>,
    /// Host, or any.
    pub host: Option<String>,
    /// Operation, or ANY.
    pub operation: i8,
    /// Permission, or ANY.
    pub permission: i8,
}

impl AclFilter {
    /// Why the filter is unusable (INVALID_REQUEST).
    pub fn validate(&self) -> Result<(), String> {
        if ResourceType::from_code(self.resource_type).is_none() {
            return Err("invalid resource type filter".into());
        }
        if PatternType::from_code(self.pattern_type).is_none() {
            return Err("invalid pattern type filter".into());
        }
        if AclOperation::from_code(self.operation).is_none() {
            return Err("invalid operation filter".into());
        }
        if Permission::from_code(self.permission).is_none() {
            return Err("invalid permission filter".into());
        }
        Ok(())
    }

    /// Whether `binding` passes the filter.
    pub fn matches(&self, binding: &AclRecord) -> bool {
        let any = |code: i8| code == ResourceType::Any.code();
        if !any(self.resource_type) && binding.resource_type != self.resource_type as u8 {
            return false;
        }
        let name_ok = match (
            PatternType::from_code(self.pattern_type),
            &self.resource_name,
        ) {
            (Some(PatternType::Match), Some(name)) => {
                let kind = ResourceType::from_code(binding.resource_type as i8);
                kind.is_some_and(|kind| pattern_covers(binding, kind, name))
            }
            (Some(PatternType::Match | PatternType::Any), None) => true,
            (Some(PatternType::Any), Some(name)) => &binding.resource_name == name,
            (Some(pattern), name) => {
                binding.pattern_type == pattern.code() as u8
                    && name
                        .as_ref()
                        .is_none_or(|name| &binding.resource_name == name)
            }
            (None, _) => false,
        };
        name_ok
            && self
                .principal
                .as_ref()
                .is_none_or(|principal| &binding.principal == principal)
            && self.host.as_ref().is_none_or(|host| &binding.host == host)
            && (self.operation == AclOperation::Any.code()
                || binding.operation == self.operation as u8)
            && (self.permission == Permission::Any.code()
                || binding.permission == self.permission as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: AclOperation,
        permission: Permission,
    ) -> AclRecord {
        AclRecord {
            resource_type: kind.code() as u8,
            resource_name: name.into(),
            pattern_type: pattern.code() as u8,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: operation.code() as u8,
            permission: permission.code() as u8,
        }
    }

    const ALICE: Requester<'static> = Requester {
        principal: "User:alice",
        host: "127.0.0.1",
    };

    /// The decision with Kafka's default for resources without ACLs.
    fn decide<'a>(
        bindings: impl IntoIterator<Item = &'a AclRecord> + Clone,
        requester: Requester<'_>,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> bool {
        super::decide(bindings, requester, operation, resource, WithoutAcls::Deny)
    }

    /// Whether some resource is allowed, with Kafka's default for
    /// resources without ACLs.
    fn allowed_on_some<'a>(
        bindings: impl IntoIterator<Item = &'a AclRecord> + Clone,
        requester: Requester<'_>,
        operation: AclOperation,
        kind: ResourceType,
    ) -> bool {
        super::allowed_on_some(bindings, requester, operation, kind, WithoutAcls::Deny)
    }

    #[test]
    fn allow_without_acls_allows_only_resources_no_binding_covers() {
        let acls = [binding(
            ResourceType::Topic,
            "orders",
            PatternType::Prefixed,
            "User:bob",
            AclOperation::Read,
            Permission::Allow,
        )];
        let allow = WithoutAcls::Allow;
        let read = |topic| {
            super::decide(
                &acls,
                ALICE,
                AclOperation::Read,
                Resource::Topic(topic),
                allow,
            )
        };
        assert!(read("payments"), "no binding covers it");
        assert!(
            !read("orders-eu"),
            "bob's binding covers it, and it is not alice's"
        );
        assert!(
            super::decide(
                &acls,
                ALICE,
                AclOperation::Read,
                Resource::Group("orders"),
                allow
            ),
            "a topic binding says nothing about a group"
        );
        assert!(super::decide(
            &[],
            ALICE,
            AclOperation::Alter,
            Resource::Cluster,
            allow
        ));
        // A DENY covers the resource like any binding.
        let denied = [binding(
            ResourceType::Topic,
            "*",
            PatternType::Literal,
            "User:bob",
            AclOperation::Write,
            Permission::Deny,
        )];
        assert!(!super::decide(
            &denied,
            ALICE,
            AclOperation::Read,
            Resource::Topic("x"),
            allow
        ));
    }

    #[test]
    fn allow_without_acls_lets_idempotent_producers_in_while_some_topic_has_no_binding() {
        let allow = WithoutAcls::Allow;
        let some_write = |acls: &[AclRecord]| {
            super::allowed_on_some(acls, ALICE, AclOperation::Write, ResourceType::Topic, allow)
        };
        assert!(some_write(&[]));
        let bob_everywhere = [binding(
            ResourceType::Topic,
            "",
            PatternType::Prefixed,
            "User:bob",
            AclOperation::Write,
            Permission::Allow,
        )];
        assert!(
            !some_write(&bob_everywhere),
            "every topic has a binding, none alice's"
        );
        let alice_denied_everywhere = [binding(
            ResourceType::Topic,
            "*",
            PatternType::Literal,
            "User:alice",
            AclOperation::Write,
            Permission::Deny,
        )];
        assert!(!some_write(&alice_denied_everywhere));
    }

    #[test]
    fn no_binding_means_denied() {
        assert!(!decide(
            &[],
            ALICE,
            AclOperation::Read,
            Resource::Topic("t")
        ));
    }

    #[test]
    fn literal_bindings_match_their_name_or_the_wildcard() {
        let acls = [binding(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:alice",
            AclOperation::Write,
            Permission::Allow,
        )];
        assert!(decide(
            &acls,
            ALICE,
            AclOperation::Write,
            Resource::Topic("orders")
        ));
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Write,
            Resource::Topic("orders2")
        ));
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Topic("orders")
        ));
        // A topic binding says nothing about a group of the same name.
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Write,
            Resource::Group("orders")
        ));
        let wildcard = [binding(
            ResourceType::Topic,
            "*",
            PatternType::Literal,
            "User:*",
            AclOperation::Read,
            Permission::Allow,
        )];
        assert!(decide(
            &wildcard,
            ALICE,
            AclOperation::Read,
            Resource::Topic("any")
        ));
    }

    #[test]
    fn prefixed_bindings_match_names_that_start_with_them() {
        let acls = [binding(
            ResourceType::Group,
            "billing-",
            PatternType::Prefixed,
            "User:alice",
            AclOperation::Read,
            Permission::Allow,
        )];
        assert!(decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Group("billing-eu")
        ));
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Group("billing")
        ));
        // "*" is no wildcard for prefixed patterns.
        let star = [binding(
            ResourceType::Group,
            "*",
            PatternType::Prefixed,
            "User:alice",
            AclOperation::Read,
            Permission::Allow,
        )];
        assert!(!decide(
            &star,
            ALICE,
            AclOperation::Read,
            Resource::Group("g")
        ));
    }

    #[test]
    fn deny_wins_over_allow() {
        let acls = [
            binding(
                ResourceType::Topic,
                "*",
                PatternType::Literal,
                "User:*",
                AclOperation::All,
                Permission::Allow,
            ),
            binding(
                ResourceType::Topic,
                "secret",
                PatternType::Prefixed,
                "User:alice",
                AclOperation::Read,
                Permission::Deny,
            ),
        ];
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Topic("secret-1")
        ));
        assert!(decide(
            &acls,
            ALICE,
            AclOperation::Write,
            Resource::Topic("secret-1")
        ));
        assert!(decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Topic("public")
        ));
        let bob = Requester {
            principal: "User:bob",
            host: "127.0.0.1",
        };
        assert!(decide(
            &acls,
            bob,
            AclOperation::Read,
            Resource::Topic("secret-1")
        ));
    }

    #[test]
    fn allows_imply_describe_but_denies_do_not_spread() {
        let acls = [
            binding(
                ResourceType::Topic,
                "t",
                PatternType::Literal,
                "User:alice",
                AclOperation::Write,
                Permission::Allow,
            ),
            binding(
                ResourceType::Topic,
                "t",
                PatternType::Literal,
                "User:alice",
                AclOperation::Read,
                Permission::Deny,
            ),
        ];
        assert!(decide(
            &acls,
            ALICE,
            AclOperation::Describe,
            Resource::Topic("t")
        ));
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Read,
            Resource::Topic("t")
        ));
        assert!(!decide(
            &acls,
            ALICE,
            AclOperation::Delete,
            Resource::Topic("t")
        ));
    }

    #[test]
    fn hosts_must_match_unless_wildcard() {
        let mut acl = binding(
            ResourceType::Cluster,
            CLUSTER_NAME,
            PatternType::Literal,
            "User:alice",
            AclOperation::Create,
            Permission::Allow,
        );
        acl.host = "10.1.1.1".into();
        assert!(!decide(
            [&acl],
            ALICE,
            AclOperation::Create,
            Resource::Cluster
        ));
        acl.host = "127.0.0.1".into();
        assert!(decide(
            [&acl],
            ALICE,
            AclOperation::Create,
            Resource::Cluster
        ));
    }

    #[test]
    fn filters_select_as_kafka_describes_them() {
        let literal = binding(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:alice",
            AclOperation::Read,
            Permission::Allow,
        );
        let prefixed = binding(
            ResourceType::Topic,
            "ord",
            PatternType::Prefixed,
            "User:bob",
            AclOperation::Write,
            Permission::Deny,
        );
        let filter = |pattern: PatternType, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic.code(),
            resource_name: name.map(str::to_owned),
            pattern_type: pattern.code(),
            principal: None,
            host: None,
            operation: AclOperation::Any.code(),
            permission: Permission::Any.code(),
        };
        let everything = filter(PatternType::Any, None);
        assert!(everything.matches(&literal) && everything.matches(&prefixed));
        let matching = filter(PatternType::Match, Some("orders"));
        assert!(matching.matches(&literal) && matching.matches(&prefixed));
        let exact = filter(PatternType::Literal, Some("orders"));
        assert!(exact.matches(&literal) && !exact.matches(&prefixed));
        let by_name = filter(PatternType::Any, Some("ord"));
        assert!(!by_name.matches(&literal) && by_name.matches(&prefixed));
        let mut by_principal = everything.clone();
        by_principal.principal = Some("User:bob".into());
        assert!(!by_principal.matches(&literal) && by_principal.matches(&prefixed));
    }

    #[test]
    fn new_bindings_are_validated_as_kafka_does() {
        let good = binding(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:alice",
            AclOperation::Read,
            Permission::Allow,
        );
        assert_eq!(validate(&good), Ok(()));
        let mut bad = good.clone();
        bad.pattern_type = PatternType::Match.code() as u8;
        assert!(validate(&bad).is_err());
        let mut bad = good.clone();
        bad.principal = "alice".into();
        assert!(validate(&bad).is_err());
        let mut bad = good.clone();
        bad.resource_type = ResourceType::Cluster.code() as u8;
        assert!(
            validate(&bad).is_err(),
            "the cluster is named kafka-cluster"
        );
        let mut bad = good;
        bad.operation = AclOperation::Any.code() as u8;
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn some_topic_write_allows_idempotent_producers() {
        let acls = [binding(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:alice",
            AclOperation::Write,
            Permission::Allow,
        )];
        assert!(allowed_on_some(
            &acls,
            ALICE,
            AclOperation::Write,
            ResourceType::Topic
        ));
        assert!(!allowed_on_some(
            &acls,
            ALICE,
            AclOperation::Read,
            ResourceType::Topic
        ));
    }
}
