//! The query of `GET /api/v1/devices`: which statuses, a name to search,
//! the sort and the page, each checked; and the list it selects.

use std::cmp::Ordering;

use tailmon_core::Status;

use crate::ApiError;
use crate::ingest::fleet::{DeviceEntry, Fleet};

/// Most devices one page may hold (`limit`): 10,000.
pub const MAX_DEVICES_LIMIT: usize = 10_000;

/// What a device list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Name,
    Status,
    Cpu,
    Ram,
    Disk,
    LastSeen,
}

/// A checked `GET /api/v1/devices` query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DevicesQuery {
    /// Statuses kept; `None` keeps all.
    statuses: Option<Vec<Status>>,
    /// Lower-cased text the device id must hold.
    search: Option<String>,
    sort: SortKey,
    descending: bool,
    limit: Option<usize>,
    offset: usize,
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadParameter {
        message: message.into(),
        field,
    }
}

impl DevicesQuery {
    /// Checks the query's pairs; `None` when there are none (the whole list,
    /// served from the cache).
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Option<Self>, ApiError> {
        if pairs.is_empty() {
            return Ok(None);
        }
        let mut query = Self {
            statuses: None,
            search: None,
            sort: SortKey::Name,
            descending: false,
            limit: None,
            offset: 0,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let field: &'static str = match name.as_str() {
                "status" => "status",
                "q" => "q",
                "sort" => "sort",
                "order" => "order",
                "limit" => "limit",
                "offset" => "offset",
                _ => {
                    return Err(bad(
                        "query",
                        format!(
                            "unknown parameter {:?}; known: status, q, sort, order, limit, offset",
                            name.chars().take(64).collect::<String>()
                        ),
                    ));
                }
            };
            if seen.contains(&field) {
                return Err(bad(field, format!("{field} may be given once")));
            }
            seen.push(field);
            match field {
                "status" => {
                    let mut statuses = Vec::new();
                    for word in value.split(',') {
                        let status = match word.trim() {
                            "ok" => Status::Ok,
                            "warning" => Status::Warning,
                            "critical" => Status::Critical,
                            "offline" => Status::Offline,
                            _ => {
                                return Err(bad(
                                    "status",
                                    "status must be a comma list of ok, warning, critical, offline",
                                ));
                            }
                        };
                        statuses.push(status);
                    }
                    query.statuses = Some(statuses);
                }
                "q" => {
                    if value.chars().count() > tailmon_core::MAX_DEVICE_ID_LEN {
                        return Err(bad(
                            "q",
                            format!(
                                "q is at most {} characters",
                                tailmon_core::MAX_DEVICE_ID_LEN
                            ),
                        ));
                    }
                    query.search = (!value.is_empty()).then(|| value.to_lowercase());
                }
                "sort" => {
                    query.sort = match value.as_str() {
                        "name" => SortKey::Name,
                        "status" => SortKey::Status,
                        "cpu" => SortKey::Cpu,
                        "ram" => SortKey::Ram,
                        "disk" => SortKey::Disk,
                        "last_seen" => SortKey::LastSeen,
                        _ => {
                            return Err(bad(
                                "sort",
                                "sort must be name, status, cpu, ram, disk or last_seen",
                            ));
                        }
                    };
                }
                "order" => {
                    query.descending = match value.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(bad("order", "order must be asc or desc")),
                    };
                }
                "limit" => {
                    query.limit = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_DEVICES_LIMIT).contains(n))
                            .ok_or_else(|| {
                                bad(
                                    "limit",
                                    format!(
                                        "limit must be a whole number from 1 to {MAX_DEVICES_LIMIT}"
                                    ),
                                )
                            })?,
                    );
                }
                _ => {
                    query.offset = value
                        .parse::<usize>()
                        .map_err(|_| bad("offset", "offset must be a whole number from 0"))?;
                }
            }
        }
        Ok(Some(query))
    }

    fn keeps(&self, device_id: &str, entry: &DeviceEntry) -> bool {
        self.statuses
            .as_ref()
            .is_none_or(|s| s.contains(&entry.status()))
            && self
                .search
                .as_ref()
                .is_none_or(|q| device_id.to_ascii_lowercase().contains(q.as_str()))
    }

    fn compare(&self, a: (&str, &DeviceEntry), b: (&str, &DeviceEntry)) -> Ordering {
        let by = match self.sort {
            SortKey::Name => Ordering::Equal,
            SortKey::Status => severity(a.1.status()).cmp(&severity(b.1.status())),
            SortKey::Cpu => a.1.cpu().total_cmp(&b.1.cpu()),
            SortKey::Ram => option_cmp(a.1.ram(), b.1.ram()),
            SortKey::Disk => option_cmp(a.1.disk(), b.1.disk()),
            SortKey::LastSeen => a.1.seen().cmp(&b.1.seen()),
        }
        .then_with(|| a.0.cmp(b.0));
        if self.descending { by.reverse() } else { by }
    }

    /// The JSON array of the devices this query selects, and how many
    /// matched before paging.
    pub(crate) fn select(&self, fleet: &Fleet) -> (usize, Vec<u8>) {
        fleet.read(|devices| {
            let mut kept: Vec<(&str, &DeviceEntry)> = devices
                .filter(|(id, entry)| self.keeps(id, entry))
                .collect();
            if self.sort != SortKey::Name || self.descending {
                kept.sort_by(|a, b| self.compare(*a, *b));
            }
            let total = kept.len();
            let page = kept
                .into_iter()
                .skip(self.offset)
                .take(self.limit.unwrap_or(usize::MAX));
            let mut out = Vec::with_capacity(4096);
            out.push(b'[');
            for (index, (_, entry)) in page.enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                entry.write_summary(&mut out);
            }
            out.push(b']');
            (total, out)
        })
    }
}

/// How bad a status is: offline lowest, then ok, warning, critical; so a
/// descending sort puts critical devices first and offline ones last.
fn severity(status: Status) -> u8 {
    match status {
        Status::Ok => 1,
        Status::Warning => 2,
        Status::Critical => 3,
        _ => 0,
    }
}

/// Unknown values sort below every known one.
fn option_cmp(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<Option<DevicesQuery>, ApiError> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        DevicesQuery::parse(&pairs)
    }

    fn field_of(query: &[(&str, &str)]) -> &'static str {
        match parse(query) {
            Err(ApiError::BadParameter { field, .. }) => field,
            other => panic!("{query:?} gave {other:?}"),
        }
    }

    #[test]
    fn each_parameter_is_checked() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert!(
            parse(&[
                ("status", "ok,offline"),
                ("q", "Web"),
                ("sort", "cpu"),
                ("order", "desc"),
                ("limit", "10"),
                ("offset", "5")
            ])
            .unwrap()
            .is_some()
        );
        assert_eq!(field_of(&[("status", "ok,sleepy")]), "status");
        assert_eq!(field_of(&[("status", "")]), "status");
        assert_eq!(field_of(&[("sort", "colour")]), "sort");
        assert_eq!(field_of(&[("order", "up")]), "order");
        assert_eq!(field_of(&[("limit", "0")]), "limit");
        assert_eq!(field_of(&[("limit", "10001")]), "limit");
        assert_eq!(field_of(&[("limit", "x")]), "limit");
        assert_eq!(field_of(&[("offset", "-1")]), "offset");
        assert_eq!(field_of(&[("q", &"a".repeat(129))]), "q");
        assert_eq!(field_of(&[("limit", "1"), ("limit", "2")]), "limit");
        assert_eq!(field_of(&[("colour", "red")]), "query");
    }
}
