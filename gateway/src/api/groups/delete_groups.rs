//! DeleteGroups (key 42): removes groups without members, and their
//! committed offsets.
//!
//! Served v0 to v2. Per group, as Kafka: NOT_COORDINATOR (16) from a
//! gateway that does not coordinate it, NON_EMPTY_GROUP (68) while it has
//! members, GROUP_ID_NOT_FOUND (69) when neither a live group nor committed
//! offsets exist. The offsets are removed by a commit of offset -1 for each
//! (a deletion, see the tailer in [`crate::cluster`]), ordered through the
//! log like any commit, so every gateway forgets them in the same order.

use std::sync::Arc;

use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::errors::commit_error;
use crate::api_support::timeouts::COMMIT_TIMEOUT;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DeleteGroups,
    name: "DeleteGroups",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::StringArray)];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

async fn handle(ctx: Arc<GatewayContext>, request: ApiRequest) -> Result<Reply, CloseReason> {
    let body: DeleteGroupsRequest = request.decode_bounded(REQUEST)?;
    let mut response = DeleteGroupsResponse::default();
    for group_id in &body.groups_names {
        let error = if request.authorized(&ctx, AclOperation::Delete, Resource::Group(group_id)) {
            delete(&ctx, group_id).await
        } else {
            Some(ResponseError::GroupAuthorizationFailed)
        };
        let mut result = DeletableGroupResult::default();
        result.group_id = group_id.clone();
        result.error_code = error.map_or(0, |e| e.code());
        telemetry::record_error_code(ENTRY.name, result.error_code);
        response.results.push(result);
    }
    request.respond(&response)
}

/// Deletes one group; its error, if any.
pub async fn delete(ctx: &GatewayContext, group_id: &str) -> Option<ResponseError> {
    if !groups::is_coordinator(ctx.log.as_ref(), group_id) {
        return Some(ResponseError::NotCoordinator);
    }
    let was_live = match ctx.groups.remove_if_empty(group_id) {
        Ok(was_live) => was_live,
        Err(error) => return Some(error),
    };
    let committed = ctx.log.committed_offsets(group_id);
    if committed.is_empty() {
        return (!was_live).then_some(ResponseError::GroupIdNotFound);
    }
    let record = ControlRecord::CommitOffsets {
        group: group_id.to_owned(),
        offsets: committed
            .into_keys()
            .map(|stream| CommittedOffset {
                stream,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            })
            .collect(),
    };
    commit_error(&ctx.log.control(&record, COMMIT_TIMEOUT).await)
}
