//! The SQLite store's block codec decoder, on any bytes: a block read back
//! from a damaged or hostile database file. Unsealed (`decode`) and sealed
//! with zstd (`decode_sealed`, as history rows are read): an error or rows,
//! never a panic, bounded in time and memory (the decoder's own budgets).
//! What decodes, encoded again, decodes to the same rows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tailmon_server::fuzzing::{decode_block, decode_sealed_block, encode_block};

fuzz_target!(|bytes: &[u8]| {
    for rows in [decode_block(bytes).ok(), decode_sealed_block(bytes).ok()]
        .into_iter()
        .flatten()
    {
        let Ok(encoded) = encode_block(&rows) else {
            continue;
        };
        let again = decode_block(&encoded).expect("an encoded block decodes");
        assert_eq!(again, rows, "rows changed through the codec");
    }
});
