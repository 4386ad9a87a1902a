//! Startup and a clean stop: choosing this gateway's slot, opening its disk
//! tier (rebuilding a lost region or filling gaps from sibling segments
//! first), working out where each frontier resumes, and starting the
//! threads of the other roles.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{Frontier, GatewayIndex, SequencerCheckpoint};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::RingWriter;
use cxlkafka_log::segment::StoredEntry;
use cxlkafka_log::{Region, RegionWatch};
use cxlkafka_sequencer::catalog::read_catalog;
use cxlkafka_sequencer::membership;

use super::data_dir::{self, EpochRecord, MembersRecord};
use super::fence::RegionFence;
use super::peer_copy;
use super::peer_copy::fetch::{self, AsideReason, Copying, Diverged};
use super::peer_copy::serve::PeerServer;
use super::publisher::Publisher;
use super::replica::DiskTier;
use super::tailer::Applied;
use super::{lock, restore, Bells, Cluster, OrderIndex};
use crate::broker_config::BrokerConfigStore;

/// How long a clean stop waits for the disk tier to catch up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a gateway joins its region.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Requested slot (node id), or the lowest free one.
    pub node_id: Option<GatewayIndex>,
    /// Advertised host for Metadata.
    pub advertised_host: String,
    /// Advertised port for Metadata.
    pub advertised_port: u16,
    /// A gateway whose heartbeat is older than this is dead; its sequencer
    /// lease passes to the lowest live gateway.
    pub lease_timeout: Duration,
    /// Where this gateway's segments live (`<data dir>/gateway-<slot>`).
    pub data_dir: PathBuf,
    /// A segment file is rolled once it would pass this many bytes.
    pub segment_bytes: u64,
    /// The file or device node the region was mapped from: watched so that
    /// this gateway stops serving once the path names another region
    /// (`fence.rs`). `None` for memory without a path (the simulated
    /// backend), where only a new format of the memory is noticed.
    pub region_path: Option<PathBuf>,
    /// Serve a data dir that names another cluster (`--adopt-data-dir`);
    /// without it such a data dir is refused (`data_dir.rs`).
    pub adopt_data_dir: bool,
    /// Rebuild a lost region from the segments of the gateways present even
    /// when gateways that were live before are not back
    /// (`--unclean-region-rebuild`): acknowledged records only they hold are
    /// lost.
    pub unclean_region_rebuild: bool,
    /// Where to listen for peers that copy this gateway's segments
    /// (`peer_copy/`); its port is published in the region, beside the
    /// advertised host. `None`: serve no copies (this gateway still copies
    /// from peers that do).
    pub peer_listen: Option<std::net::SocketAddr>,
}

/// Joins the region, starts the background threads, and waits until the
/// index has caught up with the order log.
pub fn start<B: MemoryBackend>(
    region: Region<B>,
    options: ClusterOptions,
) -> Result<Arc<Cluster<B>>, String> {
    let cluster_name = cxlkafka_log::open::cluster_name(&region.cluster_id());
    data_dir::claim_for_cluster(
        &options.data_dir,
        &cluster_name,
        &crate::api_support::brokers::cluster_id(&cluster_name),
        options.adopt_data_dir,
    )?;
    let region = Arc::new(region);
    match start_once(&region, &options, false)? {
        Started::Joined(cluster) => Ok(cluster),
        Started::Diverged(why) => {
            // Its chain holds entries the region's history does not: copy
            // it anew from a holder, keeping the old one aside.
            tracing::warn!("{why}: setting this gateway's segments aside and copying them anew");
            match start_once(&region, &options, true)? {
                Started::Joined(cluster) => Ok(cluster),
                Started::Diverged(why) => Err(why),
            }
        }
    }
}

/// How one attempt at starting ended.
enum Started<B: MemoryBackend> {
    Joined(Arc<Cluster<B>>),
    /// This gateway's segments hold another history than the region's; it
    /// left the region again.
    Diverged(String),
}

fn start_once<B: MemoryBackend>(
    region: &Arc<Region<B>>,
    options: &ClusterOptions,
    set_aside_own: bool,
) -> Result<Started<B>, String> {
    let watch = match &options.region_path {
        Some(path) => RegionWatch::of_file(path, region).map_err(|error| error.to_string())?,
        None => RegionWatch::of_memory(region),
    };
    let lease_timeout_ns = options.lease_timeout.as_nanos() as u64;
    let gateway = take_slot(region, options)?;
    let epochs = EpochRecord::open(&options.data_dir, gateway)?;
    let members = MembersRecord::open(&options.data_dir, gateway)?;
    let writer = RingWriter::resume(region, gateway);
    // Until its disk tier says what it holds, this gateway holds nothing
    // anyone may rely on (the slot's previous holder may have said more).
    region.set_frontier(gateway, Frontier::HoldsFrom, 0);
    let peer_listener = options
        .peer_listen
        .map(peer_copy::serve::bind)
        .transpose()?;
    let peer_port = match &peer_listener {
        Some(listener) => listener
            .local_addr()
            .map_err(|error| format!("peer-copy listener: {error}"))?
            .port(),
        None => 0,
    };
    let segment_dir = options.data_dir.join(format!("gateway-{gateway}"));
    let copying = Copying {
        region,
        gateway,
        lease_timeout_ns,
    };
    let (disk, stored) =
        open_disk_tier(&copying, &segment_dir, options.segment_bytes, set_aside_own)?;
    let disk = Arc::new(disk);
    // From before joining: a gateway rebuilding a lost region may copy
    // from this one.
    let peer_server = peer_listener
        .map(|listener| PeerServer::start(listener, Arc::clone(region), Arc::clone(&disk)))
        .transpose()?;
    if restore::region_is_blank(region) {
        // What this chain holds, for the gateways deciding who rebuilds.
        region.set_frontier(gateway, Frontier::HoldsFrom, disk.holds_from());
    }
    // From here the arena keeps every entry this gateway has not copied
    // yet; what left it before is on disk here, or on a holder's disk.
    region.set_frontier(gateway, Frontier::Durable, disk.last_stored() + 1);
    let incarnation = membership::join(
        region,
        gateway,
        membership::Endpoint {
            host: &options.advertised_host,
            port: options.advertised_port,
            peer_port,
        },
    );
    let joining = Joining {
        region,
        gateway,
        incarnation,
        lease_timeout_ns,
        disk: &disk,
        epochs: &epochs,
        copying: &copying,
        last_members: members.recorded(),
        unclean_rebuild: options.unclean_region_rebuild,
        data_dir: &options.data_dir,
        segment_dir: &segment_dir,
    };
    let (stored, first) = match joining.catch_up(stored)? {
        CaughtUp::At(stored, first) => (stored, first),
        CaughtUp::Diverged(why) => {
            drop(peer_server);
            membership::beat(region, gateway, incarnation, u64::MAX, false);
            return Ok(Started::Diverged(why));
        }
    };
    let broker_configs = Arc::new(BrokerConfigStore::new(i32::from(gateway)));
    let transactions = Arc::new(crate::transactions::TransactionStore::default());
    let mut index = OrderIndex {
        broker_configs: Arc::clone(&broker_configs),
        transactions: Arc::clone(&transactions),
        ..OrderIndex::default()
    };
    index.set_topics(read_catalog(region));
    index.load_stored(&stored, disk.files());
    index.next_sequence = first;
    index.set_topics(read_catalog(region));
    disk.start_at(first);
    region.set_frontier(gateway, Frontier::Durable, first);
    region.set_frontier(gateway, Frontier::HoldsFrom, disk.holds_from());
    let recycle_from = recycle_start(region, gateway, &writer);
    tracing::info!(
        gateway,
        dir = %segment_dir.display(),
        stored_entries = stored.len(),
        resume_at = first,
        "opened the disk tier"
    );
    drop(stored);
    let cluster = Arc::new(Cluster {
        region: Arc::clone(region),
        gateway,
        incarnation,
        lease_timeout_ns,
        publisher: Publisher::new(writer, recycle_from),
        index: RwLock::new(index),
        broker_configs,
        transactions,
        applied: Applied::new(first),
        disk,
        fence: RegionFence::new(watch),
        epochs,
        members,
        bells: Bells::default(),
        peer_server: Mutex::new(peer_server),
        stop: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
    });
    cluster.store_applied(first);
    *lock(&cluster.threads) = spawn_threads(&cluster)?;
    tracing::info!(
        gateway,
        incarnation,
        backend = cluster.region.backend().name(),
        "joined the region"
    );
    Ok(Started::Joined(cluster))
}

/// Opens this gateway's disk tier and, unless the region is blank (being
/// rebuilt from segments), first copies from a live holder what the
/// segments lack: everything for an empty data dir, a whole new copy for a
/// chain with a gap or another history (`set_aside_own`, or a holder that
/// says so), the entries after its last one otherwise. All of it before
/// joining, so the arena recycles as usual meanwhile.
fn open_disk_tier<B: MemoryBackend>(
    copying: &Copying<'_, B>,
    segment_dir: &Path,
    segment_bytes: u64,
    set_aside_own: bool,
) -> Result<(DiskTier, Vec<StoredEntry>), String> {
    if restore::region_is_blank(copying.region) {
        return DiskTier::open(segment_dir, segment_bytes);
    }
    let mut set_aside = if set_aside_own && segment_dir.exists() {
        Some(fetch::set_aside(segment_dir, AsideReason::Diverged)?)
    } else {
        copying.set_aside_a_copy_with_a_gap(segment_dir)?
    };
    loop {
        let (disk, mut stored) = DiskTier::open(segment_dir, segment_bytes)?;
        let complete = match copying.copy_before_joining(&disk) {
            Ok((copied, complete)) => {
                stored.extend(copied);
                complete
            }
            Err(Diverged { holder }) if set_aside.is_none() => {
                tracing::warn!(
                    holder,
                    "this gateway's segments hold another history than the holder's: \
                     copying them anew"
                );
                drop(disk);
                set_aside = Some(fetch::set_aside(segment_dir, AsideReason::Diverged)?);
                continue;
            }
            Err(Diverged { holder }) => {
                return Err(format!(
                    "a new copy of the segments diverges from gateway {holder}'s at once"
                ))
            }
        };
        return match set_aside {
            None => Ok((disk, stored)),
            Some(set_aside) if complete => {
                set_aside.discard();
                Ok((disk, stored))
            }
            Some(set_aside) => {
                tracing::warn!("no holder completed a new copy: keeping the old one");
                drop(disk);
                set_aside.restore()?;
                DiskTier::open(segment_dir, segment_bytes)
            }
        };
    }
}

/// The cluster name the region was formatted for (its id is the name,
/// zero-padded).
/// The requested slot, or the lowest free one. A gateway restarted right
/// after a crash finds its slot's heartbeat still fresh: it waits for it to
/// go stale rather than refuse at once.
fn take_slot<B: MemoryBackend>(
    region: &Region<B>,
    options: &ClusterOptions,
) -> Result<GatewayIndex, String> {
    let lease_timeout_ns = options.lease_timeout.as_nanos() as u64;
    let slot_deadline = Instant::now() + options.lease_timeout * 3;
    loop {
        match membership::choose_slot(region, options.node_id, lease_timeout_ns) {
            Ok(gateway) => return Ok(gateway),
            Err(error) if options.node_id.is_some() && Instant::now() < slot_deadline => {
                tracing::debug!(%error, "waiting for the slot's previous holder to go stale");
                std::thread::sleep(options.lease_timeout / 10);
            }
            Err(error) => return Err(error),
        }
    }
}

/// A gateway between joining its slot and starting its threads.
struct Joining<'a, B: MemoryBackend> {
    region: &'a Arc<Region<B>>,
    gateway: GatewayIndex,
    incarnation: u64,
    lease_timeout_ns: u64,
    disk: &'a DiskTier,
    epochs: &'a EpochRecord,
    copying: &'a Copying<'a, B>,
    /// The gateways live when this one last ran.
    last_members: Vec<GatewayIndex>,
    unclean_rebuild: bool,
    data_dir: &'a Path,
    segment_dir: &'a Path,
}

/// Where a joining gateway's catching up ended.
enum CaughtUp {
    /// Every stored entry, and the first sequence to take from the region.
    At(Vec<StoredEntry>, u64),
    /// Its segments hold another history than the region's.
    Diverged(String),
}

impl<B: MemoryBackend> Joining<'_, B> {
    /// Rebuilds a blank region from segments, fills what this gateway's
    /// segments lack, and returns every stored entry with the first
    /// sequence to take from the region.
    fn catch_up(&self, mut stored: Vec<StoredEntry>) -> Result<CaughtUp, String> {
        if restore::region_is_blank(self.region) {
            // A new region, or a lost one: what any gateway's segments hold
            // is the order so far.
            stored.extend(restore::backfill(
                self.disk,
                self.data_dir,
                self.segment_dir,
                None,
            )?);
            if !stored.is_empty() {
                restore::Rebuild {
                    region: self.region,
                    gateway: self.gateway,
                    incarnation: self.incarnation,
                    lease_timeout_ns: self.lease_timeout_ns,
                    disk: self.disk,
                    epochs: self.epochs,
                    copying: self.copying,
                    last_members: self.last_members.clone(),
                    unclean: self.unclean_rebuild,
                }
                .run(&mut stored)?;
            } else {
                restore::wait_for_a_rebuild(
                    self.region,
                    self.gateway,
                    self.incarnation,
                    self.lease_timeout_ns,
                )?;
            }
        }
        // What left the arena between the copy before joining and the join
        // (the order log may still name it), from a holder. Before the
        // order's position is read: nothing copied can be beyond it.
        match self.copying.copy_from_a_holder(self.disk) {
            Ok(Some(copy)) => stored.extend(copy.entries),
            Ok(None) => {}
            Err(Diverged { holder }) => {
                return Ok(CaughtUp::Diverged(format!(
                    "gateway {holder} holds another entry where this gateway's segments end"
                )))
            }
        }
        let layout = *self.region.layout();
        let checkpoint: SequencerCheckpoint = self.region.read_fresh(layout.checkpoint());
        let next_sequence = checkpoint.next_sequence.max(1);
        // Entries older than one order-log lap may be overwritten, and a
        // region rebuilt from segments holds none before its first sequence.
        let first_in_region = next_sequence
            .saturating_sub(layout.geometry.order_log_entries - 1)
            .max(checkpoint.region_first_sequence)
            .max(1);
        // What was ordered and recycled while this gateway was away, from a
        // sibling chain in a shared data dir.
        stored.extend(restore::backfill(
            self.disk,
            self.data_dir,
            self.segment_dir,
            Some(first_in_region - 1),
        )?);
        if self.disk.last_stored() >= next_sequence {
            return Ok(CaughtUp::Diverged(format!(
                "the segments in {} hold sequences up to {} but the region's order is only at {}: \
                 the region was rebuilt without them",
                self.segment_dir.display(),
                self.disk.last_stored(),
                next_sequence
            )));
        }
        let first = first_in_region.max(self.disk.last_stored() + 1);
        Ok(CaughtUp::At(stored, first))
    }
}

/// The first ring slot the arena may not recycle yet: slots the predecessor
/// left held (consumed but maybe not on every disk yet) stay held until the
/// disk tier releases them.
fn recycle_start<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    writer: &RingWriter,
) -> u64 {
    let consumed = region.consumed(gateway);
    let recycled = region.frontier(gateway, Frontier::RecycledSlot);
    let held_from = if recycled > 0 {
        consumed.min(recycled)
    } else {
        consumed
    };
    writer.next_slot().min(held_from.max(1))
}

fn spawn_threads<B: MemoryBackend>(
    cluster: &Arc<Cluster<B>>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let spawn = |name: &str, body: fn(&Cluster<B>)| {
        let cluster = Arc::clone(cluster);
        std::thread::Builder::new()
            .name(format!("cxlkafka-{name}"))
            .spawn(move || body(&cluster))
            .map_err(|error| format!("cannot start the {name} thread: {error}"))
    };
    Ok(vec![
        spawn("heartbeat", Cluster::heartbeat_loop)?,
        spawn("tailer", Cluster::tail_loop)?,
        spawn("completions", Cluster::completion_loop)?,
        spawn("sequencer", Cluster::sequencer_loop)?,
        spawn("replicator", Cluster::replicate_loop)?,
        spawn("syncer", Cluster::sync_loop)?,
    ])
}

impl<B: MemoryBackend> Cluster<B> {
    /// Stops the threads and marks this gateway as cleanly gone.
    pub fn stop(&self) {
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        // A clean stop leaves everything this gateway applied on its disk.
        let drain_until = Instant::now() + DRAIN_TIMEOUT;
        while self.disk.durable() < self.applied()
            && Instant::now() < drain_until
            && !self.fence.memory_reused()
        {
            self.disk.wake();
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        self.publisher.wake_completions();
        self.disk.wake();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
        if let Some(mut server) = lock(&self.peer_server).take() {
            server.stop();
        }
        if self.fenced() {
            // The region at the path is another one now: write nothing.
            tracing::info!(
                gateway = self.gateway,
                "stopped serving a region no longer in use"
            );
            return;
        }
        membership::beat(
            &self.region,
            self.gateway,
            self.incarnation,
            u64::MAX,
            false,
        );
        tracing::info!(gateway = self.gateway, "left the region");
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// A fault for tests: while `paused`, this gateway beats no heartbeat,
    /// applies no order entry and copies nothing to its disk, as if
    /// SIGSTOPped (past its lease, the peers count it dead and the region
    /// recycles what it did not take), while its region mapping stays.
    #[doc(hidden)]
    pub fn pause_as_if_stopped(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    pub(super) fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

impl<B: MemoryBackend> Drop for Cluster<B> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
