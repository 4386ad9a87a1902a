//! Users and ACLs as this gateway applied them from the order log.
//!
//! Every gateway of a cluster applies the same security control records in
//! the same order (they travel through the log like offset commits), and a
//! restarted gateway reapplies them from its segments, so all gateways
//! agree and the state survives restarts. The store is in-memory and read
//! on every authorization; it is written only by the order-log tailer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use crate::cluster::{control_in_region, control_in_segments};
use cxlkafka_log::layout::OrderEntry;
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::{SegmentFiles, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::control::{tag, AclRecord, ControlRecord};

use super::acl::{self, AclFilter, AclOperation, Requester, Resource, ResourceType, WithoutAcls};
use super::scram::{ScramCredential, ScramMechanism};
use crate::telemetry;

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclRecord>,
}

/// The users (SCRAM credentials) and ACL bindings of the cluster.
#[derive(Default)]
pub struct SecurityStore {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for SecurityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("SecurityStore")
            .field("users", &inner.users.len())
            .field("acls", &inner.acls.len())
            .finish()
    }
}

/// Whether an order-log control tag is one of the security records.
pub fn is_security_tag(control_tag: u16) -> bool {
    u8::try_from(control_tag).is_ok_and(|control_tag| {
        matches!(
            control_tag,
            tag::UPSERT_SCRAM_CREDENTIAL
                | tag::DELETE_SCRAM_CREDENTIAL
                | tag::CREATE_ACLS
                | tag::DELETE_ACLS
        )
    })
}

impl SecurityStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a security control record; other records are ignored.
    pub fn apply(&self, record: &ControlRecord) {
        match record {
            ControlRecord::UpsertScramCredential {
                user,
                mechanism,
                iterations,
                salt,
                stored_key,
                server_key,
            } => {
                let Some(mechanism) = i8::try_from(*mechanism)
                    .ok()
                    .and_then(ScramMechanism::from_code)
                else {
                    tracing::warn!(user, mechanism, "credential of an unknown mechanism");
                    return;
                };
                let credential = ScramCredential {
                    mechanism,
                    iterations: *iterations,
                    salt: salt.clone(),
                    stored_key: stored_key.clone(),
                    server_key: server_key.clone(),
                };
                self.write()
                    .users
                    .entry(user.clone())
                    .or_default()
                    .insert(mechanism, credential);
            }
            ControlRecord::DeleteScramCredential { user, mechanism } => {
                let mut inner = self.write();
                let Some(credentials) = inner.users.get_mut(user) else {
                    return;
                };
                if let Some(mechanism) = i8::try_from(*mechanism)
                    .ok()
                    .and_then(ScramMechanism::from_code)
                {
                    credentials.remove(&mechanism);
                }
                if credentials.is_empty() {
                    inner.users.remove(user);
                }
            }
            ControlRecord::CreateAcls { acls } => self.write().acls.extend(acls.iter().cloned()),
            ControlRecord::DeleteAcls { acls } => {
                let mut inner = self.write();
                for binding in acls {
                    inner.acls.remove(binding);
                }
            }
            _ => {}
        }
    }

    /// Applies the security record of an order-log entry, reading its bytes
    /// from the region (the tailer's path).
    pub fn apply_order_entry<B: MemoryBackend>(&self, region: &Region<B>, entry: &OrderEntry) {
        match control_in_region(region, entry) {
            Some(record) => self.apply(&record),
            None => {
                // Recycled before this gateway read it (it lagged a whole
                // arena behind): the change is missing here until restart
                // reloads it from the segments.
                metrics::counter!(telemetry::SECURITY_RECORDS_LOST_TOTAL).increment(1);
                tracing::warn!(
                    sequence = entry.commit,
                    "user or ACL change no longer readable from the region"
                );
            }
        }
    }

    /// Applies the security record of an entry read back from this
    /// gateway's segments at start.
    pub fn apply_stored(&self, files: &SegmentFiles, stored: &StoredEntry) {
        match control_in_segments(files, stored) {
            Some(record) => self.apply(&record),
            None => tracing::warn!(
                sequence = stored.header.sequence,
                "user or ACL change in the segments is unreadable"
            ),
        }
    }

    /// A user's credential for one mechanism.
    pub fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.read()
            .users
            .get(user)
            .and_then(|credentials| credentials.get(&mechanism))
            .cloned()
    }

    /// Every credential of a user.
    pub fn credentials(&self, user: &str) -> Vec<ScramCredential> {
        self.read()
            .users
            .get(user)
            .map(|credentials| credentials.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every user with at least one credential, sorted.
    pub fn users(&self) -> Vec<String> {
        self.read().users.keys().cloned().collect()
    }

    /// Bindings passing `filter`, sorted.
    pub fn acls_matching(&self, filter: &AclFilter) -> Vec<AclRecord> {
        self.read()
            .acls
            .iter()
            .filter(|binding| filter.matches(binding))
            .cloned()
            .collect()
    }

    /// Whether the binding exists.
    pub fn has_acl(&self, binding: &AclRecord) -> bool {
        self.read().acls.contains(binding)
    }

    /// The ACL decision for a non-super user.
    pub fn decide(
        &self,
        requester: Requester<'_>,
        operation: AclOperation,
        resource: Resource<'_>,
        without_acls: WithoutAcls,
    ) -> bool {
        acl::decide(
            &self.read().acls,
            requester,
            operation,
            resource,
            without_acls,
        )
    }

    /// Whether the requester may do `operation` on some resource of `kind`.
    pub fn allowed_on_some(
        &self,
        requester: Requester<'_>,
        operation: AclOperation,
        kind: ResourceType,
        without_acls: WithoutAcls,
    ) -> bool {
        acl::allowed_on_some(&self.read().acls, requester, operation, kind, without_acls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_replaced_and_deleted_per_mechanism() {
        let store = SecurityStore::default();
        let upsert = |iterations| ControlRecord::UpsertScramCredential {
            user: "alice".into(),
            mechanism: 1,
            iterations,
            salt: vec![1],
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
        };
        store.apply(&upsert(4096));
        store.apply(&upsert(8192));
        let credential = store
            .credential("alice", ScramMechanism::Sha256)
            .expect("stored");
        assert_eq!(credential.iterations, 8192);
        assert!(store.credential("alice", ScramMechanism::Sha512).is_none());
        store.apply(&ControlRecord::DeleteScramCredential {
            user: "alice".into(),
            mechanism: 1,
        });
        assert!(store.users().is_empty());
    }

    #[test]
    fn acls_are_a_set() {
        let store = SecurityStore::default();
        let binding = AclRecord {
            resource_type: 2,
            resource_name: "t".into(),
            pattern_type: 3,
            principal: "User:a".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        let create = ControlRecord::CreateAcls {
            acls: vec![binding.clone(), binding.clone()],
        };
        store.apply(&create);
        assert!(store.has_acl(&binding));
        let requester = Requester {
            principal: "User:a",
            host: "::1",
        };
        assert!(store.decide(
            requester,
            AclOperation::Read,
            Resource::Topic("t"),
            WithoutAcls::Deny
        ));
        store.apply(&ControlRecord::DeleteAcls {
            acls: vec![binding.clone()],
        });
        assert!(!store.has_acl(&binding));
        assert!(!store.decide(
            requester,
            AclOperation::Read,
            Resource::Topic("t"),
            WithoutAcls::Deny
        ));
    }

    #[test]
    fn only_security_tags_are_security_tags() {
        assert!(is_security_tag(u16::from(tag::CREATE_ACLS)));
        assert!(is_security_tag(u16::from(tag::UPSERT_SCRAM_CREDENTIAL)));
        assert!(!is_security_tag(u16::from(tag::COMMIT_OFFSETS)));
        assert!(!is_security_tag(0x1_00 | u16::from(tag::CREATE_ACLS)));
    }
}
