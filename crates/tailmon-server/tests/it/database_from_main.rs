//! A database written by the code before the block codec was split
//! (`tests/fixtures/store-e2b19af/`, made by commit e2b19af from the
//! simulated hosts of `benches/simulated_host.rs`) still opens, and answers
//! what it answered then: the latest reports, histories from every tier and
//! the exports, compared with the answers recorded beside it.

use std::sync::Arc;
use tailmon_server::store::OrgId;

use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::store::HistoryQuery;
use tailmon_server::{ManualClock, SqliteStore, Store};

use crate::support::TestDirs;

/// The fixture's folder.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-e2b19af");

/// Where the fixture's day starts: 2026-01-05T00:00:00Z.
const FROM: i64 = 1_767_571_200;

#[tokio::test]
async fn a_database_written_before_the_codec_split_reads_the_same() {
    let recorded = std::fs::read_to_string(format!("{FIXTURE}/answers.json")).unwrap();
    let answers: Value = serde_json::from_str(&recorded).unwrap();
    let exports: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}/exports.json")).unwrap()).unwrap();
    let from = OffsetDateTime::from_unix_timestamp(FROM).unwrap();
    let to = from + time::Duration::days(1);
    // A copy: opening a database may write to it.
    let dirs = TestDirs::new("database_from_main");
    let dir = dirs.fresh();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(format!("{FIXTURE}/tailmon.db"), dir.join("tailmon.db")).unwrap();
    let store = SqliteStore::builder(&dir)
        .clock(Arc::new(ManualClock::new(to)))
        .open()
        .unwrap();

    // The same queries, answered now, serialized as e2b19af serialized its
    // answers: compared as text, so that every float is compared bit for bit
    // (parsing the recorded text back could be off by one unit in the last
    // place).
    let cases = answers["histories"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    let mut histories = Vec::new();
    for case in cases {
        let (device, metric) = (
            case["device"].as_str().unwrap(),
            case["metric"].as_str().unwrap(),
        );
        let max_points = usize::try_from(case["max_points"].as_u64().unwrap()).unwrap();
        let query = HistoryQuery::new(device, metric, from, to).with_max_points(max_points);
        let answer = store
            .history(&OrgId::default(), &query)
            .await
            .unwrap()
            .unwrap();
        histories.push(json!({
            "device": device, "metric": metric, "max_points": max_points, "answer": answer,
        }));
    }
    // Every device of the version 2 file is in the default organisation.
    let latest: Vec<Report> = store
        .latest()
        .await
        .unwrap()
        .into_iter()
        .map(|(org, report)| {
            assert_eq!(org, OrgId::default(), "{}", report.device_id);
            report
        })
        .collect();
    assert_eq!(latest.len(), 2);
    let now = json!({"latest": latest, "histories": histories});
    assert!(
        serde_json::to_string_pretty(&now).unwrap() == recorded.trim_end(),
        "the answers differ from {FIXTURE}/answers.json"
    );

    for (device, export) in exports.as_object().unwrap() {
        let reports: Vec<Report> = store
            .reports(&OrgId::default(), device, from, to)
            .await
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(reports.len() as u64, export["count"].as_u64().unwrap());
        let digest = Sha256::digest(serde_json::to_vec(&reports).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            export["sha256"].as_str().unwrap(),
            "export of {device}"
        );
    }
}
