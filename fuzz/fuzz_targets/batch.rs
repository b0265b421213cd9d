//! A batch, as `POST /api/v1/reports` (the agent's back-fill) takes it: a
//! JSON array of reports through the server's decoding, per-report
//! validation and ingest. Answered 200 with a count that adds up, or a 4xx
//! with a JSON message.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tailmon_core::BatchResult;
use tailmon_fuzz::{Harness, assert_client_answer};

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::new);

fuzz_target!(|body: &[u8]| {
    let (status, answer) = HARNESS.post_json("/api/v1/reports", body);
    assert_client_answer(status, &answer);
    if status.is_success() {
        let result: BatchResult =
            serde_json::from_slice(&answer).expect("a 200 carries a BatchResult");
        // Counted as leniently as the server reads: serde_json does not
        // check the UTF-8 of what it skips (an unknown field's value).
        let sent: Vec<serde::de::IgnoredAny> =
            serde_json::from_slice(body).expect("a 200 was sent a JSON array");
        assert_eq!(
            result.accepted + result.rejected.len(),
            sent.len(),
            "every report is accepted or refused: {result:?}"
        );
        for refused in &result.rejected {
            assert!(refused.index < sent.len(), "{refused:?}");
        }
    }
});
