//! One rollup row: the avg/min/max of every metric of one device in one
//! bucket, as a compact blob (metric id, count, sum, min, max).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::downsample::Bucket;

/// The buckets of one row, by metric id.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RollupRow {
    pub(crate) metrics: BTreeMap<u32, Bucket>,
}

/// What one metric occupies in the blob.
#[derive(Serialize, Deserialize)]
struct Entry(u32, u64, f64, f64, f64);

impl RollupRow {
    pub(crate) fn add(&mut self, metric: u32, value: f64) {
        self.metrics
            .entry(metric)
            .and_modify(|b| b.add(value))
            .or_insert_with(|| Bucket::of(value));
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let entries: Vec<Entry> = self
            .metrics
            .iter()
            .map(|(id, b)| Entry(*id, b.count, b.sum, b.min, b.max))
            .collect();
        postcard::to_stdvec(&entries).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let entries: Vec<Entry> = postcard::from_bytes(bytes).ok()?;
        Some(Self {
            metrics: entries
                .into_iter()
                .map(|Entry(id, count, sum, min, max)| {
                    (
                        id,
                        Bucket {
                            count,
                            sum,
                            min,
                            max,
                        },
                    )
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut row = RollupRow::default();
        row.add(3, 1.5);
        row.add(3, 4.5);
        row.add(70_000, -2.0);
        let decoded = RollupRow::decode(&row.encode()).unwrap();
        assert_eq!(decoded, row);
        assert_eq!(
            decoded.metrics[&3],
            Bucket {
                count: 2,
                sum: 6.0,
                min: 1.5,
                max: 4.5
            }
        );
        assert_eq!(RollupRow::decode(b"\xff\xff"), None);
    }
}
