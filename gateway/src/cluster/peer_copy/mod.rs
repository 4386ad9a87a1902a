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

use cxlkafka_log::segment::format::ENTRY_HEADER_BYTES;
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

/// Reads the entries of an answer's stream from `input` until its end tag,
/// handing each (CRC checked, sequences increasing from `from` and below
/// `durable`) to `sink`; fails on a cut or corrupt stream. A payload is
/// read as it arrives: a corrupt length allocates no more than the bytes
/// that actually follow.
fn read_entries(
    input: &mut impl Read,
    from: u64,
    durable: u64,
    mut sink: impl FnMut(&EntryHeader, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut payload = Vec::new();
    let mut previous = from.saturating_sub(1);
    loop {
        let mut tag = [0u8; 1];
        input
            .read_exact(&mut tag)
            .map_err(|error| error.to_string())?;
        match tag[0] {
            TAG_END => return Ok(()),
            TAG_ENTRY => {}
            other => return Err(format!("unknown tag {other}")),
        }
        let mut header_bytes = [0u8; ENTRY_HEADER_BYTES];
        input
            .read_exact(&mut header_bytes)
            .map_err(|error| error.to_string())?;
        let (header, crc) =
            EntryHeader::decode(&header_bytes).ok_or("an entry header without its magic")?;
        if header.sequence <= previous || header.sequence >= durable {
            return Err(format!(
                "sequence {} out of order (after {previous}, below {durable})",
                header.sequence
            ));
        }
        payload.clear();
        let length = u64::from(header.length);
        input
            .by_ref()
            .take(length)
            .read_to_end(&mut payload)
            .map_err(|error| error.to_string())?;
        if payload.len() as u64 != length {
            return Err(format!("entry {} cut short", header.sequence));
        }
        if !EntryHeader::crc_matches(&header_bytes, &payload, crc) {
            return Err(format!("entry {} fails its CRC", header.sequence));
        }
        sink(&header, &payload)?;
        previous = header.sequence;
    }
}

/// Decodes `bytes` as a peer-copy request followed by an answer, as the
/// two sides do (the fuzz target `peer_copy`); returns the entries the
/// answer held, or why it was refused or corrupt.
pub fn decode_exchange(bytes: &[u8]) -> Result<usize, String> {
    let (request, mut answer) = bytes.split_at(bytes.len().min(REQUEST_BYTES));
    let from = <&[u8; REQUEST_BYTES]>::try_from(request)
        .ok()
        .and_then(Request::decode)
        .map_or(1, |request| request.from_sequence);
    let ready = read_answer(&mut answer)
        .map_err(|error| error.to_string())?
        .map_err(|status| format!("{status:?}"))?;
    let mut entries = 0;
    read_entries(&mut answer, from, ready.durable, |_, _| {
        entries += 1;
        Ok(())
    })?;
    Ok(entries)
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

    fn entry(sequence: u64, payload: &[u8]) -> Vec<u8> {
        let header = EntryHeader {
            sequence,
            length: payload.len() as u32,
            ..EntryHeader::default()
        };
        let mut bytes = vec![TAG_ENTRY];
        bytes.extend_from_slice(&header.encode(payload));
        bytes.extend_from_slice(payload);
        bytes
    }

    fn exchange(from: u64, durable: u64, entries: &[Vec<u8>], end: bool) -> Vec<u8> {
        let mut bytes = Request {
            generation: [1; 16],
            from_sequence: from,
            previous_fingerprint: 0,
        }
        .encode()
        .to_vec();
        write_ready(
            &mut bytes,
            Ready {
                holds_from: 1,
                durable,
            },
        )
        .unwrap();
        for entry in entries {
            bytes.extend_from_slice(entry);
        }
        if end {
            bytes.push(TAG_END);
        }
        bytes
    }

    #[test]
    fn a_stream_of_entries_reads_back_and_every_corruption_is_refused() {
        let good = [entry(5, b"five"), entry(7, b"seven")];
        assert_eq!(decode_exchange(&exchange(5, 8, &good, true)), Ok(2));
        assert!(
            decode_exchange(&exchange(5, 8, &good, false)).is_err(),
            "cut before its end"
        );
        assert!(
            decode_exchange(&exchange(6, 8, &good, true)).is_err(),
            "below the first asked"
        );
        assert!(
            decode_exchange(&exchange(5, 7, &good, true)).is_err(),
            "not durable there"
        );
        let backwards = [entry(7, b"seven"), entry(5, b"five")];
        assert!(decode_exchange(&exchange(5, 8, &backwards, true)).is_err());
        let mut flipped = entry(5, b"five");
        *flipped.last_mut().unwrap() ^= 1;
        assert!(
            decode_exchange(&exchange(5, 8, &[flipped], true)).is_err(),
            "CRC"
        );
        let mut huge = entry(5, b"five");
        huge[1 + 56..1 + 60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            decode_exchange(&exchange(5, 8, &[huge], true)).is_err(),
            "a length past the stream"
        );
        assert!(decode_exchange(&[]).is_err());
    }
}
