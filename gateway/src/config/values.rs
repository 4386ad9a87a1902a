//! Flag values: [`ByteSize`] and the parsers that check a flag's value
//! when the command line is parsed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::context::AdvertisedListener;

/// A default duration as the whole milliseconds its flag takes.
pub(super) const fn duration_ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

pub(super) fn parse_positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub(super) fn parse_cluster_name(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !s.starts_with('.');
    if valid {
        Ok(s.to_owned())
    } else {
        Err("use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'".to_owned())
    }
}

/// `--peer-listen`: where this gateway serves copies of its segments to
/// peers, or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerListen {
    /// Serve no copies.
    Off,
    /// Listen at this address.
    At(std::net::SocketAddr),
}

/// Parses `off` or a `host:port` (port 0 picks a free one).
pub(super) fn parse_peer_listen(s: &str) -> Result<PeerListen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(PeerListen::Off);
    }
    parse_socket_addr(s)
        .map(PeerListen::At)
        .map_err(|error| format!("{error} (or off)"))
}

/// Parses `ip:port`, `[v6]:port` or `host:port`; a name is resolved now and
/// its first address taken (`localhost:9644`).
pub fn parse_socket_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(address) = s.parse() {
        return Ok(address);
    }
    use std::net::ToSocketAddrs;
    let mut addresses = s
        .to_socket_addrs()
        .map_err(|error| format!("expected host:port, got {s:?}: {error}"))?;
    addresses
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Parses `host:port`, `[v6]:port`, or either behind `PLAINTEXT://`.
pub(super) fn parse_advertised(s: &str) -> Result<AdvertisedListener, String> {
    let rest = s.strip_prefix("PLAINTEXT://").unwrap_or(s);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("expected host:port, got {s:?}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!("invalid host in {s:?}"));
    }
    let port: u16 = port.parse().map_err(|_| format!("invalid port in {s:?}"))?;
    if port == 0 {
        return Err("the advertised port cannot be 0".to_owned());
    }
    Ok(AdvertisedListener {
        host: host.to_owned(),
        port,
    })
}

/// A byte count written for humans: `1048588`, `64KiB`, `1GiB`, `500MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Why a size did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ByteSizeError {
    /// No leading digits.
    #[error("expected a number of bytes with an optional unit (e.g. 1048576, 64KiB, 1GiB)")]
    MissingNumber,
    /// A suffix that is not a known unit.
    #[error("unknown size unit {0:?}; use B, K/KiB, M/MiB, G/GiB, T/TiB or KB/MB/GB/TB")]
    UnknownUnit(String),
    /// The value does not fit 64 bits.
    #[error("size overflows 64 bits")]
    Overflow,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits_end);
        if number.is_empty() {
            return Err(ByteSizeError::MissingNumber);
        }
        let number: u64 = number.parse().map_err(|_| ByteSizeError::Overflow)?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(ByteSizeError::UnknownUnit(unit.trim().to_owned())),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or(ByteSizeError::Overflow)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the value exactly, so defaults in
    /// `--help` read as `100MiB` yet round-trip through [`FromStr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> Result<u64, ByteSizeError> {
        s.parse::<ByteSize>().map(|b| b.0)
    }

    #[test]
    fn sizes_parse_plain_numbers_and_units() {
        assert_eq!(size("1048588"), Ok(1_048_588));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("12B"), Ok(12));
        assert_eq!(size("64KiB"), Ok(65_536));
        assert_eq!(size("64k"), Ok(65_536));
        assert_eq!(size("100MiB"), Ok(104_857_600));
        assert_eq!(size("1GiB"), Ok(1_073_741_824));
        assert_eq!(size("1gib"), Ok(1_073_741_824));
        assert_eq!(size("2T"), Ok(2 << 40));
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("1 GiB"), Ok(1_073_741_824));
        assert_eq!(size(" 3kb "), Ok(3_000));
    }

    #[test]
    fn sizes_reject_garbage_and_overflow() {
        assert_eq!(size(""), Err(ByteSizeError::MissingNumber));
        assert_eq!(size("GiB"), Err(ByteSizeError::MissingNumber));
        assert_eq!(size("-1"), Err(ByteSizeError::MissingNumber));
        assert_eq!(
            size("1.5GiB"),
            Err(ByteSizeError::UnknownUnit(".5GiB".into()))
        );
        assert_eq!(
            size("10 parsecs"),
            Err(ByteSizeError::UnknownUnit("parsecs".into()))
        );
        assert_eq!(size("99999999999999999999"), Err(ByteSizeError::Overflow));
        assert_eq!(size("16777216TiB"), Err(ByteSizeError::Overflow));
    }

    #[test]
    fn sizes_display_round_trips() {
        for value in [
            0,
            1,
            1_048_588,
            1 << 10,
            100 << 20,
            3 << 30,
            5 << 40,
            1_000_000,
        ] {
            let shown = ByteSize(value).to_string();
            assert_eq!(size(&shown), Ok(value), "{shown}");
        }
        assert_eq!(ByteSize(100 << 20).to_string(), "100MiB");
    }

    #[test]
    fn advertised_listener_unbrackets_ipv6_hosts() {
        assert_eq!(
            parse_advertised("[::1]:9092").map(|a| a.host),
            Ok("::1".to_owned())
        );
    }
}
