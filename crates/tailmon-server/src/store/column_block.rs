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

use std::io::Read;

use serde_json::{Map, Number, Value};

/// The format version this module writes and reads.
const VERSION: u8 = 1;

/// Kind: the column has no value in this row.
const ABSENT: u8 = 0;
/// Kind: `null`.
const NULL: u8 = 1;
/// Kind: `false`.
const FALSE: u8 = 2;
/// Kind: `true`.
const TRUE: u8 = 3;
/// Kind: an integer that fits an `i64`, in the ints stream as a zigzag delta.
const INT: u8 = 4;
/// Kind: an integer above `i64::MAX`, in the ints stream as a plain varint.
const UINT: u8 = 5;
/// Kind: a float exact at the column's decimal scale, in the decimals stream.
const DECIMAL: u8 = 6;
/// Kind: any other float, in the raws stream.
const RAW: u8 = 7;
/// Kind: the same string as the column's previous string.
const STRING_SAME: u8 = 8;
/// Kind: a new string, in the strings stream.
const STRING_NEW: u8 = 9;
/// Kind: `[]`.
const EMPTY_ARRAY: u8 = 10;
/// Kind: `{}`.
const EMPTY_OBJECT: u8 = 11;
/// The highest kind.
const LAST_KIND: u8 = EMPTY_OBJECT;

/// The most decimals a decimal column may have.
const MAX_SCALE: u8 = 6;
/// The scale byte of a column without decimal floats.
const NO_SCALE: u8 = u8::MAX;
/// `10^k` for every scale `k`, exact in f64.
const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Scaled decimals stay below this in magnitude, so they are exact in f64.
const SCALED_LIMIT: u64 = 1 << 53;

/// The number of sections after the header.
const SECTIONS: usize = 7;
/// The most rows a block may have when decoded.
const MAX_ROWS: usize = 1 << 20;
/// The most segments a path may have when decoded (serde_json's parser stops
/// at 128 levels of nesting).
const MAX_DEPTH: usize = 1024;
/// What decoding one block may build, in approximate bytes (path bytes,
/// leaves, keys, strings): about 50 times a 720-row block of reports.
const DECODE_BUDGET: u64 = 256 << 20;
/// The budget taken by one leaf and by each node on its path.
const NODE_COST: u64 = 64;
/// The most column and trie-node visits rebuilding the rows may take.
const MAX_ASSEMBLY_STEPS: u64 = 1 << 28;
/// The most bytes a sealed block may decompress to.
const MAX_ENCODED_BYTES: u64 = 256 << 20;

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

/// The float that `scaled` hundredths (or other `10^-scale`) stand for: the
/// one formula the encoder checks against and the decoder applies.
pub(crate) fn decimal_value(scaled: i64, scale: u8) -> f64 {
    let divisor = POW10.get(usize::from(scale)).copied().unwrap_or(1.0);
    scaled as f64 / divisor
}

/// `x` as an integer number of `10^-scale`, when [`decimal_value`] gives
/// back exactly `x` (same bits) from it.
pub(crate) fn scaled_at(x: f64, scale: u8) -> Option<i64> {
    let multiplier = POW10.get(usize::from(scale)).copied()?;
    let product = x * multiplier;
    if product.is_nan() || product.abs() >= SCALED_LIMIT as f64 {
        return None;
    }
    // Rounds half away from zero without `f64::round`, a libm call on
    // baseline x86-64; a wrong guess only fails the check below.
    let scaled = (product + 0.5f64.copysign(product)) as i64;
    (scaled.unsigned_abs() < SCALED_LIMIT && decimal_value(scaled, scale).to_bits() == x.to_bits())
        .then_some(scaled)
}

/// The fewest decimals `x` is exact with, and `x` scaled by them.
pub(crate) fn smallest_scale(x: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|scale| scaled_at(x, scale).map(|scaled| (scale, scaled)))
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

/// What one column holds in one row: a scalar, or an empty array or object.
#[derive(Clone, Copy)]
enum Leaf<'a> {
    /// `null`.
    Null,
    /// `false` or `true`.
    Bool(bool),
    /// A number serde_json holds as an `i64`.
    Int(i64),
    /// A number serde_json holds as a `u64` (an int kind when it fits `i64`).
    Uint(u64),
    /// A number serde_json holds as a (finite) `f64`.
    Float(f64),
    /// A string.
    Str(&'a str),
    /// `[]`.
    EmptyArray,
    /// `{}`.
    EmptyObject,
}

impl<'a> Leaf<'a> {
    #[cfg(test)]
    /// The leaf `value` is, when the walk found it a scalar or empty.
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(number) => Self::of_number(number),
            Value::String(string) => Self::Str(string),
            Value::Array(_) => Self::EmptyArray,
            Value::Object(_) => Self::EmptyObject,
        }
    }

    /// The leaf of a number, read the way serde_json reads it back.
    fn of_number(number: &Number) -> Self {
        if let Some(int) = number.as_i64() {
            Self::Int(int)
        } else if let Some(uint) = number.as_u64() {
            Self::Uint(uint)
        } else {
            // Without serde_json's `arbitrary_precision` every other number
            // is a finite f64; a NaN here would fail decoding, not vanish.
            Self::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }
}

/// One step of a path in the encoder's trie.
enum Segment {
    /// An object key.
    Key(Box<str>),
    /// An array index.
    Index(usize),
}

/// Appends a segment in the path encoding.
fn put_segment(out: &mut Vec<u8>, segment: &Segment) {
    match segment {
        Segment::Key(key) => {
            put_varint(out, (key.len() as u64) << 1);
            out.extend_from_slice(key.as_bytes());
        }
        Segment::Index(index) => put_varint(out, ((*index as u64) << 1) | 1),
    }
}

/// A node of the encoder's trie of paths: finds a leaf's column by comparing
/// keys with the ones seen before, without hashing.
struct TrieNode {
    /// The parent node (the root is its own parent).
    parent: usize,
    /// The step from the parent; `None` at the root.
    segment: Option<Segment>,
    /// Children by object key, sorted by key (the order serde_json's map
    /// iterates in, so a row of the same shape walks them in order).
    keys: Vec<(Box<str>, usize)>,
    /// Children by array index.
    items: Vec<usize>,
    /// The column of a leaf at this path, once one was seen.
    column: Option<usize>,
    /// [`BlockEncoder::push_serialize`]'s guess of the children, in the order
    /// the keys of the previous row's object here arrived.
    arrival: Vec<Arrival>,
    /// The last push that reached this node through a key, to find a key
    /// that one object has twice.
    seen: u64,
}

impl TrieNode {
    /// A node without children or column.
    fn new(parent: usize, segment: Option<Segment>) -> Self {
        Self {
            parent,
            segment,
            keys: Vec::new(),
            items: Vec::new(),
            column: None,
            arrival: Vec::new(),
            seen: 0,
        }
    }
}

/// The child an object's key at some position found in the previous row.
#[derive(Clone, Copy)]
struct Arrival {
    /// The child node.
    child: usize,
    /// The key, when it was a `'static` name (a struct field): the same
    /// address and length then mean the same key, without comparing bytes.
    name: Option<&'static str>,
}

/// A run of rows with the same kind in one column.
#[derive(Clone, Copy)]
struct Run {
    /// The kind.
    kind: u8,
    /// How many rows.
    len: u32,
}

/// One column being encoded: its kinds and value streams so far.
struct Column {
    /// The encoded path.
    path: Vec<u8>,
    /// The rows this column has a kind for (all rows once a push ends).
    rows: usize,
    /// The kinds, run-length encoded.
    runs: Vec<Run>,
    /// Int deltas and uints.
    ints: Vec<u8>,
    /// The previous int, the base of the next delta.
    prev_int: i64,
    /// Deltas of the scaled decimal floats.
    decimals: Vec<u8>,
    /// The previous scaled decimal.
    prev_decimal: i64,
    /// The largest magnitude among the scaled decimals.
    max_decimal: u64,
    /// The decimal scale, or [`NO_SCALE`] before the first decimal float.
    scale: u8,
    /// Raw floats: bits XOR the previous float's bits, little-endian.
    raws: Vec<u8>,
    /// The bits of the previous float, decimal or raw.
    prev_float: u64,
    /// New strings: varint length and bytes.
    strings: Vec<u8>,
    /// Where the previous string's bytes are in `strings`.
    prev_string: Option<(usize, usize)>,
}

impl Column {
    /// A column first seen at row `rows`: absent from the rows before.
    fn new(path: Vec<u8>, rows: usize) -> Self {
        let mut column = Self {
            path,
            rows: 0,
            runs: Vec::new(),
            ints: Vec::new(),
            prev_int: 0,
            decimals: Vec::new(),
            prev_decimal: 0,
            max_decimal: 0,
            scale: NO_SCALE,
            raws: Vec::new(),
            prev_float: 0,
            strings: Vec::new(),
            prev_string: None,
        };
        column.push_kinds(ABSENT, rows);
        column
    }

    /// Records one more row of `kind`.
    fn push_kind(&mut self, kind: u8) {
        self.rows += 1;
        if let Some(last) = self.runs.last_mut()
            && last.kind == kind
            && last.len < u32::MAX
        {
            last.len += 1;
        } else {
            self.runs.push(Run { kind, len: 1 });
        }
    }

    /// Records `count` more rows of `kind`.
    fn push_kinds(&mut self, kind: u8, count: usize) {
        self.rows += count;
        let mut left = count;
        while left > 0 {
            match self.runs.last_mut() {
                Some(last) if last.kind == kind && last.len < u32::MAX => {
                    let take = left.min((u32::MAX - last.len) as usize);
                    last.len += take as u32;
                    left -= take;
                }
                _ => {
                    let take = left.min(u32::MAX as usize);
                    self.runs.push(Run {
                        kind,
                        len: take as u32,
                    });
                    left -= take;
                }
            }
        }
    }

    /// Records a leaf: a scalar, or an array or object the caller saw empty.
    fn push(&mut self, leaf: Leaf<'_>) {
        let kind = match leaf {
            Leaf::Null => NULL,
            Leaf::Bool(false) => FALSE,
            Leaf::Bool(true) => TRUE,
            Leaf::Int(int) => self.push_int(int),
            Leaf::Uint(uint) => match i64::try_from(uint) {
                Ok(int) => self.push_int(int),
                Err(_) => {
                    put_varint(&mut self.ints, uint);
                    UINT
                }
            },
            Leaf::Float(x) => self.push_float(x),
            Leaf::Str(string) => self.push_string(string),
            Leaf::EmptyArray => EMPTY_ARRAY,
            Leaf::EmptyObject => EMPTY_OBJECT,
        };
        self.push_kind(kind);
    }

    /// Writes an int to the ints and returns its kind.
    fn push_int(&mut self, int: i64) -> u8 {
        put_varint(&mut self.ints, zigzag(int.wrapping_sub(self.prev_int)));
        self.prev_int = int;
        INT
    }

    /// Writes a float to the decimals or the raws and returns its kind.
    fn push_float(&mut self, x: f64) -> u8 {
        let kind = match self.decimal(x) {
            Some(scaled) => {
                put_varint(
                    &mut self.decimals,
                    zigzag(scaled.wrapping_sub(self.prev_decimal)),
                );
                self.prev_decimal = scaled;
                self.max_decimal = self.max_decimal.max(scaled.unsigned_abs());
                DECIMAL
            }
            None => {
                let xor = x.to_bits() ^ self.prev_float;
                self.raws.extend_from_slice(&xor.to_le_bytes());
                RAW
            }
        };
        self.prev_float = x.to_bits();
        kind
    }

    /// `x` scaled at the column's scale, raising the scale first when `x`
    /// needs more decimals and the column's decimals so far allow it.
    fn decimal(&mut self, x: f64) -> Option<i64> {
        if self.scale != NO_SCALE
            && let Some(scaled) = scaled_at(x, self.scale)
        {
            return Some(scaled);
        }
        let (scale, scaled) = smallest_scale(x)?;
        if self.scale == NO_SCALE {
            self.scale = scale;
            return Some(scaled);
        }
        (scale > self.scale && self.rescale(scale)).then_some(scaled)
    }

    /// Re-encodes the decimals at the larger `scale`, if they all stay below
    /// 2^53 there (then each still decodes to the same bits: the same exact
    /// quotient, correctly rounded). Rare: at most six times per column.
    fn rescale(&mut self, scale: u8) -> bool {
        let Some(steps) = scale.checked_sub(self.scale) else {
            return false;
        };
        let factor = 10u64.pow(u32::from(steps));
        let max_decimal = match self.max_decimal.checked_mul(factor) {
            Some(max) if max < SCALED_LIMIT => max,
            _ => return false,
        };
        let factor = factor as i64;
        let mut reader = Reader::new(&self.decimals);
        let mut decimals = Vec::with_capacity(self.decimals.len() + self.decimals.len() / 2);
        let (mut old, mut new) = (0i64, 0i64);
        while !reader.is_empty() {
            let Ok(delta) = reader.varint() else {
                return false;
            };
            old = old.wrapping_add(unzigzag(delta));
            let value = old.wrapping_mul(factor);
            put_varint(&mut decimals, zigzag(value.wrapping_sub(new)));
            new = value;
        }
        self.decimals = decimals;
        self.prev_decimal = new;
        self.max_decimal = max_decimal;
        self.scale = scale;
        true
    }

    /// Writes a string unless it repeats the previous one; returns its kind.
    fn push_string(&mut self, string: &str) -> u8 {
        if let Some((start, len)) = self.prev_string
            && self.strings.get(start..start + len) == Some(string.as_bytes())
        {
            return STRING_SAME;
        }
        put_varint(&mut self.strings, string.len() as u64);
        let start = self.strings.len();
        self.strings.extend_from_slice(string.as_bytes());
        self.prev_string = Some((start, string.len()));
        STRING_NEW
    }

    /// The heap memory this column holds.
    fn heap_bytes(&self) -> usize {
        self.path.capacity()
            + self.runs.capacity() * size_of::<Run>()
            + self.ints.capacity()
            + self.decimals.capacity()
            + self.raws.capacity()
            + self.strings.capacity()
    }
}

/// Appends raw floats (8 little-endian bytes each) byte-transposed: byte 0
/// of every float, then byte 1, and so on.
fn put_transposed(out: &mut Vec<u8>, raws: &[u8]) {
    for byte in 0..8 {
        out.extend(raws.iter().skip(byte).step_by(8));
    }
}

/// Appends rows one at a time; memory held stays close to the encoded size
/// (per-column streams, not a `Vec<Value>`).
pub(crate) struct BlockEncoder {
    /// Rows pushed.
    rows: usize,
    /// The trie of paths seen; node 0 is the root (the empty path).
    nodes: Vec<TrieNode>,
    /// The columns, in first-seen order.
    columns: Vec<Column>,
    /// Leaves of the row being pushed so far.
    visited: usize,
    /// The number of the current [`push_serialize`](Self::push_serialize),
    /// for [`TrieNode::seen`].
    stamp: u64,
    /// Rows [`push_tape`](Self::push_tape) took the fast path for.
    #[cfg(test)]
    fast_rows: usize,
}

impl Default for BlockEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockEncoder {
    /// An empty block.
    pub(crate) fn new() -> Self {
        Self {
            rows: 0,
            nodes: vec![TrieNode::new(0, None)],
            columns: Vec::new(),
            visited: 0,
            stamp: 0,
            #[cfg(test)]
            fast_rows: 0,
        }
    }

    /// Appends one row: any JSON value. The reference that
    /// [`BlockEncoder::push_serialize`] is tested against.
    #[cfg(test)]
    pub(crate) fn push(&mut self, row: &serde_json::Value) {
        self.visited = 0;
        self.walk(0, row);
        self.end_row();
    }

    /// Appends `row` as [`push`](Self::push) appends
    /// `serde_json::to_value(row)`, with the same result byte for byte, but
    /// without building the `Value`: the row is serialized into a reused
    /// buffer, and its leaves go to their columns from there.
    ///
    /// Fails, leaving the encoder as it was, when `to_value` would fail (a
    /// map key that is not a string or a number, a non-finite float key,
    /// an `i128` or `u128` outside `i64` and `u64`, an error from the row's
    /// own `Serialize`), and also where `to_value` would panic (a map value
    /// without its key, a `Display` that fails in `collect_str`) or where
    /// serde_json's private marker structs (`RawValue`, `Number` under
    /// `arbitrary_precision`) come with other than one field.
    pub(crate) fn push_serialize<T: serde::Serialize + ?Sized>(
        &mut self,
        row: &T,
    ) -> Result<(), BlockError> {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                let pushed = self.push_serialize_with(row, &mut scratch);
                scratch.trim();
                pushed
            }
            // The row's `Serialize` pushes into another encoder: new buffers.
            Err(_) => self.push_serialize_with(row, &mut Scratch::new()),
        })
    }

    /// [`push_serialize`](Self::push_serialize) with these buffers.
    fn push_serialize_with<T: serde::Serialize + ?Sized>(
        &mut self,
        row: &T,
        scratch: &mut Scratch,
    ) -> Result<(), BlockError> {
        let tape = &mut scratch.tape;
        tape.events.clear();
        tape.arena.clear();
        row.serialize(TapeSerializer { tape: &mut *tape })?;
        if tape.events.is_empty() || tape.after(0) != tape.events.len() {
            return Err(BlockError::Serialize(
                "the row did not serialize to one value".into(),
            ));
        }
        self.push_tape(scratch);
        Ok(())
    }

    /// Appends the row in `tape`. When every leaf finds its column and no
    /// object has a key twice, the leaves go to their columns in the order
    /// they arrived: each column still gets its one value, and no column is
    /// new, so the order does not show. Otherwise the row is walked as
    /// [`walk`](Self::walk) walks its `Value`: keys sorted, the last of
    /// equal keys winning.
    fn push_tape(&mut self, scratch: &mut Scratch) {
        let Scratch {
            tape,
            resolved,
            entries,
        } = scratch;
        self.visited = 0;
        self.stamp = self.stamp.wrapping_add(1);
        resolved.clear();
        if self.resolve(tape, 0, 0, resolved).is_some() {
            #[cfg(test)]
            {
                self.fast_rows += 1;
            }
            for &(column, at) in resolved.iter() {
                if let (Some(column), Some(leaf)) = (self.columns.get_mut(column), tape.leaf(at)) {
                    column.push(leaf);
                    self.visited += 1;
                }
            }
        } else {
            entries.clear();
            self.walk_tape(tape, entries, 0, 0);
        }
        self.end_row();
    }

    /// Marks the columns the row just walked did not reach absent, and
    /// counts the row.
    fn end_row(&mut self) {
        let index = self.rows;
        self.rows += 1;
        if self.visited < self.columns.len() {
            for column in &mut self.columns {
                if column.rows == index {
                    column.push_kind(ABSENT);
                }
            }
        }
    }

    /// Rows pushed.
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Approximate heap memory held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let nodes: usize = self
            .nodes
            .iter()
            .map(|node| {
                node.keys.capacity() * size_of::<(Box<str>, usize)>()
                    + node
                        .keys
                        .iter()
                        .map(|(key, _)| 2 * key.len())
                        .sum::<usize>()
                    + node.items.capacity() * size_of::<usize>()
                    + node.arrival.capacity() * size_of::<Arrival>()
            })
            .sum();
        let columns: usize = self.columns.iter().map(Column::heap_bytes).sum();
        self.nodes.capacity() * size_of::<TrieNode>()
            + self.columns.capacity() * size_of::<Column>()
            + nodes
            + columns
    }

    /// The whole block so far, uncompressed and self-contained; the encoder
    /// stays usable.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut paths = Vec::new();
        let mut previous: &[u8] = &[];
        for column in &self.columns {
            let shared = previous
                .iter()
                .zip(&column.path)
                .take_while(|(a, b)| a == b)
                .count();
            let suffix = column.path.get(shared..).unwrap_or_default();
            put_varint(&mut paths, shared as u64);
            put_varint(&mut paths, suffix.len() as u64);
            paths.extend_from_slice(suffix);
            previous = &column.path;
        }
        let mut kinds = Vec::new();
        for column in &self.columns {
            for run in &column.runs {
                put_varint(&mut kinds, (u64::from(run.len) << 4) | u64::from(run.kind));
            }
        }
        let scales: Vec<u8> = self.columns.iter().map(|column| column.scale).collect();
        let total = |stream: fn(&Column) -> usize| self.columns.iter().map(stream).sum::<usize>();
        let lengths: [usize; SECTIONS] = [
            paths.len(),
            kinds.len(),
            scales.len(),
            total(|column| column.ints.len()),
            total(|column| column.decimals.len()),
            total(|column| column.raws.len()),
            total(|column| column.strings.len()),
        ];
        let mut out = Vec::with_capacity(lengths.iter().sum::<usize>() + 8 * (SECTIONS + 3));
        out.push(VERSION);
        put_varint(&mut out, self.rows as u64);
        put_varint(&mut out, self.columns.len() as u64);
        for length in lengths {
            put_varint(&mut out, length as u64);
        }
        out.extend_from_slice(&paths);
        out.extend_from_slice(&kinds);
        out.extend_from_slice(&scales);
        for column in &self.columns {
            out.extend_from_slice(&column.ints);
        }
        for column in &self.columns {
            out.extend_from_slice(&column.decimals);
        }
        for column in &self.columns {
            put_transposed(&mut out, &column.raws);
        }
        for column in &self.columns {
            out.extend_from_slice(&column.strings);
        }
        out
    }

    /// [`encode`](Self::encode), then zstd at `level`.
    pub(crate) fn seal(&self, level: i32) -> std::io::Result<Vec<u8>> {
        zstd::bulk::compress(&self.encode(), level)
    }

    #[cfg(test)]
    /// Records the leaves of `value`, found at trie node `node`.
    fn walk(&mut self, node: usize, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                let mut cursor = 0;
                for (key, child_value) in map {
                    if let Some(child) = self.key_child(node, &mut cursor, key) {
                        self.walk(child, child_value);
                    }
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, item) in items.iter().enumerate() {
                    if let Some(child) = self.index_child(node, index) {
                        self.walk(child, item);
                    }
                }
            }
            leaf => self.push_leaf(node, Leaf::of(leaf)),
        }
    }

    /// The child of `node` at `key`, created if new. Keys arrive sorted, as
    /// the children are: the fast path compares `key` with the child after
    /// the previous one (`cursor`), which is the one whenever the object has
    /// the same keys as last time.
    fn key_child(&mut self, node: usize, cursor: &mut usize, key: &str) -> Option<usize> {
        let keys = &self.nodes.get(node)?.keys;
        if let Some((known, child)) = keys.get(*cursor)
            && **known == *key
        {
            *cursor += 1;
            return Some(*child);
        }
        match keys.binary_search_by(|(known, _)| (**known).cmp(key)) {
            Ok(found) => {
                *cursor = found + 1;
                keys.get(found).map(|(_, child)| *child)
            }
            Err(at) => {
                let child = self.add_node(node, Segment::Key(key.into()));
                self.nodes
                    .get_mut(node)?
                    .keys
                    .insert(at, (key.into(), child));
                *cursor = at + 1;
                Some(child)
            }
        }
    }

    /// The child of `node` at `index`, created if new (elements are walked
    /// in order, so a new index is always the next one).
    fn index_child(&mut self, node: usize, index: usize) -> Option<usize> {
        if let Some(child) = self.nodes.get(node)?.items.get(index) {
            return Some(*child);
        }
        let child = self.add_node(node, Segment::Index(index));
        self.nodes.get_mut(node)?.items.push(child);
        Some(child)
    }

    /// The fast path of [`push_tape`](Self::push_tape): finds the column of
    /// every leaf of the value at `at` in `tape`, found at trie node `node`,
    /// without changing any column. Returns where the value ends, or `None`
    /// when a leaf has no column yet or an object has a key twice.
    fn resolve(
        &mut self,
        tape: &Tape,
        at: usize,
        node: usize,
        resolved: &mut Vec<(usize, usize)>,
    ) -> Option<usize> {
        match *tape.events.get(at)? {
            Event::Object(end) if end > at + 1 => {
                let mut next = at + 1;
                let mut entry = 0;
                while next < end {
                    let Event::Key(key) = *tape.events.get(next)? else {
                        return None;
                    };
                    let child = self.arrival_child(node, entry, key, tape)?;
                    let seen = &mut self.nodes.get_mut(child)?.seen;
                    if *seen == self.stamp {
                        return None;
                    }
                    *seen = self.stamp;
                    next = self.resolve(tape, next + 1, child, resolved)?;
                    entry += 1;
                }
                Some(end + 1)
            }
            Event::Array(end) if end > at + 1 => {
                let mut next = at + 1;
                let mut index = 0;
                while next < end {
                    let child = *self.nodes.get(node)?.items.get(index)?;
                    next = self.resolve(tape, next, child, resolved)?;
                    index += 1;
                }
                Some(end + 1)
            }
            Event::Key(_) | Event::End => None,
            _ => {
                resolved.push((self.nodes.get(node)?.column?, at));
                Some(tape.after(at))
            }
        }
    }

    /// The existing child of `node` at `key`, the `entry`-th key of its
    /// object: first the child the `entry`-th key found last time.
    fn arrival_child(
        &mut self,
        node: usize,
        entry: usize,
        key: Text,
        tape: &Tape,
    ) -> Option<usize> {
        let name = match key {
            Text::Static(name) => Some(name),
            Text::Arena(..) => None,
        };
        let current = self.nodes.get(node)?;
        let guess = current.arrival.get(entry).copied();
        if let Some(Arrival {
            child,
            name: Some(known),
        }) = guess
            && let Some(name) = name
            && std::ptr::eq(known, name)
        {
            return Some(child);
        }
        let key = tape.text(key);
        let child = match guess {
            Some(Arrival { child, .. })
                if matches!(
                    self.nodes.get(child),
                    Some(TrieNode { segment: Some(Segment::Key(known)), .. }) if **known == *key
                ) =>
            {
                child
            }
            _ => {
                let found = current
                    .keys
                    .binary_search_by(|(known, _)| (**known).cmp(key))
                    .ok()?;
                current.keys.get(found)?.1
            }
        };
        let arrival = &mut self.nodes.get_mut(node)?.arrival;
        let slot = Arrival { child, name };
        match arrival.get_mut(entry) {
            Some(known) => *known = slot,
            None => arrival.push(slot),
        }
        Some(child)
    }

    /// The slow path of [`push_tape`](Self::push_tape): records the leaves of
    /// the value at `at` in `tape`, found at trie node `node`, exactly as
    /// [`walk`](Self::walk) records those of the `Value` serde_json would
    /// build: object keys in sorted order, of equal keys only the last.
    fn walk_tape(
        &mut self,
        tape: &Tape,
        entries: &mut Vec<(usize, usize)>,
        at: usize,
        node: usize,
    ) {
        let Some(&event) = tape.events.get(at) else {
            return;
        };
        match event {
            Event::Object(end) if end > at + 1 => {
                let base = entries.len();
                let mut next = at + 1;
                while next < end {
                    entries.push((next, next + 1));
                    next = tape.after(next + 1);
                }
                if let Some(object) = entries.get_mut(base..)
                    && !object
                        .windows(2)
                        .all(|pair| tape.key(pair[0].0) < tape.key(pair[1].0))
                {
                    // Stable: equal keys stay in arrival order.
                    object.sort_by(|a, b| tape.key(a.0).cmp(tape.key(b.0)));
                }
                let mut cursor = 0;
                for entry in base..entries.len() {
                    let Some(&(key_at, value_at)) = entries.get(entry) else {
                        break;
                    };
                    let key = tape.key(key_at);
                    // serde_json's map keeps the last value of a key.
                    if let Some(&(later, _)) = entries.get(entry + 1)
                        && tape.key(later) == key
                    {
                        continue;
                    }
                    if let Some(child) = self.key_child(node, &mut cursor, key) {
                        self.walk_tape(tape, entries, value_at, child);
                    }
                }
                entries.truncate(base);
            }
            Event::Array(end) if end > at + 1 => {
                let mut next = at + 1;
                let mut index = 0;
                while next < end {
                    if let Some(child) = self.index_child(node, index) {
                        self.walk_tape(tape, entries, next, child);
                    }
                    next = tape.after(next);
                    index += 1;
                }
            }
            _ => {
                if let Some(leaf) = tape.leaf(at) {
                    self.push_leaf(node, leaf);
                }
            }
        }
    }

    /// Adds a trie node below `parent`.
    fn add_node(&mut self, parent: usize, segment: Segment) -> usize {
        self.nodes.push(TrieNode::new(parent, Some(segment)));
        self.nodes.len() - 1
    }

    /// Records a leaf at trie node `node`, creating its column if new.
    fn push_leaf(&mut self, node: usize, leaf: Leaf<'_>) {
        let column = match self.nodes.get(node).and_then(|n| n.column) {
            Some(column) => column,
            None => {
                let path = self.path_of(node);
                self.columns.push(Column::new(path, self.rows));
                let column = self.columns.len() - 1;
                if let Some(n) = self.nodes.get_mut(node) {
                    n.column = Some(column);
                }
                column
            }
        };
        if let Some(column) = self.columns.get_mut(column) {
            column.push(leaf);
            self.visited += 1;
        }
    }

    /// The encoded path of trie node `node`.
    fn path_of(&self, mut node: usize) -> Vec<u8> {
        let mut segments = Vec::new();
        while let Some(TrieNode {
            parent,
            segment: Some(segment),
            ..
        }) = self.nodes.get(node)
        {
            segments.push(segment);
            node = *parent;
        }
        let mut path = Vec::new();
        for segment in segments.iter().rev() {
            put_segment(&mut path, segment);
        }
        path
    }
}

/// The buffers of [`BlockEncoder::push_serialize`], reused from row to row.
struct Scratch {
    /// The row, serialized.
    tape: Tape,
    /// The fast path's leaves: (column, tape position).
    resolved: Vec<(usize, usize)>,
    /// The slow path's object entries: (key position, value position) in the
    /// tape, a stack shared by the nested objects.
    entries: Vec<(usize, usize)>,
}

/// The most tape events [`Scratch`] keeps between rows (a report has some
/// 400).
const SCRATCH_EVENTS: usize = 1 << 16;
/// The most arena bytes [`Scratch`] keeps between rows.
const SCRATCH_BYTES: usize = 1 << 20;

impl Scratch {
    /// Empty buffers.
    const fn new() -> Self {
        Self {
            tape: Tape {
                events: Vec::new(),
                arena: String::new(),
            },
            resolved: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Lets go of buffers an exceptionally large row grew.
    fn trim(&mut self) {
        if self.tape.events.capacity() > SCRATCH_EVENTS
            || self.tape.arena.capacity() > SCRATCH_BYTES
            || self.resolved.capacity() > SCRATCH_EVENTS
            || self.entries.capacity() > SCRATCH_EVENTS
        {
            *self = Self::new();
        }
    }
}

thread_local! {
    /// The buffers of [`BlockEncoder::push_serialize`], shared by the
    /// encoders of a thread (a store keeps one open encoder per device).
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch::new()) };
}

/// Text in a [`Tape`]: a `'static` name (struct field, enum variant) or a
/// range of the tape's arena.
#[derive(Clone, Copy)]
enum Text {
    /// A name known at compile time.
    Static(&'static str),
    /// `arena[start..end]`.
    Arena(usize, usize),
}

/// One step of a row serialized into a [`Tape`].
#[derive(Clone, Copy)]
enum Event {
    /// `null`.
    Null,
    /// `false` or `true`.
    Bool(bool),
    /// A number serde_json would hold as an `i64`.
    Int(i64),
    /// A number serde_json would hold as a `u64`.
    Uint(u64),
    /// A finite float.
    Float(f64),
    /// A string.
    Str(Text),
    /// An array, up to the [`Event::End`] at the position it holds; its
    /// elements follow.
    Array(usize),
    /// An object, up to the [`Event::End`] at the position it holds; its
    /// entries follow as a [`Event::Key`] and a value each, in the order
    /// they were serialized, equal keys included.
    Object(usize),
    /// The end of an array or object.
    End,
    /// An object key.
    Key(Text),
}

/// A row as serialized: a flat list of events whose strings are in one
/// arena, both reused from row to row.
#[derive(Default)]
struct Tape {
    /// The events, in serialization order.
    events: Vec<Event>,
    /// The bytes of the strings and keys that are not `'static`.
    arena: String,
}

impl Tape {
    /// The string `text` stands for.
    fn text(&self, text: Text) -> &str {
        match text {
            Text::Static(text) => text,
            Text::Arena(start, end) => self.arena.get(start..end).unwrap_or_default(),
        }
    }

    /// The key at `at`, or `""` if there is none.
    fn key(&self, at: usize) -> &str {
        match self.events.get(at) {
            Some(Event::Key(key)) => self.text(*key),
            _ => "",
        }
    }

    /// Where the value at `at` ends: the position after it.
    fn after(&self, at: usize) -> usize {
        match self.events.get(at) {
            Some(Event::Array(end) | Event::Object(end)) => end.saturating_add(1),
            _ => at + 1,
        }
    }

    /// The value at `at` as a leaf, when it is a scalar or empty.
    fn leaf(&self, at: usize) -> Option<Leaf<'_>> {
        Some(match *self.events.get(at)? {
            Event::Null => Leaf::Null,
            Event::Bool(b) => Leaf::Bool(b),
            Event::Int(int) => Leaf::Int(int),
            Event::Uint(uint) => Leaf::Uint(uint),
            Event::Float(x) => Leaf::Float(x),
            Event::Str(text) => Leaf::Str(self.text(text)),
            Event::Array(end) if end == at + 1 => Leaf::EmptyArray,
            Event::Object(end) if end == at + 1 => Leaf::EmptyObject,
            Event::Array(_) | Event::Object(_) | Event::End | Event::Key(_) => return None,
        })
    }

    /// Appends `text` to the arena.
    fn push_str(&mut self, text: &str) -> Text {
        let start = self.arena.len();
        self.arena.push_str(text);
        Text::Arena(start, self.arena.len())
    }

    /// Appends what `value` displays as to the arena, as `to_string` would.
    fn push_display<T: std::fmt::Display + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<Text, BlockError> {
        use std::fmt::Write;
        let start = self.arena.len();
        write!(self.arena, "{value}").map_err(|_| {
            BlockError::Serialize("a Display implementation returned an error".into())
        })?;
        Ok(Text::Arena(start, self.arena.len()))
    }

    /// Opens an array or object: `event` with its end to be set by
    /// [`close`](Self::close). Returns its position.
    fn open(&mut self, event: Event) -> usize {
        self.events.push(event);
        self.events.len() - 1
    }

    /// Closes the array or object opened at `begin`.
    fn close(&mut self, begin: usize) {
        let end = self.events.len();
        self.events.push(Event::End);
        if let Some(Event::Array(slot) | Event::Object(slot)) = self.events.get_mut(begin) {
            *slot = end;
        }
    }

    /// Appends a value serde_json built (for its private marker structs).
    fn push_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.events.push(Event::Null),
            Value::Bool(b) => self.events.push(Event::Bool(*b)),
            Value::Number(number) => self.events.push(match Leaf::of_number(number) {
                Leaf::Int(int) => Event::Int(int),
                Leaf::Uint(uint) => Event::Uint(uint),
                Leaf::Float(x) => Event::Float(x),
                _ => Event::Null,
            }),
            Value::String(string) => {
                let text = self.push_str(string);
                self.events.push(Event::Str(text));
            }
            Value::Array(items) => {
                let begin = self.open(Event::Array(usize::MAX));
                for item in items {
                    self.push_value(item);
                }
                self.close(begin);
            }
            Value::Object(map) => {
                let begin = self.open(Event::Object(usize::MAX));
                for (key, item) in map {
                    let key = self.push_str(key);
                    self.events.push(Event::Key(key));
                    self.push_value(item);
                }
                self.close(begin);
            }
        }
    }
}

impl serde::ser::Error for BlockError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Serialize(msg.to_string())
    }
}

/// The error serde_json gives for a key that is not a string.
fn key_must_be_a_string() -> BlockError {
    BlockError::Serialize("key must be a string".into())
}

/// The error serde_json gives for a number it cannot hold.
fn number_out_of_range() -> BlockError {
    BlockError::Serialize("number out of range".into())
}

/// The prefix of the names of serde_json's private marker structs
/// (`RawValue`, and `Number` under `arbitrary_precision`), which its
/// `to_value` treats apart.
const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

/// Serializes a value into a [`Tape`] the way `serde_json::to_value` builds
/// a `Value` (see serde_json's `value/ser.rs`).
struct TapeSerializer<'t> {
    /// Where the events go.
    tape: &'t mut Tape,
}

impl<'t> TapeSerializer<'t> {
    /// Records a scalar.
    fn event(self, event: Event) -> Result<(), BlockError> {
        self.tape.events.push(event);
        Ok(())
    }

    /// Opens an object with the single key `variant` (an enum variant,
    /// externally tagged); returns its position.
    fn open_variant(&mut self, variant: &'static str) -> usize {
        let outer = self.tape.open(Event::Object(usize::MAX));
        self.tape.events.push(Event::Key(Text::Static(variant)));
        outer
    }

    /// An array or object being serialized.
    fn compound(self, begin: usize, outer: Option<usize>) -> Compound<'t> {
        Compound {
            tape: self.tape,
            begin,
            outer,
            key_pending: false,
        }
    }
}

/// An array or object being serialized into a [`Tape`].
struct Compound<'t> {
    /// Where the events go.
    tape: &'t mut Tape,
    /// Where the array or object opened.
    begin: usize,
    /// Where the object holding it as an enum variant opened.
    outer: Option<usize>,
    /// Whether a key waits for its value.
    key_pending: bool,
}

impl Compound<'_> {
    /// Serializes an element or a value.
    fn value<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlockError> {
        value.serialize(TapeSerializer { tape: self.tape })
    }

    /// Serializes an entry with a `'static` key (a struct field).
    fn field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        self.tape.events.push(Event::Key(Text::Static(key)));
        self.value(value)
    }

    /// Closes the array or object, and the variant's object around it.
    fn close(self) -> Result<(), BlockError> {
        if self.key_pending {
            // serde_json drops a key that got no value.
            self.tape.events.pop();
        }
        self.tape.close(self.begin);
        if let Some(outer) = self.outer {
            self.tape.close(outer);
        }
        Ok(())
    }
}

impl serde::ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_element<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_element<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_key<T: serde::Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BlockError> {
        if self.key_pending {
            // serde_json replaces a key that got no value.
            self.tape.events.pop();
            self.key_pending = false;
        }
        key.serialize(KeySerializer { tape: self.tape })?;
        self.key_pending = true;
        Ok(())
    }

    fn serialize_value<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BlockError> {
        if !self.key_pending {
            // serde_json panics here.
            return Err(BlockError::Serialize(
                "serialize_value called before serialize_key".into(),
            ));
        }
        self.key_pending = false;
        self.value(value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

impl serde::ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), BlockError> {
        self.close()
    }
}

/// A struct being serialized into a [`Tape`].
enum StructCompound<'t> {
    /// An ordinary struct: an object.
    Fields(Compound<'t>),
    /// One of serde_json's private marker structs, which `to_value` turns
    /// into something else than an object: left to `to_value` itself.
    Private {
        /// Where the result goes.
        tape: &'t mut Tape,
        /// The struct's name.
        name: &'static str,
        /// What `to_value` made of the struct with its one field.
        value: Option<Value>,
    },
}

/// A struct of one field, to serialize a marker struct again through
/// `serde_json::to_value`.
struct OneField<'a, T: ?Sized> {
    /// The struct's name.
    name: &'static str,
    /// The field's name.
    key: &'static str,
    /// The field's value.
    value: &'a T,
}

impl<T: serde::Serialize + ?Sized> serde::Serialize for OneField<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct(self.name, 1)?;
        state.serialize_field(self.key, self.value)?;
        state.end()
    }
}

impl serde::ser::SerializeStruct for StructCompound<'_> {
    type Ok = ();
    type Error = BlockError;

    fn serialize_field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        match self {
            Self::Fields(compound) => compound.field(key, value),
            Self::Private {
                name, value: out, ..
            } => {
                if out.is_some() {
                    return Err(BlockError::Serialize(format!(
                        "{name} with more than one field"
                    )));
                }
                let name = *name;
                *out = Some(
                    serde_json::to_value(OneField { name, key, value })
                        .map_err(|e| BlockError::Serialize(e.to_string()))?,
                );
                Ok(())
            }
        }
    }

    fn end(self) -> Result<(), BlockError> {
        match self {
            Self::Fields(compound) => compound.close(),
            Self::Private { tape, name, value } => {
                let value = value
                    .ok_or_else(|| BlockError::Serialize(format!("{name} without a field")))?;
                tape.push_value(&value);
                Ok(())
            }
        }
    }
}

impl<'t> serde::Serializer for TapeSerializer<'t> {
    type Ok = ();
    type Error = BlockError;
    type SerializeSeq = Compound<'t>;
    type SerializeTuple = Compound<'t>;
    type SerializeTupleStruct = Compound<'t>;
    type SerializeTupleVariant = Compound<'t>;
    type SerializeMap = Compound<'t>;
    type SerializeStruct = StructCompound<'t>;
    type SerializeStructVariant = Compound<'t>;

    fn serialize_bool(self, v: bool) -> Result<(), BlockError> {
        self.event(Event::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<(), BlockError> {
        self.event(Event::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<(), BlockError> {
        self.event(Event::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<(), BlockError> {
        // Like serde_json: a u64 if it fits, else an i64 if it fits.
        if let Ok(v) = u64::try_from(v) {
            self.event(Event::Uint(v))
        } else if let Ok(v) = i64::try_from(v) {
            self.event(Event::Int(v))
        } else {
            Err(number_out_of_range())
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<(), BlockError> {
        self.event(Event::Uint(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<(), BlockError> {
        self.event(Event::Uint(v))
    }

    fn serialize_u128(self, v: u128) -> Result<(), BlockError> {
        let v = u64::try_from(v).map_err(|_| number_out_of_range())?;
        self.event(Event::Uint(v))
    }

    fn serialize_f32(self, v: f32) -> Result<(), BlockError> {
        // `Value::from(f32)`: `v as f64`, or null when not finite.
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), BlockError> {
        // `Value::from(f64)`: null when not finite.
        self.event(if v.is_finite() {
            Event::Float(v)
        } else {
            Event::Null
        })
    }

    fn serialize_char(self, v: char) -> Result<(), BlockError> {
        let text = self.tape.push_str(v.encode_utf8(&mut [0; 4]));
        self.event(Event::Str(text))
    }

    fn serialize_str(self, v: &str) -> Result<(), BlockError> {
        let text = self.tape.push_str(v);
        self.event(Event::Str(text))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), BlockError> {
        let begin = self.tape.open(Event::Array(usize::MAX));
        self.tape
            .events
            .extend(v.iter().map(|&byte| Event::Uint(byte.into())));
        self.tape.close(begin);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BlockError> {
        self.event(Event::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), BlockError> {
        self.event(Event::Str(Text::Static(variant)))
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        let outer = self.open_variant(variant);
        value.serialize(TapeSerializer { tape: self.tape })?;
        self.tape.close(outer);
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'t>, BlockError> {
        let begin = self.tape.open(Event::Array(usize::MAX));
        Ok(self.compound(begin, None))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'t>, BlockError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        self.serialize_seq(None)
    }

    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        let outer = self.open_variant(variant);
        let begin = self.tape.open(Event::Array(usize::MAX));
        Ok(self.compound(begin, Some(outer)))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'t>, BlockError> {
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(self.compound(begin, None))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<StructCompound<'t>, BlockError> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return Ok(StructCompound::Private {
                tape: self.tape,
                name,
                value: None,
            });
        }
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(StructCompound::Fields(self.compound(begin, None)))
    }

    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'t>, BlockError> {
        let outer = self.open_variant(variant);
        let begin = self.tape.open(Event::Object(usize::MAX));
        Ok(self.compound(begin, Some(outer)))
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        let text = self.tape.push_display(value)?;
        self.event(Event::Str(text))
    }
}

/// A map with one float key, to have serde_json's map key serializer
/// format the key.
struct FloatKey<F>(F);

impl<F: serde::Serialize> serde::Serialize for FloatKey<F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.0, &())?;
        map.end()
    }
}

/// Serializes a map key into a [`Tape`] as serde_json's `MapKeySerializer`
/// turns it into a `String`.
struct KeySerializer<'t> {
    /// Where the key goes.
    tape: &'t mut Tape,
}

impl KeySerializer<'_> {
    /// Records the key.
    fn key(self, text: Text) -> Result<(), BlockError> {
        self.tape.events.push(Event::Key(text));
        Ok(())
    }

    /// Records an integer key, in decimal like serde_json's `itoa`.
    fn display<T: std::fmt::Display>(self, v: T) -> Result<(), BlockError> {
        let text = self.tape.push_display(&v)?;
        self.key(text)
    }

    /// Records a float key, formatted by serde_json itself (rare: a map
    /// built for it).
    fn float<F: serde::Serialize>(self, v: F) -> Result<(), BlockError> {
        let Value::Object(map) =
            serde_json::to_value(FloatKey(v)).map_err(|e| BlockError::Serialize(e.to_string()))?
        else {
            return Err(key_must_be_a_string());
        };
        let key = map.keys().next().ok_or_else(key_must_be_a_string)?;
        let text = self.tape.push_str(key);
        self.key(text)
    }
}

impl serde::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = BlockError;
    type SerializeSeq = serde::ser::Impossible<(), BlockError>;
    type SerializeTuple = serde::ser::Impossible<(), BlockError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), BlockError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), BlockError>;
    type SerializeMap = serde::ser::Impossible<(), BlockError>;
    type SerializeStruct = serde::ser::Impossible<(), BlockError>;
    type SerializeStructVariant = serde::ser::Impossible<(), BlockError>;

    fn serialize_bool(self, v: bool) -> Result<(), BlockError> {
        self.key(Text::Static(if v { "true" } else { "false" }))
    }

    fn serialize_i8(self, v: i8) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i16(self, v: i16) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i32(self, v: i32) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i64(self, v: i64) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), BlockError> {
        self.display(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), BlockError> {
        self.float(v)
    }

    fn serialize_f64(self, v: f64) -> Result<(), BlockError> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), BlockError> {
        let text = self.tape.push_str(v.encode_utf8(&mut [0; 4]));
        self.key(text)
    }

    fn serialize_str(self, v: &str) -> Result<(), BlockError> {
        let text = self.tape.push_str(v);
        self.key(text)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: serde::Serialize + ?Sized>(self, _value: &T) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), BlockError> {
        self.key(Text::Static(variant))
    }

    fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), BlockError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, BlockError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, BlockError> {
        Err(key_must_be_a_string())
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), BlockError> {
        let text = self.tape.push_display(value)?;
        self.key(text)
    }
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
    fn is_empty(&self) -> bool {
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
    fn finish(&self, what: &'static str) -> Result<(), BlockError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(BlockError::Malformed(what))
        }
    }
}

/// What decoding may still build, in approximate bytes.
struct Budget(u64);

impl Budget {
    /// Takes `cost` from the budget, or fails when it is spent.
    fn charge(&mut self, cost: u64) -> Result<(), BlockError> {
        self.0 = self.0.checked_sub(cost).ok_or(BlockError::TooLarge)?;
        Ok(())
    }
}

/// A column as the decoder reads it.
struct Layout {
    /// What one present leaf of it costs the budget.
    leaf_cost: u64,
    /// Its kinds: (kind, rows).
    runs: Vec<(u8, usize)>,
    /// Its decimal scale.
    scale: u8,
    /// How many raw floats it has.
    raw_count: usize,
    /// How many rows it has a value in.
    present: usize,
}

/// A node of the decoder's trie of column paths.
#[derive(Default)]
struct PathNode {
    /// Children by object key, sorted by key.
    keys: Vec<(String, usize)>,
    /// Children by array index, sorted by index.
    items: Vec<(u64, usize)>,
    /// The column whose path ends here.
    column: Option<usize>,
}

/// The decoder's trie of column paths, which rebuilds rows from their
/// leaves; node 0 is the root (the empty path).
struct PathTrie {
    /// The nodes.
    nodes: Vec<PathNode>,
}

/// The error for leaves that cannot all be in one row.
const CONFLICT: BlockError = BlockError::Malformed("leaves of one row conflict");
/// The error for a trie node that should exist.
const LOST: BlockError = BlockError::Malformed("path trie is inconsistent");

impl PathTrie {
    /// Adds the encoded path of `column`; returns its number of segments.
    fn insert(&mut self, path: &[u8], column: usize) -> Result<u64, BlockError> {
        let mut reader = Reader::new(path);
        let mut node = 0usize;
        let mut depth = 0u64;
        while !reader.is_empty() {
            depth += 1;
            if depth > MAX_DEPTH as u64 {
                return Err(BlockError::Malformed("path is too deep"));
            }
            let header = reader.varint()?;
            let current = self.nodes.get(node).ok_or(LOST)?;
            let next = self.nodes.len();
            node = if header & 1 == 1 {
                let index = header >> 1;
                match current
                    .items
                    .binary_search_by_key(&index, |(index, _)| *index)
                {
                    Ok(found) => current.items.get(found).ok_or(LOST)?.1,
                    Err(at) => {
                        self.nodes.push(PathNode::default());
                        let current = self.nodes.get_mut(node).ok_or(LOST)?;
                        current.items.insert(at, (index, next));
                        next
                    }
                }
            } else {
                let len = usize::try_from(header >> 1).map_err(|_| BlockError::Truncated)?;
                let key = std::str::from_utf8(reader.bytes(len)?)
                    .map_err(|_| BlockError::Malformed("key is not UTF-8"))?;
                match current
                    .keys
                    .binary_search_by(|(known, _)| known.as_str().cmp(key))
                {
                    Ok(found) => current.keys.get(found).ok_or(LOST)?.1,
                    Err(at) => {
                        self.nodes.push(PathNode::default());
                        let current = self.nodes.get_mut(node).ok_or(LOST)?;
                        current.keys.insert(at, (key.to_owned(), next));
                        next
                    }
                }
            };
        }
        let leaf = self.nodes.get_mut(node).ok_or(LOST)?;
        if leaf.column.is_some() {
            return Err(BlockError::Malformed("two columns have one path"));
        }
        leaf.column = Some(column);
        Ok(depth)
    }

    /// The value below `node` in the row whose leaves are in `cells` (by
    /// column), taking them; `None` when there is none.
    fn build(&self, node: usize, cells: &mut [Option<Value>]) -> Result<Option<Value>, BlockError> {
        let current = self.nodes.get(node).ok_or(LOST)?;
        let mut found = current
            .column
            .and_then(|column| cells.get_mut(column).and_then(Option::take));
        if !current.keys.is_empty() {
            let mut map = Map::new();
            for (key, child) in &current.keys {
                if let Some(value) = self.build(*child, cells)? {
                    map.insert(key.clone(), value);
                }
            }
            if !map.is_empty() {
                if found.is_some() {
                    return Err(CONFLICT);
                }
                found = Some(Value::Object(map));
            }
        }
        if !current.items.is_empty() {
            let mut items = Vec::new();
            for (index, child) in &current.items {
                if let Some(value) = self.build(*child, cells)? {
                    if *index != items.len() as u64 {
                        return Err(BlockError::Malformed("an array misses an element"));
                    }
                    items.push(value);
                }
            }
            if !items.is_empty() {
                if found.is_some() {
                    return Err(CONFLICT);
                }
                found = Some(Value::Array(items));
            }
        }
        Ok(found)
    }
}

/// A finite float as a JSON value.
fn float_value(x: f64) -> Result<Value, BlockError> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or(BlockError::Malformed("float is not finite"))
}

/// Raw float number `index` of `count` stored byte-transposed in `bytes`.
fn transposed(bytes: &[u8], count: usize, index: usize) -> Result<u64, BlockError> {
    let mut le = [0u8; 8];
    for (byte, slot) in le.iter_mut().enumerate() {
        *slot = *bytes
            .get(byte * count + index)
            .ok_or(BlockError::Truncated)?;
    }
    Ok(u64::from_le_bytes(le))
}

/// Decodes what [`BlockEncoder::encode`] produced.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<serde_json::Value>, BlockError> {
    let mut input = Reader::new(bytes);
    let version = input.byte()?;
    if version != VERSION {
        return Err(BlockError::Version(version));
    }
    let rows = usize::try_from(input.varint()?)
        .ok()
        .filter(|rows| *rows <= MAX_ROWS)
        .ok_or(BlockError::TooLarge)?;
    let column_count = input.varint()?;
    let mut lengths = [0usize; SECTIONS];
    for length in &mut lengths {
        *length = input.length()?;
    }
    let mut sections: [&[u8]; SECTIONS] = [&[]; SECTIONS];
    for (section, length) in sections.iter_mut().zip(lengths) {
        *section = input.bytes(length)?;
    }
    input.finish("bytes after the last section")?;
    let [paths, kinds, scales, ints, decimals, raws, strings] = sections;

    // Each path takes at least two bytes of the path table.
    let column_count = usize::try_from(column_count)
        .ok()
        .filter(|count| *count <= paths.len() / 2)
        .ok_or(BlockError::Malformed("more columns than paths"))?;
    if scales.len() != column_count {
        return Err(BlockError::Malformed("one scale per column"));
    }
    let mut budget = Budget(DECODE_BUDGET);
    let (trie, mut layouts) = read_paths(paths, scales, &mut budget)?;
    read_kinds(kinds, rows, &mut layouts, &mut budget)?;
    // Rebuilding visits every column and trie node once per row.
    let steps = (rows as u64).saturating_mul(layouts.len() as u64 + trie.nodes.len() as u64);
    if steps > MAX_ASSEMBLY_STEPS {
        return Err(BlockError::TooLarge);
    }

    let mut streams = Streams {
        ints: Reader::new(ints),
        decimals: Reader::new(decimals),
        raws: Reader::new(raws),
        strings: Reader::new(strings),
    };
    let mut cursors = Vec::with_capacity(layouts.len());
    for layout in &layouts {
        cursors.push(Cursor {
            runs: layout.runs.iter(),
            kind: ABSENT,
            left: 0,
            values: read_column(layout, &mut streams, &mut budget)?.into_iter(),
        });
    }
    streams.ints.finish("bytes after the last int")?;
    streams.decimals.finish("bytes after the last decimal")?;
    streams.raws.finish("bytes after the last raw float")?;
    streams.strings.finish("bytes after the last string")?;

    let mut cells: Vec<Option<Value>> = std::iter::repeat_with(|| None)
        .take(layouts.len())
        .collect();
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        for (cell, cursor) in cells.iter_mut().zip(&mut cursors) {
            *cell = cursor.next_row();
        }
        let row = trie
            .build(0, &mut cells)?
            .ok_or(BlockError::Malformed("a row has no values"))?;
        out.push(row);
    }
    Ok(out)
}

/// Reads the path table into the trie, and the scales.
fn read_paths(
    paths: &[u8],
    scales: &[u8],
    budget: &mut Budget,
) -> Result<(PathTrie, Vec<Layout>), BlockError> {
    let mut reader = Reader::new(paths);
    let mut trie = PathTrie {
        nodes: vec![PathNode::default()],
    };
    let mut layouts = Vec::with_capacity(scales.len());
    let mut previous: Vec<u8> = Vec::new();
    for (column, &scale) in scales.iter().enumerate() {
        let shared = reader.length()?;
        let suffix_len = reader.length()?;
        let suffix = reader.bytes(suffix_len)?;
        let prefix = previous.get(..shared).ok_or(BlockError::Malformed(
            "path shares more than its predecessor has",
        ))?;
        budget.charge(shared as u64 + suffix_len as u64)?;
        let mut path = Vec::with_capacity(shared + suffix_len);
        path.extend_from_slice(prefix);
        path.extend_from_slice(suffix);
        let depth = trie.insert(&path, column)?;
        budget.charge(NODE_COST * depth)?;
        layouts.push(Layout {
            leaf_cost: NODE_COST * (depth + 1) + path.len() as u64,
            runs: Vec::new(),
            scale,
            raw_count: 0,
            present: 0,
        });
        previous = path;
    }
    reader.finish("bytes after the last path")?;
    Ok((trie, layouts))
}

/// Reads the kind runs of every column and charges their leaves.
fn read_kinds(
    kinds: &[u8],
    rows: usize,
    layouts: &mut [Layout],
    budget: &mut Budget,
) -> Result<(), BlockError> {
    let mut reader = Reader::new(kinds);
    let mut present = 0usize;
    for layout in layouts.iter_mut() {
        let mut covered = 0usize;
        while covered < rows {
            let run = reader.varint()?;
            let kind = (run & 0xf) as u8;
            let len = usize::try_from(run >> 4)
                .ok()
                .filter(|len| *len >= 1 && *len <= rows - covered)
                .ok_or(BlockError::Malformed("kind run overruns the rows"))?;
            if kind > LAST_KIND {
                return Err(BlockError::Malformed("unknown kind"));
            }
            if kind == DECIMAL && layout.scale > MAX_SCALE {
                return Err(BlockError::Malformed("decimal without a scale"));
            }
            if kind == RAW {
                layout.raw_count += len;
            }
            if kind != ABSENT {
                budget.charge((len as u64).saturating_mul(layout.leaf_cost))?;
                layout.present += len;
            }
            covered += len;
            layout.runs.push((kind, len));
        }
        present += layout.present;
    }
    reader.finish("bytes after the last kind")?;
    if present < rows {
        return Err(BlockError::Malformed("a row has no values"));
    }
    Ok(())
}

/// The value streams, read column after column.
struct Streams<'a> {
    /// Ints and uints.
    ints: Reader<'a>,
    /// Scaled decimal deltas.
    decimals: Reader<'a>,
    /// Transposed raw floats.
    raws: Reader<'a>,
    /// New strings.
    strings: Reader<'a>,
}

/// Reads one column's values, in row order (absent rows have none).
fn read_column(
    layout: &Layout,
    streams: &mut Streams<'_>,
    budget: &mut Budget,
) -> Result<Vec<Value>, BlockError> {
    let raw_len = layout
        .raw_count
        .checked_mul(8)
        .ok_or(BlockError::Truncated)?;
    let raws = streams.raws.bytes(raw_len)?;
    let mut raw_index = 0usize;
    let mut prev_int = 0i64;
    let mut prev_decimal = 0i64;
    let mut prev_float = 0u64;
    let mut prev_string: Option<&str> = None;
    // Charged to the budget by `read_kinds`.
    let mut values = Vec::with_capacity(layout.present);
    for &(kind, len) in &layout.runs {
        if kind == ABSENT {
            continue;
        }
        for _ in 0..len {
            let value = match kind {
                NULL => Value::Null,
                FALSE => Value::Bool(false),
                TRUE => Value::Bool(true),
                INT => {
                    prev_int = prev_int.wrapping_add(unzigzag(streams.ints.varint()?));
                    Value::from(prev_int)
                }
                UINT => Value::from(streams.ints.varint()?),
                DECIMAL => {
                    prev_decimal = prev_decimal.wrapping_add(unzigzag(streams.decimals.varint()?));
                    if prev_decimal.unsigned_abs() >= SCALED_LIMIT {
                        return Err(BlockError::Malformed("decimal out of range"));
                    }
                    let x = decimal_value(prev_decimal, layout.scale);
                    prev_float = x.to_bits();
                    float_value(x)?
                }
                RAW => {
                    prev_float ^= transposed(raws, layout.raw_count, raw_index)?;
                    raw_index += 1;
                    float_value(f64::from_bits(prev_float))?
                }
                STRING_NEW => {
                    let len = streams.strings.length()?;
                    let bytes = streams.strings.bytes(len)?;
                    let string = std::str::from_utf8(bytes)
                        .map_err(|_| BlockError::Malformed("string is not UTF-8"))?;
                    budget.charge(len as u64)?;
                    prev_string = Some(string);
                    Value::String(string.to_owned())
                }
                STRING_SAME => {
                    let string = prev_string
                        .ok_or(BlockError::Malformed("repeated string without a first"))?;
                    budget.charge(string.len() as u64)?;
                    Value::String(string.to_owned())
                }
                EMPTY_ARRAY => Value::Array(Vec::new()),
                EMPTY_OBJECT => Value::Object(Map::new()),
                _ => return Err(BlockError::Malformed("unknown kind")),
            };
            values.push(value);
        }
    }
    Ok(values)
}

/// Walks one column's kinds and values row by row.
struct Cursor<'a> {
    /// The runs after the current one.
    runs: std::slice::Iter<'a, (u8, usize)>,
    /// The current run's kind.
    kind: u8,
    /// Rows left in the current run.
    left: usize,
    /// The values of the rows after this one.
    values: std::vec::IntoIter<Value>,
}

impl Cursor<'_> {
    /// The column's value in the next row, if it has one.
    fn next_row(&mut self) -> Option<Value> {
        while self.left == 0 {
            let &(kind, len) = self.runs.next()?;
            self.kind = kind;
            self.left = len;
        }
        self.left -= 1;
        if self.kind == ABSENT {
            None
        } else {
            self.values.next()
        }
    }
}

/// Decodes what [`BlockEncoder::seal`] produced.
pub(crate) fn decode_sealed(bytes: &[u8]) -> Result<Vec<serde_json::Value>, BlockError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(bytes).map_err(BlockError::Zstd)?;
    let mut encoded = Vec::new();
    decoder
        .take(MAX_ENCODED_BYTES + 1)
        .read_to_end(&mut encoded)
        .map_err(BlockError::Zstd)?;
    if encoded.len() as u64 > MAX_ENCODED_BYTES {
        return Err(BlockError::TooLarge);
    }
    decode(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Whether `a` and `b` are equal, with floats compared by their bits.
    fn identical(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                x.is_f64()
                    && y.is_f64()
                    && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| identical(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(key, x)| y.get(key).is_some_and(|y| identical(x, y)))
            }
            _ => a == b,
        }
    }

    fn assert_identical(decoded: &[Value], rows: &[Value]) {
        assert_eq!(decoded, rows);
        for (decoded, row) in decoded.iter().zip(rows) {
            assert!(
                identical(decoded, row),
                "{decoded} is not bit-identical to {row}"
            );
        }
    }

    fn encoder_of(rows: &[Value]) -> BlockEncoder {
        let mut encoder = BlockEncoder::new();
        for row in rows {
            encoder.push(row);
        }
        encoder
    }

    /// Encodes and seals `rows`, checks both decode to them; returns the block.
    fn round_trip(rows: &[Value]) -> Vec<u8> {
        let encoder = encoder_of(rows);
        assert_eq!(encoder.len(), rows.len());
        let block = encoder.encode();
        assert_identical(&decode(&block).unwrap(), rows);
        let sealed = encoder.seal(3).unwrap();
        assert_identical(&decode_sealed(&sealed).unwrap(), rows);
        block
    }

    fn float(x: f64) -> Value {
        Value::Number(Number::from_f64(x).unwrap())
    }

    fn floats() -> Vec<f64> {
        vec![
            0.0,
            -0.0,
            1.0,
            -1.5,
            12.34,
            0.1 + 0.2,
            1e-7,
            123456.789012,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 1024.0,
            5e-324,
            f64::MAX,
            f64::MIN,
            1e300,
            9007199254740993.0,
            4503599627370495.5,
        ]
    }

    #[test]
    fn empty_block() {
        let encoder = BlockEncoder::default();
        assert_eq!(encoder.len(), 0);
        assert_eq!(decode(&encoder.encode()).unwrap(), Vec::<Value>::new());
        assert_eq!(
            decode_sealed(&encoder.seal(9).unwrap()).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn top_level_scalars_of_every_kind() {
        let mut rows = vec![
            Value::Null,
            json!(false),
            json!(true),
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(i64::MAX as u64 + 1),
            json!(u64::MAX),
            json!(""),
            json!("héllo \u{0} \n \"quoted\" 🦀 \u{10FFFF}"),
            json!([]),
            json!({}),
        ];
        rows.extend(floats().into_iter().map(float));
        round_trip(&rows);
        // Each one alone too, and every kind after every other one.
        for row in &rows {
            round_trip(std::slice::from_ref(row));
        }
        let pairs: Vec<Value> = rows
            .iter()
            .flat_map(|a| rows.iter().flat_map(move |b| [a.clone(), b.clone()]))
            .collect();
        round_trip(&pairs);
    }

    #[test]
    fn one_column_of_mixed_kinds() {
        let values = [
            json!(1),
            float(2.5),
            json!("a"),
            json!("a"),
            json!("b"),
            Value::Null,
            json!(true),
            json!([]),
            json!({}),
            json!(u64::MAX),
            json!(-3),
            float(0.1 + 0.2),
            float(-0.0),
            json!("a"),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(i64::MIN),
            float(7.25),
        ];
        let rows: Vec<Value> = values.iter().map(|v| json!({ "x": v })).collect();
        round_trip(&rows);
        let absent: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i % 3 == 0 {
                    json!({ "y": 1 })
                } else {
                    json!({ "x": v })
                }
            })
            .collect();
        round_trip(&absent);
    }

    #[test]
    fn keys_with_any_characters() {
        let row = json!({
            "disk_used_percent:/": 12.5,
            "a/b": 1,
            "a": { "b": 2 },
            "": { "": [""] },
            "0": "not an index",
            "ü🦀\u{0}\n": true,
            "x\"y\\z": null,
        });
        round_trip(&[row.clone(), row]);
        round_trip(&[
            json!({ "a": { "b": 1 } }),
            json!({ "a/b": 1 }),
            json!({ "a": [1] }),
            json!({ "a": { "0": 1 } }),
        ]);
    }

    #[test]
    fn shapes_change() {
        let rows = vec![
            json!({ "a": 1, "b": [1, 2, 3], "c": { "d": "x" } }),
            json!({ "a": 2, "b": [1, 2, 3, 4, 5] }),
            json!({ "a": 3, "b": [1], "c": { "d": "x", "e": [] }, "f": {} }),
            json!({ "a": { "nested": 1 }, "b": [], "c": { "d": { "deeper": [[], {}] } } }),
            json!({ "a": [1, { "x": 1 }], "b": [[1, 2], 3] }),
            json!({ "a": [{ "y": 2 }, 2], "b": {} }),
            json!({ "a": [{ "x": 3 }, { "x": 4 }], "b": [3, [1, 2]] }),
            json!(5),
            json!([1, 2]),
            json!({}),
            json!([]),
            json!({ "a": 1 }),
            json!("text"),
            json!({ "a": 1, "b": [1, 2, 3], "c": { "d": "x" } }),
        ];
        round_trip(&rows);
        // The same rows in reverse create the columns in another order.
        let reversed: Vec<Value> = rows.into_iter().rev().collect();
        round_trip(&reversed);
    }

    #[test]
    fn arrays_of_objects_grow_shrink_and_reorder() {
        let process = |pid: u64, name: &str, cpu: f64| json!({ "pid": pid, "name": name, "cpu_percent": cpu });
        let rows = vec![
            json!({ "top": [process(1, "init", 0.5), process(2, "sshd", 1.25)] }),
            json!({ "top": [process(2, "sshd", 3.5), process(1, "init", 0.5), process(3, "cargo", 99.0)] }),
            json!({ "top": [process(3, "cargo", 98.75)] }),
            json!({ "top": [] }),
            json!({}),
            json!({ "top": [process(4, "rustc", 12.0), process(3, "cargo", 1.0)] }),
        ];
        round_trip(&rows);
    }

    #[test]
    fn floats_take_the_decimal_path_when_exact() {
        let rows: Vec<Value> = [12.0, 12.5, 12.25, 12.125, 0.001, 99.999999, 1.0]
            .into_iter()
            .map(|x| json!({ "x": x }))
            .collect();
        let encoder = encoder_of(&rows);
        let column = &encoder.columns[0];
        assert_eq!(column.scale, 6, "raised one step at a time");
        assert!(column.raws.is_empty(), "all of them are decimals");
        round_trip(&rows);

        // 1e15 is exact at scale 0, but at scale 1 it would pass 2^53: the
        // half goes raw, and the column keeps its scale.
        let rows = vec![
            json!({ "x": 1e15 }),
            json!({ "x": 0.5 }),
            json!({ "x": 3.0 }),
        ];
        let encoder = encoder_of(&rows);
        assert_eq!(encoder.columns[0].scale, 0);
        assert_eq!(encoder.columns[0].raws.len(), 8);
        round_trip(&rows);

        // Non-decimal and negative-zero floats go raw without spoiling the column.
        let rows: Vec<Value> = [1.25, -0.0, 1.5, 0.1 + 0.2, 2.0, 1e-7, 3.75]
            .into_iter()
            .map(|x| json!({ "x": x }))
            .collect();
        let encoder = encoder_of(&rows);
        assert_eq!(encoder.columns[0].scale, 2);
        assert_eq!(encoder.columns[0].raws.len(), 3 * 8);
        round_trip(&rows);
    }

    #[test]
    fn decimal_check_uses_the_decoders_formula() {
        for x in floats() {
            if let Some((scale, scaled)) = smallest_scale(x) {
                assert_eq!(decimal_value(scaled, scale).to_bits(), x.to_bits(), "{x}");
            }
        }
        assert_eq!(smallest_scale(12.34), Some((2, 1234)));
        assert_eq!(smallest_scale(-0.0), None);
        assert_eq!(smallest_scale(0.1 + 0.2), None);
        assert_eq!(smallest_scale(f64::MAX), None);
        assert_eq!(smallest_scale(5e-324), None);
    }

    #[test]
    fn strings_repeat_without_bytes() {
        let rows: Vec<Value> = ["a", "a", "a", "b", "b", "a", "", ""]
            .into_iter()
            .map(|s| json!({ "s": s }))
            .collect();
        let encoder = encoder_of(&rows);
        assert_eq!(encoder.columns[0].strings, b"\x01a\x01b\x01a\x00");
        round_trip(&rows);
    }

    #[test]
    fn encode_then_push_more_then_encode_again() {
        let rows = report_rows(50, 7);
        let mut encoder = BlockEncoder::new();
        for (i, row) in rows.iter().enumerate() {
            encoder.push(row);
            if i % 7 == 0 {
                assert_identical(&decode(&encoder.encode()).unwrap(), &rows[..=i]);
            }
        }
        assert_identical(&decode(&encoder.encode()).unwrap(), &rows);
        assert_identical(&decode_sealed(&encoder.seal(9).unwrap()).unwrap(), &rows);
    }

    #[test]
    fn heap_bytes_tracks_the_encoded_size() {
        let rows = report_rows(720, 1);
        let encoder = encoder_of(&rows);
        let encoded = encoder.encode().len();
        let held = encoder.heap_bytes();
        println!("720 report rows: {encoded} bytes encoded, {held} bytes held");
        assert!(
            held >= encoded / 2 && held <= 3 * encoded,
            "{held} vs {encoded}"
        );
    }

    #[test]
    fn decode_rejects_bad_input() {
        assert!(matches!(decode(&[]), Err(BlockError::Truncated)));
        assert!(matches!(decode(&[2]), Err(BlockError::Version(2))));
        let block = round_trip(&report_rows(3, 2));
        for cut in 0..block.len() {
            assert!(decode(&block[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = block.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(BlockError::Malformed(_))));
        assert!(matches!(decode_sealed(&block), Err(BlockError::Zstd(_))));
        // A row count far beyond the block.
        let mut lying = vec![VERSION];
        put_varint(&mut lying, u64::MAX);
        assert!(matches!(decode(&lying), Err(BlockError::TooLarge)));
    }

    #[test]
    fn decode_survives_every_truncation_and_bit_flip() {
        let rows = vec![
            json!({ "a": 1, "b": [1.5, 0.1], "c": "x", "d": { "e": [true, null, {}, []] }, "n": u64::MAX }),
            json!({ "a": 2, "b": [1.75, 0.2 + 0.1], "c": "x", "f": -0.0 }),
            json!({ "a": 3, "b": [], "c": "y", "d": { "e": [false] } }),
        ];
        let block = round_trip(&rows);
        for cut in 0..block.len() {
            assert!(decode(&block[..cut]).is_err());
        }
        for index in 0..block.len() {
            for bit in 0..8 {
                let mut flipped = block.clone();
                flipped[index] ^= 1 << bit;
                let _ = decode(&flipped);
            }
        }
    }

    /// A small fixed-seed PRNG (splitmix64), so the data is the same every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `low..=high`.
        fn range(&mut self, low: i64, high: i64) -> i64 {
            low + (self.next() % (high - low + 1) as u64) as i64
        }
    }

    /// A random walk kept in `0..=max`, in units of `10^-decimals`.
    struct Walk {
        value: i64,
        step: i64,
        max: i64,
        decimals: i32,
    }

    impl Walk {
        fn new(rng: &mut Rng, max: i64, step: i64, decimals: i32) -> Self {
            Self {
                value: rng.range(0, max),
                step,
                max,
                decimals,
            }
        }

        /// The next value, rounded to its decimals the way the agent does.
        fn next(&mut self, rng: &mut Rng) -> f64 {
            self.value = (self.value + rng.range(-self.step, self.step)).clamp(0, self.max);
            self.value as f64 / 10f64.powi(self.decimals)
        }
    }

    /// `n` rows shaped like a device's successive reports (about 2.5 KB of
    /// JSON and 150 leaves each).
    fn report_rows(n: usize, seed: u64) -> Vec<Value> {
        let rng = &mut Rng(seed);
        let mut cpu = Walk::new(rng, 10_000, 150, 2);
        let mut cores: Vec<Walk> = (0..16).map(|_| Walk::new(rng, 1000, 40, 1)).collect();
        let mut breakdown: Vec<Walk> = (0..5).map(|_| Walk::new(rng, 10_000, 80, 2)).collect();
        let mut load: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 800, 10, 2)).collect();
        let mut disk_percent: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 10_000, 2, 2)).collect();
        let mut io: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 500_000, 20_000, 1)).collect();
        let mut temperatures: Vec<Walk> = (0..6).map(|_| Walk::new(rng, 900, 5, 1)).collect();
        let mut ram_used: i64 = 9_000;
        let mut disk_used: Vec<u64> = vec![120 << 30, 300 << 30, 2 << 40];
        let mut net_bytes: Vec<u64> = vec![1 << 36, 1 << 34, 1 << 30, 1 << 29, 1 << 20, 1 << 19];
        let names = [
            "postgres",
            "nginx",
            "tailmon-agent",
            "systemd",
            "dockerd",
            "containerd",
            "node",
            "python3",
            "sshd",
            "cron",
            "redis-server",
            "java",
        ];
        let mut process_cpu: Vec<Walk> = (0..names.len())
            .map(|_| Walk::new(rng, 4000, 60, 2))
            .collect();
        let mut rss: Vec<u64> = (0..names.len())
            .map(|i| ((i as u64 + 1) * 37) << 20)
            .collect();
        // Application metrics that change now and then.
        let mut custom: Vec<i64> = (0..20).map(|_| rng.range(0, 5000)).collect();
        let mut processes = 300;
        (0..n)
            .map(|i| {
                ram_used = (ram_used + rng.range(-40, 40)).clamp(1000, 16_000);
                for used in &mut disk_used {
                    *used += rng.range(0, 200_000) as u64 * 4096 / 100;
                }
                for bytes in &mut net_bytes {
                    *bytes += rng.range(0, 3_000_000) as u64;
                }
                processes = (processes + rng.range(-2, 2)).clamp(200, 400);
                let mut top: Vec<(usize, f64)> =
                    process_cpu.iter_mut().map(|w| w.next(rng)).enumerate().collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                for bytes in &mut rss {
                    if rng.range(0, 3) == 0 {
                        *bytes = (*bytes as i64 + rng.range(-64, 64) * 4096).max(1 << 20) as u64;
                    }
                }
                let disks: Vec<Value> = ["/", "/home", "/var/lib/docker"]
                    .iter()
                    .zip(&disk_used)
                    .zip(&mut disk_percent)
                    .map(|((mount, used), percent)| {
                        json!({
                            "mount_point": mount,
                            "total_bytes": 4u64 << 40,
                            "used_bytes": used,
                            "used_percent": percent.next(rng),
                        })
                    })
                    .collect();
                let disk_io: Vec<Value> = ["nvme0n1", "sda"]
                    .iter()
                    .zip(io.chunks_mut(2))
                    .map(|(name, rates)| {
                        json!({
                            "device": name,
                            "read_bytes_per_sec": rates[0].next(rng),
                            "write_bytes_per_sec": rates[1].next(rng),
                        })
                    })
                    .collect();
                let networks: Vec<Value> = ["eth0", "docker0", "wg0"]
                    .iter()
                    .zip(net_bytes.chunks(2))
                    .map(|(name, bytes)| {
                        json!({ "name": name, "rx_bytes": bytes[0], "tx_bytes": bytes[1], "rx_errors": 0, "tx_errors": 0 })
                    })
                    .collect();
                let temps: Vec<Value> = temperatures
                    .iter_mut()
                    .enumerate()
                    .map(|(t, w)| json!({ "label": format!("coretemp Core {t}"), "celsius": w.next(rng) }))
                    .collect();
                let top_processes: Vec<Value> = top
                    .iter()
                    .take(10)
                    .map(|&(p, cpu)| {
                        json!({ "pid": 1000 + p * 17, "name": names[p], "cpu_percent": cpu, "rss_bytes": rss[p] })
                    })
                    .collect();
                let cores: Vec<f64> = cores.iter_mut().map(|w| w.next(rng)).collect();
                for value in &mut custom {
                    if rng.range(0, 7) == 0 {
                        *value = (*value + rng.range(-20, 20)).max(0);
                    }
                }
                let custom: Map<String, Value> = custom
                    .iter()
                    .enumerate()
                    .map(|(c, value)| (format!("app.metric_{c}"), json!(*value as f64 / 10.0)))
                    .collect();
                json!({
                    "device_id": "web-01.example.com",
                    "os_info": "Ubuntu 22.04.4 LTS (Kernel: 5.15.0-105-generic)",
                    "t": 1_700_000_000_000i64 + 5000 * i as i64,
                    "cpu_usage": cpu.next(rng),
                    "ram_used_mb": ram_used,
                    "ram_total_mb": 16_384,
                    "swap_used_mb": 512,
                    "swap_total_mb": 4096,
                    "uptime_seconds": 864_000 + 5 * i as u64,
                    "process_count": processes,
                    "cpu_per_core": cores,
                    "cpu_breakdown": {
                        "user": breakdown[0].next(rng),
                        "system": breakdown[1].next(rng),
                        "iowait": breakdown[2].next(rng),
                        "steal": breakdown[3].next(rng),
                        "idle": breakdown[4].next(rng),
                    },
                    "load_avg": { "one": load[0].next(rng), "five": load[1].next(rng), "fifteen": load[2].next(rng) },
                    "disks": disks,
                    "disk_io": disk_io,
                    "networks": networks,
                    "temperatures": temps,
                    "top_processes": top_processes,
                    "custom": custom,
                })
            })
            .collect()
    }

    fn leaves(value: &Value) -> usize {
        match value {
            Value::Array(items) if !items.is_empty() => items.iter().map(leaves).sum(),
            Value::Object(map) if !map.is_empty() => map.values().map(leaves).sum(),
            _ => 1,
        }
    }

    #[test]
    fn reports_compress_well_below_per_row_zstd() {
        let rows = report_rows(720, 42);
        let json_bytes: usize = rows
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap().len())
            .sum();
        let per_row_zstd: usize = rows
            .iter()
            .map(|r| {
                zstd::bulk::compress(&serde_json::to_vec(r).unwrap(), 9)
                    .unwrap()
                    .len()
            })
            .sum();
        let encoder = encoder_of(&rows);
        let encoded = encoder.encode();
        let sealed = encoder.seal(9).unwrap();
        assert_identical(&decode_sealed(&sealed).unwrap(), &rows);
        let n = rows.len() as f64;
        let sealed_per_row = sealed.len() as f64 / n;
        let zstd_per_row = per_row_zstd as f64 / n;
        println!(
            "{} rows, {} leaves per row, {} columns: JSON {:.0} B/row, each row zstd-9 {:.1} B/row, \
             block encoded {:.1} B/row, sealed zstd-9 {:.1} B/row ({} B), {:.1}x smaller",
            rows.len(),
            leaves(&rows[0]),
            encoder.columns.len(),
            json_bytes as f64 / n,
            zstd_per_row,
            encoded.len() as f64 / n,
            sealed_per_row,
            sealed.len(),
            zstd_per_row / sealed_per_row,
        );
        assert!(sealed_per_row < 120.0, "{sealed_per_row} B/row");
        assert!(
            sealed_per_row * 4.0 < zstd_per_row,
            "{sealed_per_row} vs {zstd_per_row}"
        );
    }

    #[test]
    fn rollup_rows_round_trip() {
        let rng = &mut Rng(3);
        let mut cpu = Walk::new(rng, 10_000, 300, 2);
        let rows: Vec<Value> = (0..200)
            .map(|i| {
                let (a, b, c) = (cpu.next(rng), cpu.next(rng), cpu.next(rng));
                json!({
                    "t": 1_700_000_000 + 60 * i,
                    "cpu_usage": [12, a + b, a.min(c), b.max(c)],
                    "disk_used_percent:/": [12, 45.5, 45.25, 45.75],
                })
            })
            .collect();
        round_trip(&rows);
    }

    /// Run with `cargo test --release -p tailmon-server --lib column_block -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release"]
    fn push_timing() {
        use std::time::{Duration, Instant};
        let rows = report_rows(720, 9);
        let jsons: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap())
            .collect();
        let json_bytes: usize = jsons.iter().map(Vec::len).sum();
        let rounds = 30;
        // As in the store: each row is pushed right after it was parsed.
        let mut pushing = Duration::ZERO;
        let mut parsing = Duration::ZERO;
        for _ in 0..rounds {
            let mut encoder = BlockEncoder::new();
            for json in &jsons {
                let start = Instant::now();
                let row: Value = serde_json::from_slice(json).unwrap();
                let parsed = Instant::now();
                encoder.push(&row);
                pushing += parsed.elapsed();
                parsing += parsed - start;
            }
        }
        let per_row = |d: Duration| d.as_secs_f64() * 1e6 / (rounds * rows.len()) as f64;
        // Rows long parsed, spread over memory: cache misses on the Value.
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(encoder_of(&rows));
        }
        let cold = per_row(start.elapsed());
        let encoder = encoder_of(&rows);
        let start = Instant::now();
        let block = encoder.encode();
        let encode = start.elapsed().as_secs_f64() * 1e6;
        let start = Instant::now();
        let sealed = encoder.seal(9).unwrap();
        let seal = start.elapsed().as_secs_f64() * 1e6;
        let start = Instant::now();
        let decoded = decode_sealed(&sealed).unwrap();
        let decode_time = start.elapsed().as_secs_f64() * 1e6;
        assert_eq!(decoded.len(), rows.len());
        println!(
            "push: {:.2} µs/row just after parsing it (the parse: {:.2} µs), {cold:.2} µs/row \
             for rows parsed long before ({:.0} B JSON, {} leaves per row); per 720-row block: \
             encode {encode:.0} µs ({} B), seal-9 {seal:.0} µs ({} B), decode_sealed \
             {decode_time:.0} µs",
            per_row(pushing),
            per_row(parsing),
            json_bytes as f64 / rows.len() as f64,
            leaves(&rows[0]),
            block.len(),
            sealed.len(),
        );
    }

    // ---- push_serialize: the same block as push(&to_value(..)) ----

    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};
    use time::OffsetDateTime;

    /// Pushes every row both ways, `push(&to_value(row))` and
    /// `push_serialize(row)`, checking after each that the blocks are the
    /// same bytes; a row `to_value` rejects must be rejected and leave the
    /// block as it was. Returns the encoder of `push_serialize`.
    fn assert_same_as_to_value<T: Serialize>(rows: &[T]) -> BlockEncoder {
        let mut by_value = BlockEncoder::new();
        let mut by_serialize = BlockEncoder::new();
        for (i, row) in rows.iter().enumerate() {
            let pushed = by_serialize.push_serialize(row);
            match serde_json::to_value(row) {
                Ok(value) => {
                    assert!(
                        pushed.is_ok(),
                        "row {i}: {pushed:?} but to_value gave {value}"
                    );
                    by_value.push(&value);
                }
                Err(error) => assert!(
                    matches!(pushed, Err(BlockError::Serialize(_))),
                    "row {i}: to_value failed ({error}) but push_serialize gave {pushed:?}"
                ),
            }
            assert_eq!(by_serialize.len(), by_value.len());
            assert!(
                by_serialize.encode() == by_value.encode(),
                "row {i}: the blocks differ"
            );
        }
        by_serialize
    }

    /// Serializes a `Value` with its objects' entries in a scrambled order
    /// and with decoys: entries whose key comes again later, which
    /// `to_value` overwrites (so it still gives back the `Value`).
    struct Scrambled<'a> {
        value: &'a Value,
        seed: u64,
    }

    impl Serialize for Scrambled<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mix = |i: usize| {
                (self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17)
            };
            match self.value {
                Value::Object(map) => {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    if !entries.is_empty() {
                        let len = entries.len();
                        entries.rotate_left(self.seed as usize % len);
                    }
                    if self.seed & 4 != 0 {
                        entries.reverse();
                    }
                    let decoys = [
                        json!({ "decoy": [1, { "z": null }] }),
                        json!(7.5),
                        json!([]),
                    ];
                    let mut state = serializer.serialize_map(None)?;
                    for (i, (key, value)) in entries.into_iter().enumerate() {
                        let roll = mix(i);
                        if roll % 3 == 0 {
                            state.serialize_entry(key, &decoys[(roll >> 8) as usize % 3])?;
                        }
                        state.serialize_entry(
                            key,
                            &Scrambled {
                                value,
                                seed: mix(i + 1000),
                            },
                        )?;
                    }
                    state.end()
                }
                Value::Array(items) => {
                    serializer.collect_seq(items.iter().enumerate().map(|(i, value)| Scrambled {
                        value,
                        seed: mix(i),
                    }))
                }
                other => other.serialize(serializer),
            }
        }
    }

    proptest! {
        #[test]
        fn push_serialize_of_values_matches_push(
            rows in proptest::collection::vec((value(few_keys()), any::<u64>()), 0..16),
        ) {
            let values: Vec<&Value> = rows.iter().map(|(value, _)| value).collect();
            assert_same_as_to_value(&values);
            let scrambled: Vec<Scrambled<'_>> = rows
                .iter()
                .map(|(value, seed)| Scrambled { value, seed: *seed })
                .collect();
            for row in &scrambled {
                prop_assert_eq!(&serde_json::to_value(row).unwrap(), row.value);
            }
            assert_same_as_to_value(&scrambled);
            // The same rows again: now every path is known (the fast path).
            let twice: Vec<&Scrambled<'_>> = scrambled.iter().chain(&scrambled).collect();
            assert_same_as_to_value(&twice);
        }

        #[test]
        fn push_serialize_of_arbitrary_values_matches_push(
            rows in proptest::collection::vec((value(any_keys()), any::<u64>()), 0..8),
        ) {
            let scrambled: Vec<Scrambled<'_>> = rows
                .iter()
                .map(|(value, seed)| Scrambled { value, seed: *seed })
                .collect();
            assert_same_as_to_value(&scrambled);
        }

        #[test]
        fn push_serialize_of_structs_matches_push(
            seeds in proptest::collection::vec(any::<u64>(), 1..12),
        ) {
            let rows: Vec<Sample> = seeds.iter().map(|seed| sample(*seed)).collect();
            for row in &rows {
                prop_assert!(serde_json::to_value(row).is_ok());
            }
            let encoder = assert_same_as_to_value(&rows);
            prop_assert_eq!(encoder.len(), rows.len());
        }
    }

    #[derive(Serialize)]
    struct Child {
        id: u32,
        label: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tags: Vec<char>,
        scale: Meters,
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Color {
        Red,
        #[serde(rename = "grün")]
        Green,
    }

    #[derive(Serialize)]
    enum Kind {
        Idle,
        Busy(f32),
        Pair(i8, u8),
        NoFields(),
        Moving { speed: f64, heading: Option<u16> },
        Empty {},
        Nested(Box<Kind>),
    }

    #[derive(Serialize)]
    struct Meters(f64);

    #[derive(Serialize)]
    struct Marker;

    /// Serialized with `serialize_bytes`.
    struct Bytes(Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(&self.0)
        }
    }

    /// A map from any keys, duplicates and order kept (`collect_map`).
    struct Pairs<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }

    /// Serialized with `collect_str`, as a value or a key.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Hex(u32);

    impl Serialize for Hex {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(&format_args!("0x{:x}", self.0))
        }
    }

    /// Fields flattened into a struct: serialized as a map, and a key of
    /// `extra` may repeat a field (the later one wins).
    #[derive(Serialize)]
    struct Flattened {
        name: String,
        #[serde(flatten)]
        extra: BTreeMap<String, Value>,
        #[serde(flatten)]
        inner: Option<LoadLike>,
    }

    #[derive(Serialize)]
    struct LoadLike {
        one: f64,
        five: f32,
    }

    /// Everything `to_value` has a rule for.
    #[derive(Serialize)]
    struct Sample {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<u32>,
        nothing: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option")]
        at_maybe: Option<OffsetDateTime>,
        metrics: HashMap<String, f64>,
        ratio: f32,
        ratios: Vec<f32>,
        big: u64,
        signed: i64,
        wide: (i128, u128, i128),
        children: Vec<Child>,
        unit: (),
        marker: Marker,
        tuple: (i8, char, bool, i16, u16),
        kind: Kind,
        kinds: Vec<Kind>,
        bytes: Bytes,
        floats: Vec<f64>,
        by_int: BTreeMap<i64, bool>,
        by_u8: HashMap<u8, Option<u8>>,
        by_bool: BTreeMap<bool, i8>,
        by_char: BTreeMap<char, i16>,
        by_color: BTreeMap<Color, Color>,
        by_float: Pairs<f64, u8>,
        by_f32: Pairs<f32, u8>,
        by_hex: Pairs<Hex, Hex>,
        by_wide: Pairs<i128, u128>,
        duplicates: Pairs<&'static str, Value>,
        flattened: Flattened,
        json: Value,
        nested: Vec<Vec<Option<Vec<u8>>>>,
    }

    fn sample(seed: u64) -> Sample {
        let rng = &mut Rng(seed);
        let mut pick = |n: u64| rng.next() % n;
        let name = ["a", "b", "", "ü🦀"][pick(4) as usize].to_string();
        let children = (0..pick(4))
            .map(|i| Child {
                id: i as u32 * 7 + pick(3) as u32,
                label: (pick(2) == 0).then(|| format!("child-{}", pick(3))),
                tags: (0..pick(3)).map(|t| ['x', 'é', '🦀'][t as usize]).collect(),
                scale: Meters(pick(1000) as f64 / 100.0),
            })
            .collect();
        let float = |roll: u64| match roll % 8 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => -0.0,
            3 => 0.1 + 0.2,
            4 => f64::NEG_INFINITY,
            5 => 1e300,
            _ => (roll % 10_000) as f64 / 100.0,
        };
        let kind = |roll: u64| match roll % 8 {
            0 => Kind::Idle,
            1 => Kind::Busy(if roll & 8 == 0 { 1.1 } else { f32::NAN }),
            2 => Kind::Pair(-3, 200),
            3 => Kind::NoFields(),
            4 => Kind::Moving {
                speed: (roll % 977) as f64 / 10.0,
                heading: (roll & 16 == 0).then_some(270),
            },
            5 => Kind::Empty {},
            6 => Kind::Nested(Box::new(Kind::Busy(0.5))),
            _ => Kind::Nested(Box::new(Kind::Moving {
                speed: 1.0,
                heading: None,
            })),
        };
        let mut metrics = HashMap::new();
        for m in 0..pick(12) {
            metrics.insert(format!("m.{}", pick(20) + m), float(pick(1 << 20)));
        }
        let mut extra = BTreeMap::new();
        for e in 0..pick(4) {
            let key = ["name", "one", "x", "five", "y"][(pick(5) + e) as usize % 5];
            extra.insert(key.to_string(), json!(pick(5)));
        }
        Sample {
            name,
            maybe: (pick(2) == 0).then(|| pick(100) as u32),
            nothing: (pick(4) == 0).then(|| "something".to_string()),
            at: OffsetDateTime::from_unix_timestamp_nanos(
                1_700_000_000_000_000_000 + i128::from(pick(1 << 40)) * 1000,
            )
            .unwrap(),
            at_maybe: (pick(2) == 0).then(|| OffsetDateTime::from_unix_timestamp(0).unwrap()),
            metrics,
            ratio: [0.1f32, 1.5, f32::NAN, f32::INFINITY, -0.0, 16_777_217.0][pick(6) as usize],
            ratios: (0..pick(4)).map(|r| r as f32 / 3.0).collect(),
            big: [u64::MAX, i64::MAX as u64 + 1, 5, i64::MAX as u64][pick(4) as usize],
            signed: [i64::MIN, -1, 0, i64::MAX][pick(4) as usize],
            wide: (
                [-1, i128::from(i64::MIN), i128::from(u64::MAX), 3][pick(4) as usize],
                [0, u128::from(u64::MAX)][pick(2) as usize],
                -(pick(1000) as i128),
            ),
            children,
            unit: (),
            marker: Marker,
            tuple: (-(pick(100) as i8), 'ß', pick(2) == 0, -300, 60_000),
            kind: kind(pick(1 << 20)),
            kinds: (0..pick(4)).map(|_| kind(pick(1 << 20))).collect(),
            bytes: Bytes((0..pick(5)).map(|b| (b * 61) as u8).collect()),
            floats: (0..pick(6)).map(|_| float(pick(1 << 20))).collect(),
            by_int: (0..pick(4))
                .map(|k| (k as i64 * 37 - 50, k % 2 == 0))
                .collect(),
            by_u8: (0..pick(4))
                .map(|k| (k as u8 * 10, (k > 0).then_some(k as u8)))
                .collect(),
            by_bool: [(true, 1), (false, -1)]
                .into_iter()
                .take(pick(3) as usize)
                .collect(),
            by_char: [('z', 1), ('a', 2), ('🦀', 3)]
                .into_iter()
                .take(pick(4) as usize)
                .collect(),
            by_color: [(Color::Green, Color::Red), (Color::Red, Color::Green)]
                .into_iter()
                .take(pick(3) as usize)
                .collect(),
            by_float: Pairs(
                [
                    (1.0, 1),
                    (0.5, 2),
                    (1e20, 3),
                    (-0.0, 4),
                    (1.0, 5),
                    (0.1 + 0.2, 6),
                ]
                .into_iter()
                .take(pick(7) as usize)
                .collect(),
            ),
            by_f32: Pairs(
                [(0.1f32, 1), (1e-7, 2), (3.0, 3)]
                    .into_iter()
                    .take(pick(4) as usize)
                    .collect(),
            ),
            by_hex: Pairs(
                (0..pick(3))
                    .map(|h| (Hex(h as u32 * 255), Hex(7)))
                    .collect(),
            ),
            by_wide: Pairs(vec![(i128::MIN, u128::from(u64::MAX)), (i128::MAX, 0)]),
            duplicates: Pairs(
                [
                    ("b", json!(1)),
                    ("a", json!({ "deep": [1, 2] })),
                    ("b", json!("two")),
                    ("a", json!(null)),
                    ("c", json!([])),
                    ("a", json!({ "deep": [3] })),
                ]
                .into_iter()
                .take(pick(7) as usize)
                .collect(),
            ),
            flattened: Flattened {
                name: "flat".into(),
                extra,
                inner: (pick(2) == 0).then_some(LoadLike {
                    one: 0.25,
                    five: 0.1,
                }),
            },
            json: [
                json!(null),
                json!({ "b": 1, "a": [true, {}] }),
                json!([1.5, "s"]),
            ][pick(3) as usize]
                .clone(),
            nested: (0..pick(3))
                .map(|i| {
                    (0..pick(3))
                        .map(|j| (pick(2) == 0).then(|| vec![i as u8, j as u8]))
                        .collect()
                })
                .collect(),
        }
    }

    #[test]
    fn push_serialize_of_structs_with_changing_shapes() {
        let rows: Vec<Sample> = (0..60).map(sample).collect();
        let encoder = assert_same_as_to_value(&rows);
        let values: Vec<Value> = rows
            .iter()
            .map(|row| serde_json::to_value(row).unwrap())
            .collect();
        assert_identical(&decode(&encoder.encode()).unwrap(), &values);
        // The same rows once more, now along known paths.
        let twice: Vec<&Sample> = rows.iter().chain(&rows).collect();
        let encoder = assert_same_as_to_value(&twice);
        // Rows with a key twice (most of them here) take the slow path.
        assert!(encoder.fast_rows >= 10, "{} fast rows", encoder.fast_rows);
    }

    /// A field named as serde_json's private `RawValue`: with serde_json's
    /// `raw_value` feature `to_value` parses the string, without it the
    /// struct is an object; either way `push_serialize` agrees.
    struct RawLike(&'static str);

    impl Serialize for RawLike {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct;
            const TOKEN: &str = "$serde_json::private::RawValue";
            let mut state = serializer.serialize_struct(TOKEN, 1)?;
            state.serialize_field(TOKEN, self.0)?;
            state.end()
        }
    }

    #[test]
    fn push_serialize_of_serde_json_markers() {
        #[derive(Serialize)]
        struct Row {
            raw: RawLike,
            n: u8,
        }
        assert_same_as_to_value(&[
            Row {
                raw: RawLike(r#"{"b": [1, 2.5], "a": "x"}"#),
                n: 1,
            },
            Row {
                raw: RawLike("12"),
                n: 2,
            },
            Row {
                raw: RawLike(r#"{"b": [3, 2.5], "a": "x"}"#),
                n: 3,
            },
        ]);
    }

    /// Fails to serialize, after some leaves of the row were seen.
    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: serde::Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this row is broken"))
        }
    }

    /// Displays with an error (`to_string` would panic).
    struct BadDisplay;

    impl std::fmt::Display for BadDisplay {
        fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Err(std::fmt::Error)
        }
    }

    /// Calls `serialize_value` without a key (`to_value` would panic).
    struct ValueWithoutKey;

    impl Serialize for ValueWithoutKey {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            map.serialize_value(&1)?;
            map.end()
        }
    }

    /// Calls `serialize_key` twice: serde_json keeps the second key.
    struct KeyTwice;

    impl Serialize for KeyTwice {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            map.serialize_key("first")?;
            map.serialize_key("second")?;
            map.serialize_value(&1)?;
            map.serialize_key("dangling")?;
            map.end()
        }
    }

    #[test]
    fn push_serialize_refuses_what_to_value_refuses() {
        #[derive(Serialize)]
        struct Row<T> {
            a: u8,
            nested: Vec<T>,
            z: &'static str,
        }
        let row = |i: u8| Row {
            a: i,
            nested: vec![json!({ "x": i })],
            z: "z",
        };
        let mut encoder = BlockEncoder::new();
        encoder.push_serialize(&row(1)).unwrap();
        let before = encoder.encode();
        let failing: Vec<Result<(), BlockError>> = vec![
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Failing],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![i128::MAX],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![i128::MIN],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![u128::MAX],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(Some(1), 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(None::<u8>, 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![((), 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(vec![1], 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(f64::NAN, 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(f32::INFINITY, 1)])],
                z: "z",
            }),
            encoder.push_serialize(&Row {
                a: 2,
                nested: vec![Pairs(vec![(Kind::Busy(1.0), 1)])],
                z: "z",
            }),
        ];
        for (i, result) in failing.iter().enumerate() {
            assert!(
                matches!(result, Err(BlockError::Serialize(_))),
                "{i}: {result:?}"
            );
        }
        // to_value agrees on each (checked with the same rows).
        assert!(
            serde_json::to_value(Row {
                a: 2,
                nested: vec![Failing],
                z: "z"
            })
            .is_err()
        );
        assert!(serde_json::to_value(i128::MAX).is_err());
        assert!(serde_json::to_value(u128::MAX).is_err());
        assert!(serde_json::to_value(Pairs(vec![(f64::NAN, 1)])).is_err());
        assert!(serde_json::to_value(Pairs(vec![(Some(1), 1)])).is_err());
        // What to_value would panic on is refused too.
        let hex = Pairs(vec![(1, Hex(1))]);
        assert!(encoder.push_serialize(&hex).is_ok());
        encoder = BlockEncoder::new();
        encoder.push_serialize(&row(1)).unwrap();
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&BadDisplay)
            }
        }
        assert!(
            encoder
                .push_serialize(&Row {
                    a: 2,
                    nested: vec![Bad],
                    z: "z"
                })
                .is_err()
        );
        assert!(encoder.push_serialize(&ValueWithoutKey).is_err());
        // Nothing of the refused rows was recorded.
        assert_eq!(encoder.len(), 1);
        assert!(encoder.encode() == before);
        encoder.push_serialize(&row(2)).unwrap();
        let mut by_value = BlockEncoder::new();
        by_value.push(&serde_json::to_value(row(1)).unwrap());
        by_value.push(&serde_json::to_value(row(2)).unwrap());
        assert!(encoder.encode() == by_value.encode());
        // A key without a value is dropped, as serde_json drops it.
        assert_same_as_to_value(&[KeyTwice, KeyTwice]);
    }

    #[test]
    fn push_serialize_of_top_level_scalars() {
        assert_same_as_to_value(&[json!(1), json!("s"), json!(null), json!([]), json!({})]);
        assert_same_as_to_value(&[1.5f64, f64::NAN, 2.0, f64::INFINITY, -0.0]);
        assert_same_as_to_value(&[Some(3u64), None, Some(u64::MAX)]);
        assert_same_as_to_value(&["a", "a", "b"]);
        assert_same_as_to_value(&[Kind::Idle, Kind::Empty {}, Kind::Pair(1, 2), Kind::Idle]);
    }

    /// Pushes into another encoder while it is serialized.
    struct Reentrant {
        inner: std::cell::RefCell<BlockEncoder>,
        n: u8,
    }

    impl Serialize for Reentrant {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.inner
                .borrow_mut()
                .push_serialize(&json!({ "inner": self.n }))
                .map_err(serde::ser::Error::custom)?;
            (self.n, "x").serialize(serializer)
        }
    }

    #[test]
    fn push_serialize_inside_push_serialize() {
        let row = Reentrant {
            inner: std::cell::RefCell::new(BlockEncoder::new()),
            n: 1,
        };
        let mut outer = BlockEncoder::new();
        outer.push_serialize(&row).unwrap();
        outer.push_serialize(&row).unwrap();
        let mut expected = BlockEncoder::new();
        expected.push(&json!([1, "x"]));
        expected.push(&json!([1, "x"]));
        assert!(outer.encode() == expected.encode());
        let mut expected = BlockEncoder::new();
        expected.push(&json!({ "inner": 1 }));
        expected.push(&json!({ "inner": 1 }));
        assert!(row.inner.borrow().encode() == expected.encode());
    }

    #[test]
    fn push_serialize_of_a_huge_row_then_small_ones() {
        let huge: Vec<Value> = (0..70_000).map(|i| json!({ "i": i })).collect();
        let small = vec![json!({ "i": 1 }), json!(2)];
        assert_same_as_to_value(&[&small, &huge, &small, &huge[..3]]);
        SCRATCH.with(|scratch| {
            let scratch = scratch.borrow();
            assert!(scratch.tape.events.capacity() <= SCRATCH_EVENTS);
        });
    }

    /// The store's row: the timestamp and the report.
    #[derive(Serialize)]
    struct ReportRow<'a> {
        t: i64,
        r: &'a tailmon_core::Report,
    }

    /// `n` full reports of one device, with everything filled (about 150
    /// leaves each), changing shape now and then.
    fn reports(n: usize, seed: u64) -> Vec<(i64, tailmon_core::Report)> {
        use tailmon_core::{
            CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, ProcessInfo, Report, Temperature,
        };
        let rng = &mut Rng(seed);
        let mut cpu = Walk::new(rng, 10_000, 150, 2);
        let mut cores: Vec<Walk> = (0..16).map(|_| Walk::new(rng, 1000, 40, 1)).collect();
        let mut breakdown: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 10_000, 80, 2)).collect();
        let mut load: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 800, 10, 2)).collect();
        let mut io: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 500_000, 20_000, 0)).collect();
        let mut temperatures: Vec<Walk> = (0..6).map(|_| Walk::new(rng, 9000, 50, 2)).collect();
        let mut process_cpu: Vec<Walk> = (0..12).map(|_| Walk::new(rng, 4000, 60, 2)).collect();
        let mut ram_used: i64 = 9_000;
        let mut disk_used: Vec<u64> = vec![120 << 30, 300 << 30, 2 << 40];
        let mut net_bytes: Vec<u64> = vec![1 << 36, 1 << 34, 1 << 30, 1 << 29, 1 << 20, 1 << 19];
        let mut custom: Vec<i64> = (0..20).map(|_| rng.range(0, 5000)).collect();
        let names = [
            "postgres",
            "nginx",
            "tailmon-agent",
            "systemd",
            "dockerd",
            "containerd",
            "node",
            "python3",
            "sshd",
            "cron",
            "redis-server",
            "java",
        ];
        let start = 1_700_000_000_000i64;
        (0..n)
            .map(|i| {
                let ts = start + 5000 * i as i64 + rng.range(0, 3);
                let at = |ms: i64| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
                };
                let mut report = Report::new("web-01.example.com", at(ts - 40));
                report.os_info = "Ubuntu 22.04.4 LTS (Kernel: 5.15.0-105-generic)".into();
                report.cpu_usage = cpu.next(rng);
                ram_used = (ram_used + rng.range(-40, 40)).clamp(1000, 16_000);
                report.ram_used_mb = ram_used as u64;
                report.ram_total_mb = 16_384;
                report.received_at = Some(at(ts));
                report.cpu_per_core = Some(cores.iter_mut().map(|w| w.next(rng)).collect());
                let b: Vec<f64> = breakdown.iter_mut().map(|w| w.next(rng)).collect();
                report.cpu_breakdown = Some(CpuBreakdown {
                    user: b[0],
                    system: b[1],
                    iowait: b[2],
                    steal: b[3],
                });
                let l: Vec<f64> = load.iter_mut().map(|w| w.next(rng)).collect();
                report.load_avg = Some(LoadAvg {
                    one: l[0],
                    five: l[1],
                    fifteen: l[2],
                });
                report.swap_used_mb = Some(512);
                report.swap_total_mb = Some(4096);
                for used in &mut disk_used {
                    *used += rng.range(0, 200_000) as u64 * 4096 / 100;
                }
                report.disks = Some(
                    ["/", "/home", "/var/lib/docker"]
                        .iter()
                        .zip(&disk_used)
                        .map(|(mount, used)| Disk {
                            mount_point: (*mount).into(),
                            fs_type: "ext4".into(),
                            total_bytes: 4 << 40,
                            used_bytes: *used,
                        })
                        .collect(),
                );
                // Rates are absent on the first sample.
                report.disk_io = (i > 0).then(|| {
                    ["nvme0n1", "sda"]
                        .iter()
                        .zip(io.chunks_mut(2))
                        .map(|(name, rates)| DiskIo {
                            device: (*name).into(),
                            read_bytes_per_sec: rates[0].next(rng),
                            write_bytes_per_sec: rates[1].next(rng),
                        })
                        .collect()
                });
                for bytes in &mut net_bytes {
                    *bytes += rng.range(0, 3_000_000) as u64;
                }
                report.networks = Some(
                    ["eth0", "docker0", "wg0"]
                        .iter()
                        .zip(net_bytes.chunks(2))
                        .map(|(name, bytes)| NetworkInterface {
                            interface: (*name).into(),
                            rx_bytes_per_sec: (i > 0).then(|| rng.range(0, 600_000) as f64),
                            tx_bytes_per_sec: (i > 0).then(|| rng.range(0, 600_000) as f64),
                            rx_bytes_total: bytes[0],
                            tx_bytes_total: bytes[1],
                            rx_errors: 0,
                            tx_errors: u64::from(i % 100 == 99),
                        })
                        .collect(),
                );
                report.temperatures = Some(
                    temperatures
                        .iter_mut()
                        .enumerate()
                        .map(|(t, w)| Temperature {
                            label: format!("coretemp Core {t}"),
                            celsius: w.next(rng),
                        })
                        .collect(),
                );
                report.uptime_seconds = Some(864_000 + 5 * i as u64);
                report.boot_time = Some(at(start - 864_000_000));
                report.process_count = Some(300 + rng.range(0, 20) as u64);
                let mut top: Vec<(usize, f64)> = process_cpu
                    .iter_mut()
                    .map(|w| w.next(rng))
                    .enumerate()
                    .collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                // Now and then fewer processes.
                let shown = if i % 17 == 5 { 7 } else { 10 };
                report.top_processes = Some(
                    top.iter()
                        .take(shown)
                        .map(|&(p, cpu)| ProcessInfo {
                            pid: 1000 + p as u32 * 17,
                            name: names[p].into(),
                            cpu_percent: cpu,
                            rss_bytes: ((p as u64 + 1) * 37) << 20,
                        })
                        .collect(),
                );
                for value in &mut custom {
                    if rng.range(0, 7) == 0 {
                        *value = (*value + rng.range(-20, 20)).max(0);
                    }
                }
                // A metric that comes and goes.
                let extra = (i % 10 < 3).then(|| ("app.aaa_sometimes".to_string(), 1.5));
                report.custom = Some(
                    custom
                        .iter()
                        .enumerate()
                        .map(|(c, value)| (format!("app.metric_{c}"), *value as f64 / 10.0))
                        .chain(extra)
                        .collect(),
                );
                (ts, report)
            })
            .collect()
    }

    #[test]
    fn push_serialize_of_reports_matches_push_to_value() {
        let mut reports = reports(120, 5);
        // Shape changes: parts missing, none at all, back again.
        reports[40].1.disks = None;
        reports[41].1.custom = Some(BTreeMap::new());
        reports[42].1.top_processes = Some(Vec::new());
        reports[43].1 = tailmon_core::Report::new("web-01.example.com", reports[43].1.last_seen);
        reports[44].1.cpu_per_core = Some(vec![f64::NAN, 1.0]);
        let rows: Vec<ReportRow<'_>> = reports
            .iter()
            .map(|(t, r)| ReportRow { t: *t, r })
            .collect();
        let encoder = assert_same_as_to_value(&rows);
        // Rows of a known shape take the fast path, HashMap-free or not.
        println!(
            "{} of {} report rows took the fast path",
            encoder.fast_rows,
            rows.len()
        );
        assert!(encoder.fast_rows > 100, "{} fast rows", encoder.fast_rows);
        let leaves_per_row = leaves(&serde_json::to_value(&rows[1]).unwrap());
        assert!(leaves_per_row > 140, "{leaves_per_row} leaves");
        // The block decodes to what to_value gave, and back to the reports.
        let values: Vec<Value> = rows
            .iter()
            .map(|row| serde_json::to_value(row).unwrap())
            .collect();
        let decoded = decode_sealed(&encoder.seal(3).unwrap()).unwrap();
        assert_identical(&decoded, &values);
        for ((_, report), mut row) in reports.iter().zip(decoded) {
            // NaN went to null, which does not read back as an f64.
            if report
                .cpu_per_core
                .as_ref()
                .is_none_or(|c| c.iter().all(|x| x.is_finite()))
            {
                let back: tailmon_core::Report = serde_json::from_value(row["r"].take()).unwrap();
                assert_eq!(&back, report);
            }
        }
    }

    /// Run with `cargo test --release -p tailmon-server --lib column_block -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release"]
    fn push_serialize_timing() {
        use std::time::{Duration, Instant};
        let reports = reports(720, 9);
        let rows: Vec<ReportRow<'_>> = reports
            .iter()
            .map(|(t, r)| ReportRow { t: *t, r })
            .collect();
        let rounds = 30;
        let per_row = |d: Duration| d.as_secs_f64() * 1e6 / (rounds * rows.len()) as f64;
        // Each way in its own rounds, as the store uses one.
        let (mut to_value, mut push) = (Duration::ZERO, Duration::ZERO);
        let mut by_value = BlockEncoder::new();
        for _ in 0..rounds {
            by_value = BlockEncoder::new();
            for row in &rows {
                let start = Instant::now();
                let value = serde_json::to_value(row).unwrap();
                let built = Instant::now();
                by_value.push(&value);
                push += built.elapsed();
                to_value += built - start;
                std::hint::black_box(value);
            }
        }
        let mut serialize = Duration::ZERO;
        let mut by_serialize = BlockEncoder::new();
        for _ in 0..rounds {
            by_serialize = BlockEncoder::new();
            let start = Instant::now();
            for row in &rows {
                by_serialize.push_serialize(row).unwrap();
            }
            serialize += start.elapsed();
        }
        assert!(by_value.encode() == by_serialize.encode());
        // The part of push_serialize that only serializes into the tape.
        let mut tape = Tape::default();
        let start = Instant::now();
        for _ in 0..rounds {
            for row in &rows {
                tape.events.clear();
                tape.arena.clear();
                row.serialize(TapeSerializer { tape: &mut tape }).unwrap();
            }
        }
        let taping = start.elapsed();
        println!(
            "{} report rows, {} leaves each: push(&to_value(row)) {:.2} µs/row \
             (to_value {:.2} + push {:.2}), push_serialize(row) {:.2} µs/row \
             (serializing into the tape {:.2})",
            rows.len(),
            leaves(&serde_json::to_value(&rows[1]).unwrap()),
            per_row(to_value + push),
            per_row(to_value),
            per_row(push),
            per_row(serialize),
            per_row(taping),
        );
    }

    /// Any number a report may hold.
    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..1000).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |x| Number::from_f64(x).map(Value::Number)),
            (
                prop_oneof![-10_000i64..10_000, -(1i64 << 53)..(1i64 << 53)],
                0i32..=7
            )
                .prop_map(|(scaled, decimals)| float(scaled as f64 / 10f64.powi(decimals))),
            proptest::sample::select(floats()).prop_map(float),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            number(),
            any::<String>().prop_map(Value::String),
            proptest::sample::select(vec!["", "a", "b"]).prop_map(Value::from),
        ]
    }

    /// Values nested up to 3 deep, with keys from `keys`.
    fn value(keys: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(keys.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn any_keys() -> BoxedStrategy<String> {
        any::<String>().boxed()
    }

    /// A few keys, so that rows share columns with changing kinds.
    fn few_keys() -> BoxedStrategy<String> {
        proptest::sample::select(vec!["a", "b", "", "a/b", "ü:/"])
            .prop_map(String::from)
            .boxed()
    }

    proptest! {
        #[test]
        fn arbitrary_rows_round_trip(rows in proptest::collection::vec(value(any_keys()), 0..12)) {
            round_trip(&rows);
        }

        #[test]
        fn similar_rows_round_trip(rows in proptest::collection::vec(value(few_keys()), 0..24)) {
            round_trip(&rows);
        }

        #[test]
        fn decimal_columns_round_trip(
            cells in proptest::collection::vec(
                (prop_oneof![-1000i64..1000, -(1i64 << 53)..(1i64 << 53)], 0i32..=7, any::<bool>()),
                1..40,
            )
        ) {
            let rows: Vec<Value> = cells
                .into_iter()
                .map(|(scaled, decimals, int)| {
                    let x = if int { Value::from(scaled) } else { float(scaled as f64 / 10f64.powi(decimals)) };
                    json!({ "x": x, "y": [x] })
                })
                .collect();
            round_trip(&rows);
        }

        #[test]
        fn encode_push_encode(
            first in proptest::collection::vec(value(few_keys()), 0..10),
            second in proptest::collection::vec(value(few_keys()), 0..10),
        ) {
            let mut encoder = encoder_of(&first);
            assert_identical(&decode(&encoder.encode()).unwrap(), &first);
            for row in &second {
                encoder.push(row);
            }
            let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
            assert_identical(&decode(&encoder.encode()).unwrap(), &all);
        }

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
            let _ = decode_sealed(&bytes);
            let mut versioned = vec![VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = decode(&versioned);
        }

        #[test]
        fn decode_never_panics_on_corrupt_blocks(
            rows in proptest::collection::vec(value(few_keys()), 1..8),
            cut in any::<proptest::sample::Index>(),
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 1..4),
        ) {
            let encoder = encoder_of(&rows);
            let block = encoder.encode();
            prop_assert!(decode(&block[..cut.index(block.len())]).is_err());
            let mut flipped = block.clone();
            for (index, bit) in flips {
                flipped[index.index(block.len())] ^= 1 << bit;
            }
            let _ = decode(&flipped);
            let sealed = encoder.seal(1).unwrap();
            let _ = decode_sealed(&sealed[..cut.index(sealed.len())]);
            let mut flipped = sealed.clone();
            flipped[cut.index(sealed.len())] ^= 0x10;
            let _ = decode_sealed(&flipped);
        }
    }
}
