//! The block codec: a lossless, compact, column-oriented encoding of a
//! sequence of similar JSON rows (the successive reports of one device),
//! sealed with zstd and kept by the SQLite store as one row.
//!
//! - [`format`]: the layout, the kinds, the number primitives and limits;
//! - [`encoder`]: rows in, a block out;
//! - [`serializer`]: any `Serialize` row to the encoder, without a
//!   `serde_json::Value`;
//! - [`decoder`]: a block back into its rows.
//!
//! May use: serde, serde_json's public API and zstd; nothing else of this
//! crate.

pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod format;
pub(crate) mod serializer;
#[cfg(test)]
mod tests;

pub(crate) use decoder::decode_sealed;
pub(crate) use encoder::BlockEncoder;
pub(crate) use format::{
    BlockError, Reader, decimal_value, put_varint, scaled_at, smallest_scale, unzigzag, zigzag,
};
