//! The sequencer lease: which gateway orders the region. One holder at a
//! time; the holder keeps it while its heartbeat is fresh, and a successor
//! takes it only once the holder's heartbeat stopped (or the holder's slot
//! was taken by a new incarnation), always with a higher epoch.

use cxlkafka_log::layout::{GatewayIndex, Lease};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;

use crate::sequencer::{heartbeat_is_fresh, unix_ns};

/// How one gateway stands with the lease as it reads it now.
#[derive(Clone, Copy, Debug)]
pub struct LeaseState {
    /// The lease as its holder last wrote it.
    pub lease: Lease,
    /// This gateway (this incarnation) holds it.
    pub mine: bool,
    /// Nobody holds it, or its holder is gone.
    pub free: bool,
}

/// Reads the lease as seen by gateway `gateway` in incarnation `incarnation`.
pub fn read<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    incarnation: u64,
    timeout_ns: u64,
) -> LeaseState {
    let lease = region.lease();
    LeaseState {
        lease,
        mine: lease.holder == holder_word(gateway) && lease.holder_incarnation == incarnation,
        free: holder_is_gone(region, &lease, timeout_ns),
    }
}

/// Whether the lease's holder is gone (or there never was one).
fn holder_is_gone<B: MemoryBackend>(region: &Region<B>, lease: &Lease, timeout_ns: u64) -> bool {
    if lease.holder == 0 {
        return true;
    }
    let holder = (lease.holder - 1) as GatewayIndex;
    let heartbeat = region.heartbeat(holder);
    heartbeat.incarnation != lease.holder_incarnation
        || !heartbeat_is_fresh(&heartbeat, unix_ns(), timeout_ns)
}

/// Writes the lease as held by `gateway` (incarnation `incarnation`) at
/// `epoch`. Only the holder renewing it, or a successor whose
/// [`LeaseState::free`] was true, may call it.
pub fn take<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    incarnation: u64,
    epoch: u64,
) {
    region.set_lease(&Lease {
        epoch,
        holder: holder_word(gateway),
        holder_incarnation: incarnation,
        next_sequence: 0,
        _pad: [0; 96],
    });
}

/// Whether gateway `gateway` still holds the lease it took at `epoch`.
pub fn still_held<B: MemoryBackend>(region: &Region<B>, gateway: GatewayIndex, epoch: u64) -> bool {
    let lease = region.lease();
    lease.epoch == epoch && lease.holder == holder_word(gateway)
}

/// The lease's `holder` word for a gateway slot (0 means nobody).
fn holder_word(gateway: GatewayIndex) -> u64 {
    u64::from(gateway) + 1
}
