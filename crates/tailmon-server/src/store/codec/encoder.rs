//! The encoder: [`BlockEncoder`] keeps one set of streams per column as rows
//! arrive, from a `serde_json::Value` or, without building one, from any
//! `Serialize` row through the [serializer](super::serializer), and
//! concatenates them into a block in the [format](super::format).

#[cfg(test)]
use serde_json::{Number, Value};

use super::format::*;
use super::serializer::{Event, SCRATCH, Scratch, Tape, TapeSerializer, Text};

/// What one column holds in one row: a scalar, or an empty array or object.
#[derive(Clone, Copy)]
pub(super) enum Leaf<'a> {
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
    pub(super) fn of(value: &'a Value) -> Self {
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
    #[cfg(test)]
    pub(super) fn of_number(number: &Number) -> Self {
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
pub(super) enum Segment {
    /// An object key.
    Key(Box<str>),
    /// An array index.
    Index(usize),
}

/// Appends a segment in the path encoding.
pub(super) fn put_segment(out: &mut Vec<u8>, segment: &Segment) {
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
pub(super) struct TrieNode {
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
pub(super) struct Arrival {
    /// The child node.
    child: usize,
    /// The key, when it was a `'static` name (a struct field): the same
    /// address and length then mean the same key, without comparing bytes.
    name: Option<&'static str>,
}

/// A run of rows with the same kind in one column.
#[derive(Clone, Copy)]
pub(super) struct Run {
    /// The kind.
    kind: u8,
    /// How many rows.
    len: u32,
}

/// One column being encoded: its kinds and value streams so far.
pub(super) struct Column {
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
    pub(super) scale: u8,
    /// Raw floats: bits XOR the previous float's bits, little-endian.
    pub(super) raws: Vec<u8>,
    /// The bits of the previous float, decimal or raw.
    prev_float: u64,
    /// New strings: varint length and bytes.
    pub(super) strings: Vec<u8>,
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
    #[cfg(test)]
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
pub(super) fn put_transposed(out: &mut Vec<u8>, raws: &[u8]) {
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
    pub(super) columns: Vec<Column>,
    /// Leaves of the row being pushed so far.
    visited: usize,
    /// The number of the current [`push_serialize`](Self::push_serialize),
    /// for [`TrieNode::seen`].
    stamp: u64,
    /// Rows [`push_tape`](Self::push_tape) took the fast path for.
    #[cfg(test)]
    pub(super) fast_rows: usize,
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
    /// without its key, a `Display` that fails in `collect_str`). The one
    /// place it differs from `to_value` on purpose: serde_json's private
    /// marker structs (`RawValue`, `Number` under `arbitrary_precision`) are
    /// objects like any struct (see the serializer).
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
    #[cfg(test)]
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
