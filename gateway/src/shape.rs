//! Request shapes: a walk over a request body that bounds every array count
//! by the bytes that are actually there, before `kafka-protocol` decodes it.
//!
//! `kafka-protocol` 0.18 reserves `Vec::with_capacity(count)` with each
//! array's count as read from the wire, before it decodes a single element.
//! Twenty bytes declaring two billion topics make it ask for hundreds of
//! gigabytes; the allocation fails and Rust aborts the process: one frame
//! takes the broker down. So a handler describes its request's layout as a
//! [`Field`] list (mirroring the crate's generated decoder, version by
//! version) and decodes through
//! [`ApiRequest::decode_bounded`](crate::dispatch::ApiRequest::decode_bounded),
//! which first walks the body with [`check`]: every array must fit its count
//! of smallest-possible elements in the bytes that remain. A request that
//! passes allocates at most a small multiple of its own size; one that fails
//! closes the connection as any malformed request does.
//!
//! The walk reads lengths and counts only; it never allocates. Flexible
//! versions (KIP-482) are those whose request header is v2, as the crate
//! decides them; their tagged fields are skipped by their declared size,
//! except tags the shape names, which are walked as the crate decodes them.

use std::fmt;

/// How a field is encoded, as far as its extent goes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A fixed number of bytes: integers, booleans, UUIDs.
    Fixed(usize),
    /// A (nullable) string: INT16 length, or an unsigned varint of length
    /// plus one in flexible versions.
    String,
    /// (Nullable) bytes, records included: INT32 length, or a varint of
    /// length plus one in flexible versions.
    Bytes,
    /// An array of structs with these fields.
    Array(&'static [Field]),
    /// An array of fixed-size elements of this many bytes.
    FixedArray(usize),
    /// An array of (nullable) strings: no tagged fields per element.
    StringArray,
    /// A struct with these fields, not in an array.
    Struct(&'static [Field]),
}

/// One field of a request: its encoding and the versions that carry it.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The encoding.
    pub kind: Kind,
    /// First version with the field.
    pub min: i16,
    /// Last version with the field.
    pub max: i16,
    /// For a tagged field, its tag.
    pub tag: Option<u32>,
}

impl Field {
    /// A field carried from `min` to `max`.
    pub const fn new(kind: Kind, min: i16, max: i16) -> Self {
        Self {
            kind,
            min,
            max,
            tag: None,
        }
    }

    /// A field carried from `min` on.
    pub const fn since(kind: Kind, min: i16) -> Self {
        Self::new(kind, min, i16::MAX)
    }

    /// A field of every version.
    pub const fn always(kind: Kind) -> Self {
        Self::new(kind, 0, i16::MAX)
    }

    /// A tagged field (flexible versions only) with tag `tag` from `min` on.
    pub const fn tagged(kind: Kind, tag: u32, min: i16) -> Self {
        Self {
            kind,
            min,
            max: i16::MAX,
            tag: Some(tag),
        }
    }

    fn in_version(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// A one-byte field.
pub const INT8: Kind = Kind::Fixed(1);
/// A two-byte field.
pub const INT16: Kind = Kind::Fixed(2);
/// A four-byte field.
pub const INT32: Kind = Kind::Fixed(4);
/// An eight-byte field.
pub const INT64: Kind = Kind::Fixed(8);
/// A UUID.
pub const UUID: Kind = Kind::Fixed(16);
/// A boolean.
pub const BOOLEAN: Kind = Kind::Fixed(1);

/// Why a body does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The body ends inside a field.
    Truncated {
        /// Where the field starts.
        at: usize,
    },
    /// A negative length or count other than the null marker -1.
    NegativeLength {
        /// Where the length starts.
        at: usize,
        /// The value.
        length: i64,
    },
    /// A varint longer than five bytes.
    VarintTooLong {
        /// Where the varint starts.
        at: usize,
    },
    /// An array whose count cannot fit in the bytes that remain.
    ArrayTooLong {
        /// Where the count starts.
        at: usize,
        /// The declared count.
        count: u64,
        /// Bytes left after the count.
        remaining: usize,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::Truncated { at } => write!(f, "body ends inside the field at byte {at}"),
            ShapeError::NegativeLength { at, length } => {
                write!(f, "negative length {length} at byte {at}")
            }
            ShapeError::VarintTooLong { at } => {
                write!(f, "varint longer than 5 bytes at byte {at}")
            }
            ShapeError::ArrayTooLong {
                at,
                count,
                remaining,
            } => write!(
                f,
                "array at byte {at} declares {count} elements but only {remaining} bytes follow"
            ),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Walks `body` as a request of `fields` at `version`; returns the bytes the
/// walk consumed. `flexible` says whether the version uses KIP-482 compact
/// encodings and tagged fields.
pub fn check(
    fields: &[Field],
    body: &[u8],
    version: i16,
    flexible: bool,
) -> Result<usize, ShapeError> {
    let mut walker = Walker {
        body,
        at: 0,
        version,
        flexible,
    };
    walker.fields(fields)?;
    Ok(walker.at)
}

struct Walker<'a> {
    body: &'a [u8],
    at: usize,
    version: i16,
    flexible: bool,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.at)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ShapeError> {
        let at = self.at;
        let end = at.checked_add(n).ok_or(ShapeError::Truncated { at })?;
        let bytes = self.body.get(at..end).ok_or(ShapeError::Truncated { at })?;
        self.at = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: u64) -> Result<(), ShapeError> {
        let at = self.at;
        let n = usize::try_from(n).map_err(|_| ShapeError::Truncated { at })?;
        self.take(n).map(|_| ())
    }

    fn int(&mut self, width: usize) -> Result<i64, ShapeError> {
        let bytes = self.take(width)?;
        Ok(bytes.iter().fold(
            if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                -1
            } else {
                0
            },
            |value, &b| (value << 8) | i64::from(b),
        ))
    }

    fn varint(&mut self) -> Result<u64, ShapeError> {
        let start = self.at;
        let mut value = 0u64;
        for shift in 0..5 {
            let byte = *self
                .take(1)?
                .first()
                .ok_or(ShapeError::Truncated { at: start })?;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::VarintTooLong { at: start })
    }

    /// A length or count: `None` for null, else its value.
    fn length(&mut self, width: usize) -> Result<Option<u64>, ShapeError> {
        let at = self.at;
        if self.flexible {
            return Ok(self.varint()?.checked_sub(1));
        }
        match self.int(width)? {
            -1 => Ok(None),
            n if n < 0 => Err(ShapeError::NegativeLength { at, length: n }),
            // Non-negative here, so the conversion cannot fail.
            n => Ok(Some(n.unsigned_abs())),
        }
    }

    fn fields(&mut self, fields: &[Field]) -> Result<(), ShapeError> {
        for field in fields {
            if field.tag.is_none() && field.in_version(self.version) {
                self.kind(field.kind)?;
            }
        }
        if self.flexible {
            let count = self.varint()?;
            for _ in 0..count {
                let tag = self.varint()?;
                let size = self.varint()?;
                let known = fields
                    .iter()
                    .find(|f| f.tag.map(u64::from) == Some(tag) && f.in_version(self.version));
                match known {
                    // The crate decodes a known tag from the stream itself,
                    // whatever size it declares; so does the walk.
                    Some(field) => self.kind(field.kind)?,
                    None => self.skip(size)?,
                }
            }
        }
        Ok(())
    }

    fn array(&mut self, element_min: usize) -> Result<u64, ShapeError> {
        let at = self.at;
        let count = self.length(4)?.unwrap_or(0);
        let remaining = self.remaining();
        let fits = count
            .checked_mul(element_min.max(1) as u64)
            .is_some_and(|bytes| bytes <= remaining as u64);
        if !fits {
            return Err(ShapeError::ArrayTooLong {
                at,
                count,
                remaining,
            });
        }
        Ok(count)
    }

    fn kind(&mut self, kind: Kind) -> Result<(), ShapeError> {
        match kind {
            Kind::Fixed(width) => self.take(width).map(|_| ()),
            Kind::String => {
                let length = self.length(2)?;
                self.skip(length.unwrap_or(0))
            }
            Kind::Bytes => {
                let length = self.length(4)?;
                self.skip(length.unwrap_or(0))
            }
            Kind::Array(fields) => {
                let count = self.array(min_size(fields, self.version, self.flexible))?;
                for _ in 0..count {
                    self.fields(fields)?;
                }
                Ok(())
            }
            Kind::FixedArray(width) => {
                let count = self.array(width)?;
                self.skip(count.saturating_mul(width as u64))
            }
            Kind::StringArray => {
                let width = if self.flexible { 1 } else { 2 };
                let count = self.array(width)?;
                for _ in 0..count {
                    let length = self.length(2)?;
                    self.skip(length.unwrap_or(0))?;
                }
                Ok(())
            }
            Kind::Struct(fields) => self.fields(fields),
        }
    }
}

/// The fewest bytes a struct of `fields` encodes to at `version`.
fn min_size(fields: &[Field], version: i16, flexible: bool) -> usize {
    let length_width = |classic: usize| if flexible { 1 } else { classic };
    let own: usize = fields
        .iter()
        .filter(|field| field.tag.is_none() && field.in_version(version))
        .map(|field| match field.kind {
            Kind::Fixed(width) => width,
            Kind::String => length_width(2),
            Kind::Bytes | Kind::Array(_) | Kind::FixedArray(_) | Kind::StringArray => {
                length_width(4)
            }
            Kind::Struct(inner) => min_size(inner, version, flexible),
        })
        .sum();
    (own + usize::from(flexible)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &[Field] = &[Field::always(INT32), Field::always(Kind::String)];
    const SHAPE: &[Field] = &[
        Field::always(INT16),
        Field::always(Kind::Array(ITEM)),
        Field::since(Kind::FixedArray(4), 2),
        Field::tagged(Kind::String, 0, 1),
    ];

    fn classic(count: i32, items: &[(i32, &str)]) -> Vec<u8> {
        let mut body = 7_i16.to_be_bytes().to_vec();
        body.extend(count.to_be_bytes());
        for (value, text) in items {
            body.extend(value.to_be_bytes());
            body.extend(i16::try_from(text.len()).expect("short").to_be_bytes());
            body.extend(text.as_bytes());
        }
        body
    }

    #[test]
    fn a_well_formed_body_is_walked_to_its_end() {
        let body = classic(2, &[(1, "ab"), (2, "")]);
        assert_eq!(check(SHAPE, &body, 0, false), Ok(body.len()));
        let null_array = classic(-1, &[]);
        assert_eq!(check(SHAPE, &null_array, 0, false), Ok(null_array.len()));
    }

    #[test]
    fn a_count_the_bytes_cannot_hold_is_refused_before_anything_is_read() {
        let body = classic(i32::MAX, &[(1, "ab")]);
        assert!(matches!(
            check(SHAPE, &body, 0, false),
            Err(ShapeError::ArrayTooLong {
                count: 2_147_483_647,
                ..
            })
        ));
        // Each element takes at least 6 bytes: 2 elements need 12.
        let mut short = classic(2, &[]);
        short.extend([0; 11]);
        assert!(matches!(
            check(SHAPE, &short, 0, false),
            Err(ShapeError::ArrayTooLong { count: 2, .. })
        ));
    }

    #[test]
    fn flexible_bodies_use_varints_and_walk_known_tags() {
        // INT16, compact array of one item, compact int array of 0x7fff_fffe
        // elements (a huge varint), no tags.
        let mut body = vec![0, 7, 2, 0, 0, 0, 1, 3, b'a', b'b', 0];
        body.extend([0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(matches!(
            check(SHAPE, &body, 2, true),
            Err(ShapeError::ArrayTooLong { .. })
        ));
        // The same with an empty int array, then a known tag (0, declared
        // size 0 but a 2-byte string follows, as the crate would read it)
        // and an unknown tag skipped by its size.
        let mut body = vec![0, 7, 2, 0, 0, 0, 1, 3, b'a', b'b', 0, 1];
        body.extend([2, 0, 0, 3, b'x', b'y', 9, 2, 0xaa, 0xbb]);
        assert_eq!(check(SHAPE, &body, 2, true), Ok(body.len()));
    }

    #[test]
    fn truncation_negative_lengths_and_long_varints_are_refused() {
        let body = classic(1, &[(1, "abc")]);
        assert!(matches!(
            check(SHAPE, &body[..body.len() - 1], 0, false),
            Err(ShapeError::Truncated { .. })
        ));
        let mut negative = classic(1, &[]);
        negative.extend(5_i32.to_be_bytes());
        negative.extend((-2_i16).to_be_bytes());
        assert!(matches!(
            check(SHAPE, &negative, 0, false),
            Err(ShapeError::NegativeLength { length: -2, .. })
        ));
        let long = [0, 7, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(matches!(
            check(SHAPE, &long, 2, true),
            Err(ShapeError::VarintTooLong { at: 2 })
        ));
    }
}
