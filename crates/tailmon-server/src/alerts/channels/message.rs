//! The words every channel sends: one title and the same lines for all,
//! so that Slack, e-mail and SMS say the same thing.

use std::fmt::Write as _;

use crate::alerts::notification::{Notification, NotificationKind, Severity};

/// The first line: what happened, to which rule and device, e.g.
/// `[FIRING] CRITICAL cpu-high on web-1`.
pub fn title(n: &Notification) -> String {
    format!(
        "[{}] {} {} on {}",
        kind_word(n.kind),
        severity_word(n.severity),
        n.rule,
        n.device_id
    )
}

/// `FIRING`, `REPEAT`, `ESCALATION`, `RESOLVED` or `TEST`.
pub fn kind_word(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Firing => "FIRING",
        NotificationKind::Repeat => "STILL FIRING",
        NotificationKind::Escalation => "ESCALATION",
        NotificationKind::Resolved => "RESOLVED",
        NotificationKind::Test => "TEST",
    }
}

/// `WARNING` or `CRITICAL`.
pub fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

/// The lines under the title: device, rule, metric with its value, the
/// comparison and threshold, how long it has held, the link, and the top
/// processes when the report had them.
pub fn lines(n: &Notification) -> Vec<String> {
    let mut lines = vec![
        format!("Device: {}", n.device_id),
        format!(
            "Rule: {} ({})",
            n.rule,
            severity_word(n.severity).to_lowercase()
        ),
        format!(
            "Metric: {} = {} (threshold {} {})",
            n.metric,
            n.value.map_or_else(|| "no value".to_owned(), number),
            n.op,
            number(n.threshold)
        ),
        format!("Held for: {}", held_for(n)),
        format!("Link: {}", n.url),
    ];
    if let Some(processes) = n.top_processes.as_deref().filter(|p| !p.is_empty()) {
        lines.push("Top processes:".to_owned());
        for p in processes {
            lines.push(format!(
                "  {} (pid {}): {} % CPU, {}",
                p.name,
                p.pid,
                number(p.cpu_percent),
                bytes(p.rss_bytes)
            ));
        }
    }
    lines
}

/// The title, a blank line and the lines: the whole message as plain text.
pub fn text(n: &Notification) -> String {
    let mut out = title(n);
    out.push_str("\n\n");
    out.push_str(&lines(n).join("\n"));
    out
}

/// A short form for SMS: the summary and the link.
pub fn short(n: &Notification) -> String {
    format!(
        "{}: {} ({}) {}",
        kind_word(n.kind),
        n.summary,
        held_for(n),
        n.url
    )
}

/// How long the condition has held when the notification was made, e.g.
/// `1h 5m` (the two largest units), `0s` when not at all.
pub fn held_for(n: &Notification) -> String {
    let seconds = (n.at - n.since).whole_seconds().max(0);
    duration(seconds.unsigned_abs())
}

/// `seconds` as its two largest units: `2d 3h`, `5m 7s`, `42s`.
pub fn duration(seconds: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut out = String::new();
    let mut rest = seconds;
    let mut used = 0;
    for (size, name) in units {
        let count = rest / size;
        if count > 0 || (used > 0 && used < 2) {
            if used == 2 {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{count}{name}");
            used += 1;
            rest %= size;
        }
        if used == 2 {
            break;
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// A number with at most two decimals and no trailing zeros: `93.5`, `80`.
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A byte count for people: `512 B`, `120.5 MiB`.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // for display only
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", number(value), UNITS[unit])
}

/// Cuts `text` to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tailmon_core::ProcessInfo;
    use time::macros::datetime;

    pub(crate) fn sample() -> Notification {
        Notification {
            kind: NotificationKind::Firing,
            alert_id: "cpu-high/web-1".into(),
            rule: "cpu-high".into(),
            severity: Severity::Critical,
            device_id: "web-1".into(),
            org: tailmon_core::OrgId::default(),
            metric: "cpu_usage".into(),
            value: Some(93.5),
            op: ">".into(),
            threshold: 80.0,
            since: datetime!(2026-01-01 10:00:00 UTC),
            at: datetime!(2026-01-01 10:05:00 UTC),
            url: "http://monitor.test/device.html?id=web-1".into(),
            top_processes: Some(vec![ProcessInfo {
                pid: 42,
                name: "nginx".into(),
                cpu_percent: 71.25,
                rss_bytes: 120 * 1024 * 1024,
            }]),
            summary: "CRITICAL cpu-high on web-1: cpu_usage 93.5 > 80 for 5m".into(),
        }
    }

    #[test]
    fn the_message_names_everything_a_reader_needs() {
        let text = text(&sample());
        for needle in [
            "[FIRING] CRITICAL cpu-high on web-1",
            "Device: web-1",
            "Rule: cpu-high (critical)",
            "Metric: cpu_usage = 93.5 (threshold > 80)",
            "Held for: 5m",
            "Link: http://monitor.test/device.html?id=web-1",
            "nginx (pid 42): 71.25 % CPU, 120 MiB",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from {text}");
        }
    }

    #[test]
    fn no_process_list_without_processes_and_offline_has_no_value() {
        let mut n = sample();
        n.top_processes = None;
        n.value = None;
        let text = text(&n);
        assert!(!text.contains("Top processes"));
        assert!(text.contains("= no value"));
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(300), "5m 0s");
        assert_eq!(duration(3_900), "1h 5m");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600 + 59), "2d 3h");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(80.0), "80");
        assert_eq!(number(93.456), "93.46");
        assert_eq!(number(-0.001), "0");
    }

    #[test]
    fn truncation_keeps_within_the_limit() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
