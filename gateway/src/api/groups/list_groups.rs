//! ListGroups (key 16): the groups this gateway coordinates.
//!
//! Served v0 to v5. As in Kafka, each broker lists the groups it
//! coordinates, and admin clients ask every broker: here, the groups live
//! in this gateway's memory plus those known only by committed offsets
//! (state `Empty`) whose coordinator this gateway is. v4 filters by state
//! (case-insensitive), v5 by type: every group is `classic`.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ListGroups,
    name: "ListGroups",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::since(Kind::StringArray, 4),
    Field::since(Kind::StringArray, 5),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: ListGroupsRequest = request.decode_bounded(REQUEST)?;
    // (protocol type, state, group type) by group id.
    let mut listed: HashMap<String, (String, &'static str, &'static str)> = ctx
        .groups
        .list()
        .into_iter()
        .map(|(id, protocol_type, state)| (id, (protocol_type, state, "classic")))
        .collect();
    for (id, state) in ctx.groups.consumer_group_list() {
        listed.insert(id, ("consumer".to_owned(), state, "consumer"));
    }
    for group in ctx.log.offset_groups() {
        if !listed.contains_key(&group) && groups::is_coordinator(ctx.log.as_ref(), &group) {
            listed.insert(group, ("consumer".to_owned(), "Empty", "classic"));
        }
    }
    let states: Vec<String> = body
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = body
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut response = ListGroupsResponse::default();
    // Kafka lists every group to DESCRIBE on the cluster, else only the
    // groups the principal may DESCRIBE.
    let all_visible = request.authorized(ctx, AclOperation::Describe, Resource::Cluster);
    let mut groups: Vec<ListedGroup> = listed
        .into_iter()
        .filter(|(id, _)| {
            all_visible || request.authorized(ctx, AclOperation::Describe, Resource::Group(id))
        })
        .filter(|(_, (_, state, _))| {
            states.is_empty() || states.contains(&state.to_ascii_lowercase())
        })
        .filter(|(_, (_, _, kind))| types.is_empty() || types.iter().any(|t| t == kind))
        .map(|(id, (protocol_type, state, kind))| {
            let mut group = ListedGroup::default();
            group.group_id = GroupId(StrBytes::from_string(id));
            group.protocol_type = StrBytes::from_string(protocol_type);
            if request.version >= 4 {
                group.group_state = StrBytes::from_static_str(state);
            }
            if request.version >= 5 {
                group.group_type = StrBytes::from_static_str(kind);
            }
            group
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    response.groups = groups;
    request.respond(&response)
}
