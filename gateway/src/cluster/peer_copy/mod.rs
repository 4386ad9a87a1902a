//! Copies of one gateway's segments for another that lacks entries: what
//! lets gateways share nothing but the region. A gateway that joins late,
//! restarts with an empty data dir or finds a gap in its own copy cannot get
//! what already left the region from the region; it copies it from a live
//! gateway that holds every entry (a holder, see
//! [`cxlkafka_sequencer::membership::holders`]) before it joins, and only then
//! counts as a holder itself.
//!
//! - [`serve`]: the listener every gateway runs (`--peer-listen`), whose port
//!   it publishes in its slot's `GatewayInfo::peer_port`;
//! - [`fetch`]: the copying side, run at startup.
//!
//! # Protocol
//!
//! One TCP connection per copy, one request, little-endian integers:
//!
//! | bytes | request |
//! |---|---|
//! | 8 | `CXLKPEER` |
//! | 2 | protocol version (1) |
//! | 16 | the region generation the asking gateway mapped: only a participant of the same region is answered (it is the credential: whoever can read it can read the whole region anyway) |
//! | 8 | first sequence wanted |
//! | 4 | the [`fingerprint`] of the asking gateway's entry just before it (0 when it has none) |
//!
//! When the server holds the entry before the first sequence wanted and its
//! fingerprint differs, the two copies hold different histories (one was
//! written by a region rebuilt without the other's last entries): the
//! answer is `Diverged`, and the asking gateway copies anew instead of
//! continuing its chain. The answer is one status byte ([`Status`]); after
//! `Ready`, the server's
//! `holds_from` (8 bytes) and its durable frontier (8 bytes, no entry at or
//! above it is sent), then every entry it holds from the first sequence
//! wanted, oldest first, each as `1`, its 72-byte segment entry header (the
//! CRC32C covers header and payload), and its payload; then `0`. A stream
//! that ends without the `0` was cut: what arrived before is kept, as valid
//! entries, but the copy does not count as complete.

pub(super) mod fetch;
pub(super) mod serve;

use std::io::{self, Read, Write};

use cxlkafka_log::segment::EntryHeader;

const MAGIC: [u8; 8] = *b"CXLKPEER";
const VERSION: u16 = 1;
const REQUEST_BYTES: usize = 8 + 2 + 16 + 8 + 4;
/// Tags before each item of the entry stream.
const TAG_END: u8 = 0;
const TAG_ENTRY: u8 = 1;

/// The first byte of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Status {
    /// Entries follow.
    Ready = 0,
    /// The asking gateway mapped another region (generation differs).
    WrongRegion = 1,
    /// The server does not know yet what it holds (it is starting).
    NotReady = 2,
    /// The request's magic or version is not this protocol's.
    Unsupported = 3,
    /// The entry before the first sequence wanted differs here.
    Diverged = 4,
}

impl Status {
    fn from_byte(byte: u8) -> Option<Self> {
        [
            Self::Ready,
            Self::WrongRegion,
            Self::NotReady,
            Self::Unsupported,
            Self::Diverged,
        ]
        .into_iter()
        .find(|status| *status as u8 == byte)
    }
}

/// What a copying gateway asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    generation: [u8; 16],
    from_sequence: u64,
    /// [`fingerprint`] of the asking gateway's entry `from_sequence - 1`.
    previous_fingerprint: u32,
}

impl Request {
    fn encode(&self) -> [u8; REQUEST_BYTES] {
        let mut bytes = [0u8; REQUEST_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&VERSION.to_le_bytes());
        bytes[10..26].copy_from_slice(&self.generation);
        bytes[26..34].copy_from_slice(&self.from_sequence.to_le_bytes());
        bytes[34..38].copy_from_slice(&self.previous_fingerprint.to_le_bytes());
        bytes
    }

    /// `None` when the bytes are not a request of this protocol version.
    fn decode(bytes: &[u8; REQUEST_BYTES]) -> Option<Self> {
        if bytes[..8] != MAGIC || bytes[8..10] != VERSION.to_le_bytes() {
            return None;
        }
        Some(Self {
            generation: bytes[10..26].try_into().ok()?,
            from_sequence: u64::from_le_bytes(bytes[26..34].try_into().ok()?),
            previous_fingerprint: u32::from_le_bytes(bytes[34..38].try_into().ok()?),
        })
    }
}

/// What identifies an entry across copies: a CRC32C of its header fields
/// (sequence, partition, offsets, counts, producer, timestamps), which two
/// copies of one entry share whatever their on-disk form, and two entries
/// ordered at one sequence by different histories almost never do.
pub(in crate::cluster) fn fingerprint(header: &EntryHeader) -> u32 {
    crc32c::crc32c(&header.encode_with_payload_crc(0))
}

/// The server's answer before the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ready {
    holds_from: u64,
    durable: u64,
}

fn write_ready(out: &mut impl Write, ready: Ready) -> io::Result<()> {
    out.write_all(&[Status::Ready as u8])?;
    out.write_all(&ready.holds_from.to_le_bytes())?;
    out.write_all(&ready.durable.to_le_bytes())
}

/// Reads the status byte and, when ready, what follows it.
fn read_answer(input: &mut impl Read) -> io::Result<Result<Ready, Status>> {
    let mut status = [0u8; 1];
    input.read_exact(&mut status)?;
    match Status::from_byte(status[0]) {
        Some(Status::Ready) => {
            let mut words = [0u8; 16];
            input.read_exact(&mut words)?;
            Ok(Ok(Ready {
                holds_from: u64::from_le_bytes(words[..8].try_into().expect("8 bytes")),
                durable: u64::from_le_bytes(words[8..].try_into().expect("8 bytes")),
            }))
        }
        Some(refusal) => Ok(Err(refusal)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown peer-copy status {}", status[0]),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_and_another_protocol_is_refused() {
        let request = Request {
            generation: [7; 16],
            from_sequence: 1234,
            previous_fingerprint: 0xDEAD_BEEF,
        };
        let bytes = request.encode();
        assert_eq!(Request::decode(&bytes), Some(request));
        let mut other_version = bytes;
        other_version[8] = 2;
        assert_eq!(Request::decode(&other_version), None);
        let mut http = bytes;
        http[..8].copy_from_slice(b"GET / HT");
        assert_eq!(Request::decode(&http), None);
    }

    #[test]
    fn an_answer_reads_back_and_an_unknown_status_is_an_error() {
        let mut bytes = Vec::new();
        write_ready(
            &mut bytes,
            Ready {
                holds_from: 5,
                durable: 99,
            },
        )
        .unwrap();
        assert_eq!(
            read_answer(&mut bytes.as_slice()).unwrap(),
            Ok(Ready {
                holds_from: 5,
                durable: 99
            })
        );
        assert_eq!(
            read_answer(&mut [Status::WrongRegion as u8].as_slice()).unwrap(),
            Err(Status::WrongRegion)
        );
        assert!(read_answer(&mut [9u8].as_slice()).is_err());
    }
}
