//! The format of a column block, version 1: its layout, the kinds a column
//! records, the number primitives (varints, zigzag, decimal scales) the
//! encoder, the decoder and rollup blocks share, and the limits decoding
//! enforces.
//!
//! Column blocks: a lossless, compact, column-oriented encoding of a sequence
//! of similar JSON rows (the successive reports of one device, or its rollup
//! rows), meant to be sealed with zstd and kept as one SQLite row.
//!
//! Each row is flattened into leaves (scalars, empty arrays, empty objects),
//! each at a path of segments: an object key or an array index. Every
//! distinct path is a column, numbered in first-seen order. For every row a
//! column records a kind (absent, null, false, true, int, uint, decimal
//! float, raw float, same string, new string, empty array, empty object), and
//! the values go to per-kind streams:
//!
//! - int: zigzag delta against the column's previous int, as a LEB128 varint;
//!   uint (only above `i64::MAX`): the plain varint;
//! - decimal float: the column has one scale `k` in `0..=6` and the value is
//!   exactly `scaled as f64 / 10^k` for an integer `|scaled| < 2^53`
//!   ([`decimal_value`], the one formula both sides use, checked bit for
//!   bit): a zigzag delta varint of `scaled` against the column's previous
//!   one. The scale starts at the fewest decimals the first such float needs
//!   and rises (re-encoding the column's decimals) when a later float needs
//!   more;
//! - raw float (any float the column's scale cannot hold: `-0.0`,
//!   `0.1 + 0.2`, subnormals, huge values): the f64 bits XOR the column's
//!   previous float's bits, 8 bytes, byte-transposed per column so that zstd
//!   sees runs of equal bytes. Decided per value, so one odd float does not
//!   turn a whole column raw;
//! - string: "same as the column's previous string" (a kind, no bytes) or a
//!   new one (varint length, UTF-8 bytes).
//!
//! # Layout (version 1)
//!
//! ```text
//! version    u8 = 1
//! rows       varint
//! columns    varint
//! lengths    7 varints: the byte length of each section below, in order
//! paths      per column: varint bytes shared with the previous column's path,
//!            varint suffix length, suffix. A path is a sequence of segments:
//!            varint(len << 1) + key bytes, or varint(index << 1 | 1).
//! kinds      per column: runs varint(len << 4 | kind), summing to `rows`
//! scales     per column: one byte, its decimal scale or 255
//! ints       per column, in row order: int and uint varints
//! decimals   per column, in row order: zigzag delta varints
//! raws       per column: byte 0 of each of its raw floats, then byte 1, ...
//! strings    per column, in row order: varint length + bytes of new strings
//! ```
//!
//! The encoder keeps these streams per column as rows arrive, so a push costs
//! about the size of the row's values, and [`BlockEncoder::encode`] only
//! concatenates. [`BlockEncoder::push_serialize`] takes a row as any
//! `Serialize` value and gives the block `push(&serde_json::to_value(row))`
//! would, byte for byte, without building the `Value`. Decoding checks every count against the input and caps what
//! it builds, so corrupt input gives an error, never a panic or an unbounded
//! allocation. The caps also bound legitimate blocks: at most 2^20 rows, paths
//! of at most 1024 segments (serde_json's parser stops at 128), about 256 MiB
//! of decoded values (some 50 times a 720-row block of reports), and rows
//! times (columns + path nodes) at most 2^28.

/// The format version this module writes and reads.
pub(super) const VERSION: u8 = 1;

/// Kind: the column has no value in this row.
pub(super) const ABSENT: u8 = 0;
/// Kind: `null`.
pub(super) const NULL: u8 = 1;
/// Kind: `false`.
pub(super) const FALSE: u8 = 2;
/// Kind: `true`.
pub(super) const TRUE: u8 = 3;
/// Kind: an integer that fits an `i64`, in the ints stream as a zigzag delta.
pub(super) const INT: u8 = 4;
/// Kind: an integer above `i64::MAX`, in the ints stream as a plain varint.
pub(super) const UINT: u8 = 5;
/// Kind: a float exact at the column's decimal scale, in the decimals stream.
pub(super) const DECIMAL: u8 = 6;
/// Kind: any other float, in the raws stream.
pub(super) const RAW: u8 = 7;
/// Kind: the same string as the column's previous string.
pub(super) const STRING_SAME: u8 = 8;
/// Kind: a new string, in the strings stream.
pub(super) const STRING_NEW: u8 = 9;
/// Kind: `[]`.
pub(super) const EMPTY_ARRAY: u8 = 10;
/// Kind: `{}`.
pub(super) const EMPTY_OBJECT: u8 = 11;
/// The highest kind.
pub(super) const LAST_KIND: u8 = EMPTY_OBJECT;

pub(crate) use crate::store::decimal::{
    MAX_SCALE, SCALED_LIMIT, decimal_value, scaled_at, smallest_scale,
};
/// The scale byte of a column without decimal floats.
pub(super) const NO_SCALE: u8 = u8::MAX;

/// The number of sections after the header.
pub(super) const SECTIONS: usize = 7;
/// The most rows a block may have when decoded.
pub(super) const MAX_ROWS: usize = 1 << 20;
/// The most segments a path may have when decoded (serde_json's parser stops
/// at 128 levels of nesting).
pub(super) const MAX_DEPTH: usize = 1024;
/// What decoding one block may build, in approximate bytes (path bytes,
/// leaves, keys, strings): about 50 times a 720-row block of reports.
pub(super) const DECODE_BUDGET: u64 = 256 << 20;
/// The budget taken by one leaf and by each node on its path.
pub(super) const NODE_COST: u64 = 64;
/// The most column and trie-node visits rebuilding the rows may take.
pub(super) const MAX_ASSEMBLY_STEPS: u64 = 1 << 28;
/// The most bytes a sealed block may decompress to.
pub(super) const MAX_ENCODED_BYTES: u64 = 256 << 20;

/// Why a block could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlockError {
    /// The input ends before the block does.
    #[error("column block is truncated")]
    Truncated,
    /// The input is not a valid block.
    #[error("column block is malformed: {0}")]
    Malformed(&'static str),
    /// The block was written by a format version this code does not read.
    #[error("column block has unsupported version {0}")]
    Version(u8),
    /// The block would decode to more than this module allows.
    #[error("column block is too large to decode")]
    TooLarge,
    /// The sealed block could not be decompressed.
    #[error("column block could not be decompressed: {0}")]
    Zstd(#[source] std::io::Error),
    /// A row given to [`BlockEncoder::push_serialize`] could not be turned
    /// into JSON (where `serde_json::to_value` fails too).
    #[error("row cannot be serialized to JSON: {0}")]
    Serialize(String),
}

/// Appends `value` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Maps small negative and positive numbers to small unsigned ones.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Undoes [`zigzag`].
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Reads varints and byte strings from untrusted input.
pub(crate) struct Reader<'a> {
    /// What is left to read.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Whether everything was read.
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// One byte.
    pub(crate) fn byte(&mut self) -> Result<u8, BlockError> {
        let (&first, rest) = self.rest.split_first().ok_or(BlockError::Truncated)?;
        self.rest = rest;
        Ok(first)
    }

    /// A LEB128 varint of at most 64 bits.
    pub(crate) fn varint(&mut self) -> Result<u64, BlockError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(BlockError::Malformed("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(BlockError::Malformed("varint longer than 10 bytes"));
            }
        }
    }

    /// A varint used as a length or count (anything that does not fit a
    /// `usize` cannot fit the input either).
    pub(crate) fn length(&mut self) -> Result<usize, BlockError> {
        usize::try_from(self.varint()?).map_err(|_| BlockError::Truncated)
    }

    /// The next `len` bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], BlockError> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(BlockError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// Fails unless everything was read.
    pub(super) fn finish(&self, what: &'static str) -> Result<(), BlockError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(BlockError::Malformed(what))
        }
    }
}
