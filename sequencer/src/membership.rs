//! Gateway slots: joining the region as one, heartbeating, and seeing who
//! else is live. Every participant reads the same single-writer lines (a
//! gateway's info and heartbeat), so the sequencer and the gateways agree on
//! who is live by the same rule ([`heartbeat_is_fresh`]).

use cxlkafka_log::layout::{Frontier, GatewayIndex, GatewayInfo, Heartbeat};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;

use crate::sequencer::{heartbeat_is_fresh, unix_ns};

/// A live gateway as Metadata lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Slot in the region = Kafka node id.
    pub gateway: GatewayIndex,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

/// Whether gateway `gateway`'s heartbeat is fresh now.
pub fn is_live<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    timeout_ns: u64,
) -> bool {
    heartbeat_is_fresh(&region.heartbeat(gateway), unix_ns(), timeout_ns)
}

/// Picks this gateway's slot: the requested one, or the lowest slot whose
/// heartbeat is not fresh. Two gateways started at the same instant without
/// `--node-id` could pick the same slot; give explicit node ids to avoid it.
pub fn choose_slot<B: MemoryBackend>(
    region: &Region<B>,
    requested: Option<GatewayIndex>,
    timeout_ns: u64,
) -> Result<GatewayIndex, String> {
    let gateways = region.layout().geometry.max_gateways as GatewayIndex;
    let is_free = |gateway| !is_live(region, gateway, timeout_ns);
    match requested {
        Some(gateway) if gateway >= gateways => Err(format!(
            "node id {gateway} is outside the region's {gateways} gateway slots"
        )),
        Some(gateway) if !is_free(gateway) => Err(format!(
            "node id {gateway} is held by a live gateway (its heartbeat is fresh)"
        )),
        Some(gateway) => Ok(gateway),
        None => (0..gateways)
            .find(|&gateway| is_free(gateway))
            .ok_or_else(|| format!("all {gateways} gateway slots of the region are live")),
    }
}

/// Where a gateway is reached: by clients, and by peers for copies of its
/// segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub host: &'a str,
    /// The Kafka listener's port.
    pub port: u16,
    /// The peer-copy listener's port on the same host (0: none).
    pub peer_port: u16,
}

/// Writes this gateway's info line and first heartbeat; returns its incarnation.
pub fn join<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    endpoint: Endpoint<'_>,
) -> u64 {
    let incarnation = region.gateway_info(gateway).incarnation + 1;
    let mut info: GatewayInfo = bytemuck::Zeroable::zeroed();
    info.incarnation = incarnation;
    info.pid = std::process::id();
    info.advertised_port = endpoint.port;
    info.peer_port = endpoint.peer_port;
    let host = endpoint.host;
    let host = &host.as_bytes()[..host.len().min(info.advertised_host.len())];
    info.advertised_host_len = host.len() as u16;
    info.advertised_host[..host.len()].copy_from_slice(host);
    region.set_gateway_info(gateway, &info);
    beat(region, gateway, incarnation, 1, true);
    incarnation
}

/// Publishes one heartbeat.
pub fn beat<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    incarnation: u64,
    beats: u64,
    alive: bool,
) {
    let heartbeat = Heartbeat {
        incarnation,
        beats,
        unix_ns: unix_ns(),
        alive: u64::from(alive),
        _pad: [0; 96],
    };
    region.set_heartbeat(gateway, &heartbeat);
}

/// Every gateway whose heartbeat is fresh, lowest slot first.
pub fn live_members<B: MemoryBackend>(region: &Region<B>, timeout_ns: u64) -> Vec<Member> {
    (0..region.layout().geometry.max_gateways as GatewayIndex)
        .filter(|&gateway| is_live(region, gateway, timeout_ns))
        .map(|gateway| {
            let info = region.gateway_info(gateway);
            Member {
                gateway,
                host: advertised_host(&info),
                port: info.advertised_port,
            }
        })
        .collect()
}

/// Where gateway `gateway` serves copies of its segments: its advertised
/// host and peer port; `None` when it serves none.
pub fn peer_address<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
) -> Option<(String, u16)> {
    let info = region.gateway_info(gateway);
    (info.peer_port != 0).then(|| (advertised_host(&info), info.peer_port))
}

fn advertised_host(info: &GatewayInfo) -> String {
    let len = (info.advertised_host_len as usize).min(info.advertised_host.len());
    String::from_utf8_lossy(&info.advertised_host[..len]).into_owned()
}

/// The live gateways whose disks hold every entry that the most complete
/// gateway holds, lowest slot first: the ones clients may be sent to for
/// any offset. "Most complete" is the lowest `holds_from` any slot
/// published, live or not: while the only gateways that hold older entries
/// are down, no live gateway qualifies and the partitions have no leader
/// (as Kafka keeps a partition offline rather than elect a replica that is
/// out of sync), instead of serving a copy that lacks acknowledged records.
/// A gateway that joined late, restarted empty or missed entries while
/// paused is live but not among them. A gateway still starting (0) never
/// is; when no slot has published yet, every live gateway is returned.
pub fn holders<B: MemoryBackend>(region: &Region<B>, timeout_ns: u64) -> Vec<Member> {
    let most_complete = most_complete(region);
    live_members(region, timeout_ns)
        .into_iter()
        .filter(|member| holds_enough(region, member.gateway, most_complete))
        .collect()
}

/// Whether gateway `gateway` is one of [`holders`], without building the
/// list (no advertised names decoded): what every Fetch asks of its own
/// gateway.
pub fn is_holder<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    timeout_ns: u64,
) -> bool {
    is_live(region, gateway, timeout_ns) && holds_enough(region, gateway, most_complete(region))
}

/// The lowest `holds_from` any slot published, live or not; `None` when
/// none has.
fn most_complete<B: MemoryBackend>(region: &Region<B>) -> Option<u64> {
    let slots = region.layout().geometry.max_gateways as GatewayIndex;
    (0..slots)
        .map(|gateway| region.frontier(gateway, Frontier::HoldsFrom))
        .filter(|&from| from != 0)
        .min()
}

/// Whether `gateway`'s published `holds_from` reaches `most_complete`
/// (every gateway does while no slot has published).
fn holds_enough<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    most_complete: Option<u64>,
) -> bool {
    let from = region.frontier(gateway, Frontier::HoldsFrom);
    most_complete.is_none_or(|most| from != 0 && from <= most)
}
