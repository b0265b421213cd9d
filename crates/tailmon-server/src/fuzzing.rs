//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`,
//! off by default): the block codec is crate-private, so its decoder is
//! reached through here. Not part of the public API; it may change at any
//! time.
//!
//! May use: `store` (the block codec) only.

use crate::store::codec::{self, BlockEncoder};

/// Decodes an unsealed block (`codec::decode`), as the SQLite store does
/// after decompressing one.
pub fn decode_block(bytes: &[u8]) -> Result<Vec<serde_json::Value>, impl std::error::Error> {
    codec::decoder::decode(bytes)
}

/// Decompresses and decodes a sealed block (`codec::decode_sealed`), as
/// the SQLite store reads history rows.
pub fn decode_sealed_block(bytes: &[u8]) -> Result<Vec<serde_json::Value>, impl std::error::Error> {
    codec::decode_sealed(bytes)
}

/// Encodes `rows` into an unsealed block through the encoder's production
/// path (`push_serialize`), as the SQLite store does: to make seed blocks
/// and to check that what is encoded decodes back. A row the encoder
/// refuses is an error.
pub fn encode_block(rows: &[serde_json::Value]) -> Result<Vec<u8>, impl std::error::Error> {
    encoder_of(rows).map(|encoder| encoder.encode())
}

/// [`encode_block`], sealed with zstd at `level`, as history rows are kept.
pub fn seal_block(rows: &[serde_json::Value], level: i32) -> std::io::Result<Vec<u8>> {
    encoder_of(rows).map_err(std::io::Error::other)?.seal(level)
}

fn encoder_of(rows: &[serde_json::Value]) -> Result<BlockEncoder, codec::BlockError> {
    let mut encoder = BlockEncoder::new();
    for row in rows {
        encoder.push_serialize(row)?;
    }
    Ok(encoder)
}
