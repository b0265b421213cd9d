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
//! concatenates. Decoding checks every count against the input and caps what
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
        }
    }
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
    fn push(&mut self, leaf: &Value) {
        let kind = match leaf {
            Value::Null => NULL,
            Value::Bool(false) => FALSE,
            Value::Bool(true) => TRUE,
            Value::Number(number) => self.push_number(number),
            Value::String(string) => self.push_string(string),
            Value::Array(_) => EMPTY_ARRAY,
            Value::Object(_) => EMPTY_OBJECT,
        };
        self.push_kind(kind);
    }

    /// Writes a number to its stream and returns its kind.
    fn push_number(&mut self, number: &Number) -> u8 {
        if let Some(int) = number.as_i64() {
            put_varint(&mut self.ints, zigzag(int.wrapping_sub(self.prev_int)));
            self.prev_int = int;
            INT
        } else if let Some(uint) = number.as_u64() {
            put_varint(&mut self.ints, uint);
            UINT
        } else {
            // Without serde_json's `arbitrary_precision` every other number
            // is a finite f64; a NaN here would fail decoding, not vanish.
            self.push_float(number.as_f64().unwrap_or(f64::NAN))
        }
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
        }
    }

    /// Appends one row: any JSON value.
    pub(crate) fn push(&mut self, row: &serde_json::Value) {
        let index = self.rows;
        self.visited = 0;
        self.walk(0, row);
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

    /// Whether no row was pushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
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
            leaf => self.push_leaf(node, leaf),
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

    /// Adds a trie node below `parent`.
    fn add_node(&mut self, parent: usize, segment: Segment) -> usize {
        self.nodes.push(TrieNode::new(parent, Some(segment)));
        self.nodes.len() - 1
    }

    /// Records a leaf at trie node `node`, creating its column if new.
    fn push_leaf(&mut self, node: usize, leaf: &Value) {
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
        assert_eq!(encoder.is_empty(), rows.is_empty());
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
        assert!(encoder.is_empty());
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
