//! One report, as `POST /api/metrics` (the original's endpoint, the
//! agent's too) takes it: the body through the server's own JSON decoding,
//! validation and ingest, answered 200 or a 4xx with a JSON message.
//! Beside it, the invariant the store relies on: a report that decodes and
//! validates serializes to JSON that decodes back to the very same report.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tailmon_core::Report;
use tailmon_fuzz::{Harness, assert_client_answer, now};

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::new);

fuzz_target!(|body: &[u8]| {
    let (status, answer) = HARNESS.post_json("/api/metrics", body);
    assert_client_answer(status, &answer);

    if let Ok(report) = serde_json::from_slice::<Report>(body)
        && report.validate(now()).is_ok()
    {
        let json = serde_json::to_vec(&report).expect("a report serializes");
        let again: Report = serde_json::from_slice(&json).expect("its JSON decodes");
        assert_eq!(again, report, "a report changed through its JSON");
    }
});
