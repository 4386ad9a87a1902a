//! The transaction coordinator: the steps of Kafka's
//! `TransactionCoordinator` over the transaction table every gateway keeps
//! ([`super::store`]). Each step reads the id's latest state, checks the
//! producer, and writes the next state as a [`TransactionRecord`] through
//! the log; the step took effect when this gateway applied it (the record
//! names the state it follows, so a step of another coordinator that came
//! first makes it void: NOT_COORDINATOR, and the client looks again).
//!
//! Steps of one id run one at a time on this gateway (a lock per id).
//!
//! Ending a transaction: PREPARE_COMMIT (or PREPARE_ABORT) is written
//! first; from then on the outcome is decided, whatever crashes. Then a
//! marker is written into every partition, and COMPLETE_COMMIT (or
//! COMPLETE_ABORT) with each marker's offset. Read_committed consumers see
//! the transaction's records in all its partitions from the one global
//! sequence of that last record: until it is applied, every partition's
//! last stable offset stays at or below the transaction's first offset
//! there. A coordinator that dies between the two leaves the prepared
//! state in the log; the next coordinator of the id (any gateway, by the
//! same hash as groups) finds it on its next tick and writes the markers
//! again: a second marker is harmless, as in Kafka.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cxlkafka_sequencer::control::{txn_state, ControlRecord, TransactionRecord, TxnPartition};
use cxlkafka_sequencer::status;
use kafka_protocol::ResponseError;

use super::markers::marker_batch;
use super::store::Transaction;
use crate::api_support::errors::{allocation_error, status_error};
use crate::cluster::{AppendBatch, ClusterLog};
use crate::groups;
use crate::telemetry;

/// Kafka's default `transaction.max.timeout.ms` (15 minutes).
pub const DEFAULT_MAX_TIMEOUT_MS: i32 = 900_000;
/// How often a coordinator looks for transactions past their timeout and
/// for prepared ones a dead coordinator left (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s).
const TICK: Duration = Duration::from_secs(1);
/// Longest wait for one record or marker to be ordered.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the transaction coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// Largest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: DEFAULT_MAX_TIMEOUT_MS,
        }
    }
}

/// The coordinator of the transactional ids that hash to this gateway.
#[derive(Debug, Default)]
pub struct TransactionCoordinator {
    config: TxnConfig,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    ticker_started: AtomicBool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Kafka's check of the producer a request names against the id's state.
fn check_producer(
    current: &Transaction,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), ResponseError> {
    if current.record.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if current.record.producer_epoch != producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TransactionCoordinator {
    /// A coordinator with these settings.
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Its settings.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    fn lock_of(&self, transactional_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(transactional_id.to_string()).or_default())
    }

    /// Whether this gateway coordinates `transactional_id`: NOT_COORDINATOR
    /// otherwise.
    pub fn check_coordinator(
        log: &dyn ClusterLog,
        transactional_id: &str,
    ) -> Result<(), ResponseError> {
        if groups::is_coordinator(log, transactional_id) {
            Ok(())
        } else {
            Err(ResponseError::NotCoordinator)
        }
    }

    /// InitProducerId with a transactional id: a new producer id, or the
    /// id's producer with its epoch bumped, which fences every older
    /// instance. A transaction the old instance left open is aborted first
    /// (with a bumped epoch, so its late batches are refused); a prepared
    /// one is completed. `expected` (v3+, KIP-360) is the producer id and
    /// epoch the client last had, which must still be the current ones.
    pub async fn init_producer(
        &self,
        log: &Arc<dyn ClusterLog>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        Self::check_coordinator(log.as_ref(), transactional_id)?;
        let lock = self.lock_of(transactional_id);
        let _held = lock.lock().await;
        let store = log.transactions();
        let mut current = store.get(transactional_id);
        if let (Some(current), Some((producer_id, epoch))) = (&current, expected) {
            let same_producer = current.record.producer_id == producer_id;
            // A retry whose answer was lost: the bump it asked for is the
            // current epoch, and nothing was begun since.
            if same_producer
                && current.record.state == txn_state::EMPTY
                && epoch.checked_add(1) == Some(current.record.producer_epoch)
            {
                return Ok((producer_id, current.record.producer_epoch));
            }
            if !same_producer || current.record.producer_epoch != epoch {
                return Err(ResponseError::ProducerFenced);
            }
        }
        if let Some(open) = current.clone() {
            if txn_state::is_open(open.record.state) {
                current = Some(self.finish(log, open, false, true).await?);
            }
        }
        let (producer_id, producer_epoch, previous_sequence) = match &current {
            Some(current) if current.record.producer_epoch < i16::MAX - 1 => (
                current.record.producer_id,
                current.record.producer_epoch + 1,
                current.sequence,
            ),
            // A new id, or an epoch about to run out: a fresh producer id.
            _ => (
                allocate_producer_id(log.as_ref()).await?,
                0,
                current.as_ref().map_or(0, |current| current.sequence),
            ),
        };
        let record = TransactionRecord {
            transactional_id: transactional_id.to_string(),
            previous_sequence,
            producer_id,
            producer_epoch,
            timeout_ms,
            state: txn_state::EMPTY,
            partitions: Vec::new(),
            groups: Vec::new(),
            started_ms: 0,
            updated_ms: now_ms(),
        };
        write(log.as_ref(), record).await?;
        Ok((producer_id, producer_epoch))
    }

    /// The current state, checked against the producer, for a step that
    /// adds to the transaction: CONCURRENT_TRANSACTIONS while the previous
    /// one is still being completed (the client retries).
    fn addable(
        log: &dyn ClusterLog,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<Transaction, ResponseError> {
        Self::check_coordinator(log, transactional_id)?;
        let current = log
            .transactions()
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(&current, producer_id, producer_epoch)?;
        match current.record.state {
            txn_state::PREPARE_COMMIT | txn_state::PREPARE_ABORT => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Ok(current),
        }
    }

    /// AddPartitionsToTxn: the transaction (begun now if none is open)
    /// holds `streams`. Each new partition's first offset is its high
    /// watermark as this gateway sees it, which is past the producer's
    /// previous marker there (this gateway applied that transaction's end)
    /// and at most the first batch the producer sends after this answer.
    pub async fn add_partitions(
        &self,
        log: &Arc<dyn ClusterLog>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        streams: &[u32],
    ) -> Result<(), ResponseError> {
        let lock = self.lock_of(transactional_id);
        let _held = lock.lock().await;
        let current = Self::addable(log.as_ref(), transactional_id, producer_id, producer_epoch)?;
        let mut record = begin(&current);
        let before = record.partitions.len();
        for &stream in streams {
            if !record.partitions.iter().any(|p| p.stream == stream) {
                record.partitions.push(TxnPartition {
                    stream,
                    first_offset: log.offsets(stream).1,
                    marker_offset: -1,
                });
            }
        }
        if record.partitions.len() == before && current.record.state == txn_state::ONGOING {
            return Ok(());
        }
        write(log.as_ref(), record).await
    }

    /// AddOffsetsToTxn: the transaction commits offsets of `group`.
    pub async fn add_offsets(
        &self,
        log: &Arc<dyn ClusterLog>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
    ) -> Result<(), ResponseError> {
        let lock = self.lock_of(transactional_id);
        let _held = lock.lock().await;
        let current = Self::addable(log.as_ref(), transactional_id, producer_id, producer_epoch)?;
        let mut record = begin(&current);
        if record.groups.iter().any(|known| known == group)
            && current.record.state == txn_state::ONGOING
        {
            return Ok(());
        }
        if !record.groups.iter().any(|known| known == group) {
            record.groups.push(group.to_string());
        }
        write(log.as_ref(), record).await
    }

    /// EndTxn: commits or aborts the open transaction. A retried EndTxn
    /// whose transaction already ended the same way succeeds again.
    pub async fn end(
        &self,
        log: &Arc<dyn ClusterLog>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        Self::check_coordinator(log.as_ref(), transactional_id)?;
        let lock = self.lock_of(transactional_id);
        let _held = lock.lock().await;
        let current = log
            .transactions()
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        check_producer(&current, producer_id, producer_epoch)?;
        let (prepared, completed) = if commit {
            (txn_state::PREPARE_COMMIT, txn_state::COMPLETE_COMMIT)
        } else {
            (txn_state::PREPARE_ABORT, txn_state::COMPLETE_ABORT)
        };
        match current.record.state {
            txn_state::ONGOING => {
                self.finish(log, current, commit, false).await?;
                Ok(())
            }
            state if state == prepared => {
                self.finish(log, current, commit, false).await?;
                Ok(())
            }
            state if state == completed => Ok(()),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// An operator's WriteTxnMarkers (the Admin API's abortTransaction,
    /// `kafka-transactions.sh abort`): ends the open transaction of
    /// `producer_id` at `producer_epoch` in all its partitions, through
    /// the log like any coordinator step (an abort with the epoch bumped,
    /// so the producer is fenced). Nothing open for that producer: nothing
    /// to do. An older epoch than the transaction's: INVALID_PRODUCER_EPOCH.
    pub async fn end_for_operator(
        &self,
        log: &Arc<dyn ClusterLog>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let open_id = log
            .transactions()
            .all()
            .into_iter()
            .find(|txn| {
                txn.record.producer_id == producer_id && txn_state::is_open(txn.record.state)
            })
            .map(|txn| txn.record.transactional_id);
        let Some(id) = open_id else {
            return Ok(());
        };
        let lock = self.lock_of(&id);
        let _held = lock.lock().await;
        let Some(current) = log.transactions().get(&id) else {
            return Ok(());
        };
        if current.record.producer_id != producer_id || !txn_state::is_open(current.record.state) {
            return Ok(());
        }
        if producer_epoch < current.record.producer_epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        tracing::info!(
            transactional_id = %id,
            producer_id,
            commit,
            "an operator ends a transaction"
        );
        self.finish(log, current, commit, !commit).await.map(|_| ())
    }

    /// Ends an open transaction: PREPARE (unless already prepared), a
    /// marker in every partition, COMPLETE. With `bump`, the abort is
    /// written with the next epoch, fencing the producer that left it.
    /// Markers that cannot be written leave the transaction prepared; the
    /// tick retries them.
    async fn finish(
        &self,
        log: &Arc<dyn ClusterLog>,
        current: Transaction,
        commit: bool,
        bump: bool,
    ) -> Result<Transaction, ResponseError> {
        let mut record = current.record.clone();
        let commit = match record.state {
            txn_state::PREPARE_COMMIT => true,
            txn_state::PREPARE_ABORT => false,
            _ => {
                record.state = if commit {
                    txn_state::PREPARE_COMMIT
                } else {
                    txn_state::PREPARE_ABORT
                };
                if bump && record.producer_epoch < i16::MAX - 1 {
                    record.producer_epoch += 1;
                }
                record.previous_sequence = current.sequence;
                record.updated_ms = now_ms();
                write(log.as_ref(), record.clone()).await?;
                commit
            }
        };
        let prepared = log
            .transactions()
            .get(&record.transactional_id)
            .ok_or(ResponseError::NotCoordinator)?;
        let marker_offsets = write_markers(log.as_ref(), &prepared.record, commit).await?;
        let mut complete = prepared.record.clone();
        complete.previous_sequence = prepared.sequence;
        complete.state = if commit {
            txn_state::COMPLETE_COMMIT
        } else {
            txn_state::COMPLETE_ABORT
        };
        for (partition, marker_offset) in complete.partitions.iter_mut().zip(marker_offsets) {
            partition.marker_offset = marker_offset;
        }
        complete.started_ms = 0;
        complete.updated_ms = now_ms();
        write(log.as_ref(), complete).await?;
        let result = if commit { "commit" } else { "abort" };
        metrics::counter!(telemetry::TRANSACTIONS_ENDED_TOTAL, "result" => result).increment(1);
        log.transactions()
            .get(&record.transactional_id)
            .ok_or(ResponseError::NotCoordinator)
    }

    /// Starts the tick once (it needs a Tokio runtime).
    pub fn ensure_ticker(self: &Arc<Self>, log: &Arc<dyn ClusterLog>) {
        if self.ticker_started.swap(true, Ordering::AcqRel) {
            return;
        }
        // Exported from the start, so a dashboard shows 0 rather than no data.
        for result in ["commit", "abort"] {
            metrics::counter!(telemetry::TRANSACTIONS_ENDED_TOTAL, "result" => result).increment(0);
        }
        metrics::counter!(telemetry::TRANSACTIONS_TIMED_OUT_TOTAL).increment(0);
        let coordinator = Arc::downgrade(self);
        let log = Arc::downgrade(log);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let (Some(coordinator), Some(log)) = (coordinator.upgrade(), log.upgrade()) else {
                    return;
                };
                coordinator.tick(&log).await;
            }
        });
    }

    /// Aborts transactions past their timeout and completes prepared ones,
    /// among the ids this gateway coordinates; exports the open count.
    async fn tick(&self, log: &Arc<dyn ClusterLog>) {
        let now = now_ms();
        let mut open = 0u64;
        for transaction in log.transactions().all() {
            let id = transaction.record.transactional_id.clone();
            if !groups::is_coordinator(log.as_ref(), &id) {
                continue;
            }
            let state = transaction.record.state;
            if txn_state::is_open(state) {
                open += 1;
            }
            let expired = state == txn_state::ONGOING
                && now > transaction.record.started_ms + i64::from(transaction.record.timeout_ms);
            let prepared = matches!(state, txn_state::PREPARE_COMMIT | txn_state::PREPARE_ABORT);
            if !expired && !prepared {
                continue;
            }
            let lock = self.lock_of(&id);
            let Ok(_held) = lock.try_lock() else {
                // A request is working on it; the next tick looks again.
                continue;
            };
            let Some(current) = log.transactions().get(&id) else {
                continue;
            };
            if current.sequence != transaction.sequence {
                continue;
            }
            if expired {
                tracing::info!(
                    transactional_id = %id,
                    producer_id = current.record.producer_id,
                    timeout_ms = current.record.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                metrics::counter!(telemetry::TRANSACTIONS_TIMED_OUT_TOTAL).increment(1);
            }
            if let Err(error) = self.finish(log, current, false, expired).await {
                tracing::warn!(transactional_id = %id, ?error, "could not end a transaction; retrying on the next tick");
            }
        }
        metrics::gauge!(telemetry::TRANSACTIONS_OPEN).set(open as f64);
    }
}

/// The record that adds to `current`: its open transaction, or a new one.
fn begin(current: &Transaction) -> TransactionRecord {
    let mut record = current.record.clone();
    record.previous_sequence = current.sequence;
    record.updated_ms = now_ms();
    if record.state != txn_state::ONGOING {
        record.state = txn_state::ONGOING;
        record.partitions.clear();
        record.groups.clear();
        record.started_ms = record.updated_ms;
    }
    record
}

async fn allocate_producer_id(log: &dyn ClusterLog) -> Result<i64, ResponseError> {
    match log
        .control(&ControlRecord::AllocateProducerId, WRITE_TIMEOUT)
        .await
    {
        Ok(completion) => match status_error(completion.error) {
            None => Ok(completion.base_offset),
            Some(error) => Err(error),
        },
        Err(error) => Err(allocation_error(&error)),
    }
}

/// Writes a step; Ok once this gateway applied it and it took effect.
async fn write(log: &dyn ClusterLog, record: TransactionRecord) -> Result<(), ResponseError> {
    let id = record.transactional_id.clone();
    let completion = log
        .control(&ControlRecord::Transaction(record), WRITE_TIMEOUT)
        .await
        .map_err(|error| allocation_error(&error))?;
    if let Some(error) = status_error(completion.error) {
        return Err(error);
    }
    match log.transactions().get(&id) {
        Some(applied) if applied.sequence == completion.global_sequence => Ok(()),
        // Another coordinator's step came first.
        _ => Err(ResponseError::NotCoordinator),
    }
}

/// Writes the marker into every partition of `record`; returns each
/// partition's marker offset (-1 where the partition no longer exists, or
/// a later epoch of the producer already wrote there).
async fn write_markers(
    log: &dyn ClusterLog,
    record: &TransactionRecord,
    commit: bool,
) -> Result<Vec<i64>, ResponseError> {
    let timestamp = now_ms();
    let marker = marker_batch(record.producer_id, record.producer_epoch, commit, timestamp);
    let mut pending = Vec::with_capacity(record.partitions.len());
    for partition in &record.partitions {
        let batch = AppendBatch {
            stream: partition.stream,
            payload: &marker,
            record_count: 1,
            producer_id: record.producer_id,
            producer_epoch: record.producer_epoch,
            base_sequence: -1,
            max_timestamp: timestamp,
        };
        pending.push(
            log.publish(batch, WRITE_TIMEOUT)
                .await
                .map_err(|error| allocation_error(&error))?,
        );
    }
    let mut offsets = Vec::with_capacity(pending.len());
    for answer in pending {
        let completion = answer
            .completion()
            .await
            .map_err(|error| allocation_error(&error))?;
        offsets.push(match completion.error {
            status::OK => completion.base_offset,
            status::UNKNOWN_STREAM | status::PRODUCER_FENCED => -1,
            other => return Err(status_error(other).unwrap_or(ResponseError::UnknownServerError)),
        });
    }
    Ok(offsets)
}
