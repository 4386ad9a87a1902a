//! What CreateAcls, DescribeAcls and DeleteAcls share: the layout of an ACL
//! binding or filter on the wire, the conversion of a wire filter, and the
//! refusal an entry gets when the caller may not act on the cluster or the
//! entry is unusable.

use kafka_protocol::ResponseError;

use crate::shape::{Field, Kind, INT8};

/// One binding (CreateAcls) or filter (DescribeAcls, DeleteAcls): resource
/// type, resource name, pattern type, principal, host, operation,
/// permission.
pub const BINDING: &[Field] = &[
    Field::always(INT8),
    Field::always(Kind::String),
    Field::always(INT8),
    Field::always(Kind::String),
    Field::always(Kind::String),
    Field::always(INT8),
    Field::always(INT8),
];

/// Builds an [`AclFilter`](crate::security::acl::AclFilter) from a wire
/// filter: DescribeAclsRequest and DeleteAclsFilter name their seven fields
/// alike but are different types.
macro_rules! filter_from_wire {
    ($wire:expr) => {{
        let wire = $wire;
        $crate::security::acl::AclFilter {
            resource_type: wire.resource_type_filter,
            resource_name: wire.resource_name_filter.map(|name| name.to_string()),
            pattern_type: wire.pattern_type_filter,
            principal: wire.principal_filter.map(|principal| principal.to_string()),
            host: wire.host_filter.map(|host| host.to_string()),
            operation: wire.operation,
            permission: wire.permission_type,
        }
    }};
}
pub(crate) use filter_from_wire;

/// Why an entry is refused: CLUSTER_AUTHORIZATION_FAILED (31) when the
/// caller may not act on the cluster (checked first, as Kafka does), else
/// INVALID_REQUEST (42) with `check`'s reason; `None` when it may proceed.
pub fn refusal(
    authorized: bool,
    check: impl FnOnce() -> Result<(), String>,
) -> Option<(ResponseError, String)> {
    if !authorized {
        return Some((
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".to_owned(),
        ));
    }
    check()
        .err()
        .map(|why| (ResponseError::InvalidRequest, why))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    #[test]
    fn authorization_is_refused_before_the_entry_is_checked() {
        let checked = std::cell::Cell::new(false);
        let refused = refusal(false, || {
            checked.set(true);
            Err("bad".to_owned())
        });
        assert_eq!(
            refused.map(|(error, _)| error),
            Some(ResponseError::ClusterAuthorizationFailed)
        );
        assert!(!checked.get());
        assert_eq!(
            refusal(true, || Err("unknown operation 99".to_owned())),
            Some((
                ResponseError::InvalidRequest,
                "unknown operation 99".to_owned()
            ))
        );
        assert_eq!(refusal(true, || Ok(())), None);
    }

    #[test]
    fn a_wire_filter_keeps_every_field() {
        let mut wire = DeleteAclsFilter::default();
        wire.resource_type_filter = 2;
        wire.resource_name_filter = Some(StrBytes::from_static_str("orders"));
        wire.pattern_type_filter = 3;
        wire.principal_filter = Some(StrBytes::from_static_str("User:alice"));
        wire.host_filter = None;
        wire.operation = 3;
        wire.permission_type = 1;
        let filter = filter_from_wire!(wire);
        assert_eq!(filter.resource_type, 2);
        assert_eq!(filter.resource_name.as_deref(), Some("orders"));
        assert_eq!(filter.pattern_type, 3);
        assert_eq!(filter.principal.as_deref(), Some("User:alice"));
        assert_eq!(filter.host, None);
        assert_eq!(filter.operation, 3);
        assert_eq!(filter.permission, 1);
    }
}
