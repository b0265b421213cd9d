//! The decoder: a block back into its rows, checking every count against the
//! input and capping what it builds (the limits in [`super::format`]), so
//! that corrupt input gives an error, never a panic or an unbounded
//! allocation.

use std::io::Read;

use serde_json::{Map, Number, Value};

use super::format::*;

/// What decoding may still build, in approximate bytes.
pub(super) struct Budget(u64);

impl Budget {
    /// Takes `cost` from the budget, or fails when it is spent.
    fn charge(&mut self, cost: u64) -> Result<(), BlockError> {
        self.0 = self.0.checked_sub(cost).ok_or(BlockError::TooLarge)?;
        Ok(())
    }
}

/// A column as the decoder reads it.
pub(super) struct Layout {
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
pub(super) struct PathNode {
    /// Children by object key, sorted by key.
    keys: Vec<(String, usize)>,
    /// Children by array index, sorted by index.
    items: Vec<(u64, usize)>,
    /// The column whose path ends here.
    column: Option<usize>,
}

/// The decoder's trie of column paths, which rebuilds rows from their
/// leaves; node 0 is the root (the empty path).
pub(super) struct PathTrie {
    /// The nodes.
    nodes: Vec<PathNode>,
}

/// The error for leaves that cannot all be in one row.
pub(super) const CONFLICT: BlockError = BlockError::Malformed("leaves of one row conflict");
/// The error for a trie node that should exist.
pub(super) const LOST: BlockError = BlockError::Malformed("path trie is inconsistent");

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
pub(super) fn float_value(x: f64) -> Result<Value, BlockError> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or(BlockError::Malformed("float is not finite"))
}

/// Raw float number `index` of `count` stored byte-transposed in `bytes`.
pub(super) fn transposed(bytes: &[u8], count: usize, index: usize) -> Result<u64, BlockError> {
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
pub(super) fn read_paths(
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
pub(super) fn read_kinds(
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
pub(super) struct Streams<'a> {
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
pub(super) fn read_column(
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
pub(super) struct Cursor<'a> {
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
