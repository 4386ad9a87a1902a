//! What OffsetCommit and TxnOffsetCommit share: each asked partition
//! resolved to its stream and checked (topic READ, the partition exists,
//! the metadata fits), the offsets to order, and the answer of every
//! partition in request order.

use cxlkafka_sequencer::control::CommittedOffset;
use kafka_protocol::messages::TopicName;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::ApiRequest;
use crate::security::{AclOperation, Resource};

/// Kafka's default `offset.metadata.max.bytes`.
pub const MAX_METADATA_BYTES: usize = 4096;

/// One partition's offset as a request asks to commit it.
#[derive(Clone, Copy, Debug)]
pub struct AskedOffset<'a> {
    /// The partition.
    pub partition_index: i32,
    /// The offset to commit.
    pub offset: i64,
    /// -1 where the request version carries none.
    pub leader_epoch: i32,
    /// The client's metadata string ("" for null).
    pub metadata: &'a str,
}

/// The partitions of a commit request, checked.
#[derive(Debug, Default)]
pub struct CommitPlan {
    /// (topic index, partition index, error) for every partition asked.
    pub answers: Vec<(usize, i32, Option<ResponseError>)>,
    /// The offsets to order, for the partitions whose answer is none yet.
    pub offsets: Vec<CommittedOffset>,
    /// Where in `answers` each of `offsets` is answered.
    committed_at: Vec<usize>,
}

impl CommitPlan {
    /// Checks every partition of `topics`; with `request_error`, every one
    /// is answered with it and nothing is to be ordered.
    pub fn new<'a>(
        ctx: &GatewayContext,
        request: &ApiRequest,
        request_error: Option<ResponseError>,
        topics: impl IntoIterator<Item = (&'a TopicName, Vec<AskedOffset<'a>>)>,
    ) -> Self {
        let mut plan = CommitPlan::default();
        for (t, (name, partitions)) in topics.into_iter().enumerate() {
            let known = ctx.log.topic(name);
            let readable = request.authorized(ctx, AclOperation::Read, Resource::Topic(name));
            for asked in partitions {
                let stream = known.as_ref().and_then(|known| {
                    u32::try_from(asked.partition_index)
                        .ok()
                        .and_then(|index| known.stream(index))
                });
                let error = match (request_error, stream) {
                    (Some(error), _) => Some(error),
                    (None, _) if !readable => Some(ResponseError::TopicAuthorizationFailed),
                    (None, None) => Some(ResponseError::UnknownTopicOrPartition),
                    (None, Some(_)) if asked.metadata.len() > MAX_METADATA_BYTES => {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    }
                    (None, Some(stream)) => {
                        plan.committed_at.push(plan.answers.len());
                        plan.offsets.push(CommittedOffset {
                            stream,
                            offset: asked.offset,
                            leader_epoch: asked.leader_epoch,
                            metadata: asked.metadata.to_owned(),
                        });
                        None
                    }
                };
                plan.answers.push((t, asked.partition_index, error));
            }
        }
        plan
    }

    /// The ordering of the offsets failed: their partitions get `error`.
    pub fn fail_ordered(&mut self, error: ResponseError) {
        for &at in &self.committed_at {
            if let Some(answer) = self.answers.get_mut(at) {
                answer.2 = Some(error);
            }
        }
    }
}
