//! AlterUserScramCredentials (key 51, KIP-554): creates, replaces and
//! deletes users' SCRAM credentials.
//!
//! An upsertion carries the salt, the iteration count and
//! `SaltedPassword = Hi(password, salt, iterations)`, computed by the
//! client; the gateway keeps only RFC 5802's StoredKey and ServerKey
//! derived from it. Each change is a control record ordered through the
//! log ([`ControlRecord::UpsertScramCredential`],
//! [`ControlRecord::DeleteScramCredential`]) and answered once this
//! gateway applied it, so every gateway knows the user.
//!
//! Errors, per user, as Kafka gives them: ALTER on the cluster is required
//! (CLUSTER_AUTHORIZATION_FAILED, 31); an empty user name, fewer than 4096
//! or more than 16384 iterations, or an empty salt or salted password is
//! UNACCEPTABLE_CREDENTIAL (93); an unknown mechanism
//! UNSUPPORTED_SASL_MECHANISM (33); the same user and mechanism altered
//! twice in one request DUPLICATE_RESOURCE (92); deleting a credential that does not exist
//! RESOURCE_NOT_FOUND (91).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{
    ApiEntry, ApiRequest, HandlerFuture, Reply, Responder, ResponseFrame, VersionPolicy,
};
use crate::error::CloseReason;
use crate::security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::security::{order_control, AclOperation, Resource, SecurityStore};
use crate::shape::{Field, Kind, INT32, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::AlterUserScramCredentials,
    name: "AlterUserScramCredentials",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const DELETION: &[Field] = &[Field::always(Kind::String), Field::always(INT8)];
const UPSERTION: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT8),
    Field::always(INT32),
    Field::always(Kind::Bytes),
    Field::always(Kind::Bytes),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::Array(DELETION)),
    Field::always(Kind::Array(UPSERTION)),
];

type Refusal = (ResponseError, String);

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

/// Checks every deletion, then every upsertion, in the ordered part; the
/// deferred part orders each user's records and answers per user.
async fn handle(ctx: Arc<GatewayContext>, request: ApiRequest) -> Result<Reply, CloseReason> {
    let body: AlterUserScramCredentialsRequest = request.decode_bounded(REQUEST)?;
    let authorized = request.authorized(&ctx, AclOperation::Alter, Resource::Cluster);
    let store = ctx.log.security();
    let times_named = times_named(&body);
    let mut outcomes = Outcomes::default();
    for deletion in &body.deletions {
        let user = deletion.name.to_string();
        let outcome = common_checks(authorized, &user, &times_named, deletion.mechanism)
            .and_then(|mechanism| delete(&store, &user, mechanism));
        outcomes.note(&user, outcome);
    }
    for upsertion in &body.upsertions {
        let user = upsertion.name.to_string();
        let outcome = common_checks(authorized, &user, &times_named, upsertion.mechanism)
            .and_then(|mechanism| upsert(upsertion, &user, mechanism));
        outcomes.note(&user, outcome);
    }
    let responder = request.responder();
    Ok(Reply::deferred(async move {
        answer(&ctx, responder, outcomes).await.map(Some)
    }))
}

/// How often each (user, mechanism) pair is named, deletions and
/// upsertions together.
fn times_named(body: &AlterUserScramCredentialsRequest) -> HashMap<(String, i8), usize> {
    let mut times_named: HashMap<(String, i8), usize> = HashMap::new();
    let pairs = body
        .deletions
        .iter()
        .map(|d| (&d.name, d.mechanism))
        .chain(body.upsertions.iter().map(|u| (&u.name, u.mechanism)));
    for (user, mechanism) in pairs {
        *times_named
            .entry((user.to_string(), mechanism))
            .or_default() += 1;
    }
    times_named
}

/// Per user, in request order: the first refusal, or the records.
#[derive(Default)]
struct Outcomes {
    by_user: BTreeMap<String, Result<Vec<ControlRecord>, Refusal>>,
    order: Vec<String>,
}

impl Outcomes {
    fn note(&mut self, user: &str, outcome: Result<ControlRecord, Refusal>) {
        if !self.by_user.contains_key(user) {
            self.order.push(user.to_owned());
        }
        let entry = self
            .by_user
            .entry(user.to_owned())
            .or_insert(Ok(Vec::new()));
        match (entry, outcome) {
            (Ok(records), Ok(record)) => records.push(record),
            (entry @ Ok(_), Err(refusal)) => *entry = Err(refusal),
            (Err(_), _) => {}
        }
    }
}

/// The record deleting `user`'s credential, which must exist.
fn delete(
    store: &SecurityStore,
    user: &str,
    mechanism: ScramMechanism,
) -> Result<ControlRecord, Refusal> {
    if store.credential(user, mechanism).is_none() {
        return Err((
            ResponseError::ResourceNotFound,
            format!("Attempt to delete a user credential that does not exist: {user}"),
        ));
    }
    Ok(ControlRecord::DeleteScramCredential {
        user: user.to_owned(),
        mechanism: mechanism.code() as u8,
    })
}

/// The record storing the credential an upsertion describes, if acceptable.
fn upsert(
    upsertion: &ScramCredentialUpsertion,
    user: &str,
    mechanism: ScramMechanism,
) -> Result<ControlRecord, Refusal> {
    let iterations = u32::try_from(upsertion.iterations).unwrap_or(0);
    if iterations < MIN_ITERATIONS {
        return Err(unacceptable(format!("Too few iterations: {iterations}")));
    }
    if iterations > MAX_ITERATIONS {
        return Err(unacceptable(format!("Too many iterations: {iterations}")));
    }
    if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
        return Err(unacceptable(
            "Salt and salted password must not be empty".into(),
        ));
    }
    let credential = ScramCredential::from_salted_password(
        mechanism,
        upsertion.salt.to_vec(),
        iterations,
        &upsertion.salted_password,
    );
    Ok(ControlRecord::UpsertScramCredential {
        user: user.to_owned(),
        mechanism: mechanism.code() as u8,
        iterations,
        salt: credential.salt,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    })
}

/// Orders each user's records (stopping at the first failure) and answers
/// per user, in request order.
async fn answer(
    ctx: &GatewayContext,
    responder: Responder,
    mut outcomes: Outcomes,
) -> Result<ResponseFrame, CloseReason> {
    let mut response = AlterUserScramCredentialsResponse::default();
    for user in outcomes.order {
        let mut result = AlterUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(user.clone());
        let outcome = outcomes.by_user.remove(&user).unwrap_or(Ok(Vec::new()));
        let refusal = match outcome {
            Err(refusal) => Some(refusal),
            Ok(records) => {
                let mut failed = None;
                for record in records {
                    if let Some(error) = order_control(ctx, &record).await {
                        failed = Some((error, error.to_string()));
                        break;
                    }
                }
                failed
            }
        };
        if let Some((error, message)) = refusal {
            result.error_code = error.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        telemetry::record_error_code(ENTRY.name, result.error_code);
        response.results.push(result);
    }
    responder.frame(&response)
}

fn unacceptable(message: String) -> Refusal {
    (ResponseError::UnacceptableCredential, message)
}

fn common_checks(
    authorized: bool,
    user: &str,
    times_named: &HashMap<(String, i8), usize>,
    mechanism: i8,
) -> Result<ScramMechanism, Refusal> {
    if !authorized {
        return Err((
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        ));
    }
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty".into()));
    }
    if times_named
        .get(&(user.to_owned(), mechanism))
        .copied()
        .unwrap_or(0)
        > 1
    {
        return Err((
            ResponseError::DuplicateResource,
            format!("A user credential cannot be altered twice in the same request: {user}"),
        ));
    }
    ScramMechanism::from_code(mechanism).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism code {mechanism}"),
        )
    })
}
