//! The bodies of the fuzz targets, kept here so that each target in
//! `fuzz_targets/` is one line and a crashing input can be replayed by hand.
//!
//! Each function takes arbitrary bytes and must return normally: a panic,
//! an abort (a huge allocation), a timeout or a sanitizer report is a bug.
//! Inputs are decoded with a few fuzzer-friendly conventions (a flags byte
//! that repairs a CRC, a separator between frames), so that the fuzzer gets
//! past checksums and reaches the code behind them.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::SinkLog;
use cxlkafka_gateway::connection::FrameReader;
use cxlkafka_gateway::context::AdvertisedListener;
use cxlkafka_gateway::dispatch::{dispatch, DispatchTable, Reply};
use cxlkafka_gateway::records::{
    keyless_records, record_errors, set_base_offset, set_partition_leader_epoch,
    stamp_log_append_time, validate_batch, validate_produce_records, validate_record_set,
    ProduceCheck, RecordRules, TimestampWindow, LOG_OVERHEAD, MAX_RECORD_ERRORS,
};
use cxlkafka_gateway::GatewayContext;
use cxlkafka_log::layout::{Superblock, SUPERBLOCK_BYTES};
use cxlkafka_log::memory::{Coherent, MemoryBackend};
use cxlkafka_log::open::attach_file;

/// Separates request frames in a `request` input.
pub const FRAME_SEPARATOR: &[u8] = &[0xC0, 0xFF, 0xEE, 0x00];

/// The longest a deferred reply may take in (paused, virtual) time: past
/// the 3 s initial rebalance delay of a group join. Waits measured on the
/// wall clock (a long poll's deadline) see paused time jump ahead at each
/// of their sleeps, so this also bounds them in real time.
const DEFERRED_LIMIT: Duration = Duration::from_secs(5);

fn table() -> Arc<DispatchTable> {
    static TABLE: OnceLock<Arc<DispatchTable>> = OnceLock::new();
    Arc::clone(TABLE.get_or_init(|| Arc::new(DispatchTable::standard())))
}

/// Request frames through the connection's decode path: `data` is split on
/// [`FRAME_SEPARATOR`], each piece gets its size prefix, and the stream is
/// read by the connection's [`FrameReader`] and handed to [`dispatch`]
/// (header, routing, version checks, each handler's shape-bounded decode
/// and ordered part) on a store-nothing gateway, one fresh gateway per
/// input. Deferred replies are run to completion in paused time.
pub fn request(data: &[u8]) {
    let mut stream = Vec::with_capacity(data.len() + 64);
    for piece in split(data, FRAME_SEPARATOR) {
        let size = i32::try_from(piece.len()).unwrap_or(i32::MAX);
        stream.extend_from_slice(&size.to_be_bytes());
        stream.extend_from_slice(piece);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let log = Arc::new(SinkLog::new("127.0.0.1".to_owned(), 9092));
        let advertised = AdvertisedListener {
            host: "127.0.0.1".to_owned(),
            port: 9092,
        };
        let ctx = Arc::new(GatewayContext::new(log, "fuzz", advertised));
        let table = table();
        let mut reader = FrameReader::new(&stream[..], ctx.limits.max_frame_bytes);
        while let Ok(Some(frame)) = reader.read_frame().await {
            let Ok(dispatched) = dispatch(&ctx, &table, frame, Instant::now()).await else {
                // The connection would close here.
                break;
            };
            let response = match dispatched.reply {
                Reply::NoResponse => None,
                Reply::Ready(response) => Some(response),
                Reply::Deferred(pending) => {
                    match tokio::time::timeout(DEFERRED_LIMIT, pending).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(_close)) => break,
                        // A client may ask for a long wait (max_wait_ms);
                        // paused time got here without waiting for it.
                        Err(_elapsed) => None,
                    }
                }
            };
            if let Some(response) = response {
                let bytes = response.as_bytes();
                let prefix: [u8; 4] = bytes[..4].try_into().expect("a size prefix");
                assert_eq!(
                    usize::try_from(i32::from_be_bytes(prefix)).ok(),
                    Some(bytes.len() - 4),
                    "a response's size prefix is its length"
                );
            }
        }
    });
}

fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(separator.len())
            .position(|window| window == separator)
        {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Bytes of a record set, as Produce carries them, through the validator
/// the Produce path runs (`validate_produce_records`, then `keyless_records`
/// as for a compacted topic and `record_errors` with a timestamp window that
/// reads every record, then the LogAppendTime stamp), the stored-set
/// validator and the header rewrites of the Fetch path.
///
/// `data[0]` holds flags: bit 0 repairs the CRC of every batch the bytes
/// frame, so that the fuzzer explores what lies behind the checksum;
/// `data[1]` picks the Produce version.
pub fn record_batch(data: &[u8]) {
    let [flags, version, rest @ ..] = data else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0 {
        repair_batch_crcs(&mut bytes);
    }
    let produce_version = i16::from(*version % 14);

    if let Ok(info) = validate_batch(&bytes) {
        assert!(info.size <= bytes.len());
        assert!(info.size >= cxlkafka_gateway::records::BATCH_HEADER_LEN);
    }
    match validate_record_set(&bytes) {
        Ok(batches) => {
            let total: usize = batches.iter().map(|b| b.size).sum();
            assert_eq!(total, bytes.len(), "a valid set is its batches end to end");
        }
        Err(error) => {
            let _ = error.code();
        }
    }
    let check = ProduceCheck {
        produce_version,
        message_max_bytes: 1 << 20,
    };
    match validate_produce_records(&bytes, check) {
        Ok(info) => {
            assert_eq!(info.size, bytes.len(), "a produced set is one batch");
            assert!(info.record_count > 0);
            if let Ok(keyless) = keyless_records(&bytes) {
                assert!(keyless.len() <= bytes.len());
            }
            let window = RecordRules {
                keys_required: true,
                timestamps: Some(TimestampWindow {
                    now: 1_700_000_000_000,
                    before_max_ms: 3_600_000,
                    after_max_ms: 3_600_000,
                }),
            };
            if let Ok(errors) = record_errors(&bytes, window) {
                assert!(errors.len() <= MAX_RECORD_ERRORS);
            }
            let mut stamped = bytes.clone();
            stamp_log_append_time(&mut stamped, 1_700_000_000_000).expect("a whole header");
            let stamped_info =
                validate_batch(&stamped).expect("a log-append stamp keeps the CRC valid");
            assert_eq!(stamped_info.max_timestamp, 1_700_000_000_000);
            assert_eq!(stamped_info.record_count, info.record_count);
            let mut stored = bytes.clone();
            set_base_offset(&mut stored, 1_000).expect("a whole header");
            set_partition_leader_epoch(&mut stored, 7).expect("a whole header");
            let again = validate_batch(&stored).expect("offset rewrites keep the CRC valid");
            assert_eq!(again.base_offset, 1_000);
            assert_eq!(again.record_count, info.record_count);
        }
        Err(error) => {
            let _ = error.code();
        }
    }
}

/// Rewrites the CRC32C of each batch `bytes` frames (as far as its length
/// field and the bytes present allow).
fn repair_batch_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(length) = bytes.get(at + 8..at + 12) {
        let length = i32::from_be_bytes(length.try_into().expect("four bytes"));
        let Ok(length) = usize::try_from(length) else {
            return;
        };
        let end = (at + LOG_OVERHEAD).saturating_add(length).min(bytes.len());
        if end < at + 21 {
            return;
        }
        let crc = crc32c::crc32c(&bytes[at + 21..end]);
        bytes[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// A peer-copy request and answer, decoded as the serving and the copying
/// gateway do: a refused, cut or corrupt answer is an error, never a panic
/// or an allocation beyond the bytes given.
pub fn peer_copy(data: &[u8]) {
    let _ = cxlkafka_gateway::cluster::decode_peer_copy_exchange(data);
}

/// A region file image through `attach_file` (as a gateway joining an
/// existing region does), then reads at every offset the attached layout
/// names. Attach must refuse a bad image with a typed error; an image it
/// accepts must have a layout that fits the mapping.
///
/// `data[0]` holds flags: bit 0 repairs the superblock CRC, bit 1 passes
/// the attached geometry back as the expected one. `data[1..5]` (little
/// endian) extends the file with that many zero bytes (modulo 64 MiB,
/// sparse), so that small inputs can describe regions that fit.
pub fn region_attach(data: &[u8]) {
    let [flags, e0, e1, e2, e3, image @ ..] = data else {
        return;
    };
    let mut image = image.to_vec();
    let superblock_len = std::mem::size_of::<Superblock>();
    if flags & 1 != 0 && image.len() >= superblock_len {
        let mut superblock: Superblock = bytemuck::pod_read_unaligned(&image[..superblock_len]);
        superblock.crc = superblock.compute_crc();
        image[..superblock_len].copy_from_slice(bytemuck::bytes_of(&superblock));
    }
    let extension = u64::from(u32::from_le_bytes([*e0, *e1, *e2, *e3])) % (64 << 20);
    let scratch = Scratch::new();
    let path = scratch.0.clone();
    std::fs::write(&path, &image).expect("write the image");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("reopen the image");
    file.set_len(image.len() as u64 + extension)
        .expect("extend the image");
    drop(file);

    let attached = attach_file::<Coherent>(&path, None, None, Duration::ZERO);
    let region = match attached {
        Ok(region) => region,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let size = std::fs::metadata(&path).expect("the image").len();
    assert!(size >= SUPERBLOCK_BYTES);
    let layout = *region.layout();
    assert!(layout.total_bytes <= size, "the layout fits the file");
    if flags & 2 != 0 {
        let geometry = layout.geometry;
        attach_file::<Coherent>(
            &path,
            Some(&geometry),
            Some(region.cluster_id()),
            Duration::ZERO,
        )
        .expect("the same image attaches with its own geometry");
    }
    // Every section the layout names is inside the mapping (the backend
    // panics on an offset outside it).
    let backend = region.backend();
    let mut byte = [0_u8; 1];
    let gateways = u16::try_from(layout.geometry.max_gateways).expect("at most 1024");
    let last_slot = u64::from(layout.geometry.ring_slots) - 1;
    for gateway in [0, gateways - 1] {
        backend.read(layout.gateway_lines(gateway), &mut byte);
        backend.read(layout.sequencer_view(gateway), &mut byte);
        backend.read(layout.batch_header(gateway, last_slot), &mut byte);
        backend.read(layout.completion(gateway, last_slot), &mut byte);
        let arena_end = layout.arena(gateway) as u64 + layout.geometry.arena_bytes - 1;
        backend.read(usize::try_from(arena_end).expect("in memory"), &mut byte);
    }
    backend.read(
        layout.order_entry(layout.geometry.order_log_entries - 1),
        &mut byte,
    );
    backend.read(
        usize::try_from(layout.total_bytes - 1).expect("in memory"),
        &mut byte,
    );
}

/// This process's scratch region file, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let path = scratch_file();
        if let Some(dir) = path.parent() {
            // Recreated if a cleanup removed it meanwhile.
            std::fs::create_dir_all(dir).expect("a scratch directory");
        }
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// This process's scratch region file, on tmpfs when there is one.
fn scratch_file() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("cxlkafka-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    });
    dir.join("region")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_split_on_the_separator() {
        let mut data = b"one".to_vec();
        data.extend(FRAME_SEPARATOR);
        data.extend(b"two");
        let pieces: Vec<&[u8]> = split(&data, FRAME_SEPARATOR).collect();
        assert_eq!(pieces, vec![&b"one"[..], &b"two"[..]]);
    }
}
