//! A small, strict reader of the Prometheus text format (version 0.0.4), as
//! node_exporter's textfile collector takes it, and the folding of a sample's
//! labels into one custom metric name.
//!
//! No crate was taken for this: the parsers on crates.io pull in regex and
//! date crates for a format of a few rules, and most are unmaintained.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    /// Labels by name (sorted, so folding is deterministic).
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Reads a whole file; the first line that breaks the format fails it all,
/// as node_exporter skips such a file. `# HELP` and `# TYPE` lines are
/// checked, other comments and blank lines ignored, timestamps dropped.
pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |problem: String| format!("line {}: {problem}", i + 1);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            check_comment(comment).map_err(at)?;
            continue;
        }
        samples.push(parse_sample(line).map_err(at)?);
    }
    Ok(samples)
}

fn check_comment(comment: &str) -> Result<(), String> {
    let mut words = comment.split_whitespace();
    match words.next() {
        Some("HELP") => match words.next() {
            Some(name) if is_metric_name(name) => Ok(()),
            _ => Err("# HELP must name a metric".to_owned()),
        },
        Some("TYPE") => {
            let name = words.next().filter(|n| is_metric_name(n));
            let kind = words.next();
            match (name, kind, words.next()) {
                (
                    Some(_),
                    Some("counter" | "gauge" | "histogram" | "summary" | "untyped"),
                    None,
                ) => Ok(()),
                _ => Err(
                    "# TYPE must name a metric and one of counter, gauge, histogram, summary, untyped"
                        .to_owned(),
                ),
            }
        }
        _ => Ok(()),
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("a sample must start with a metric name".to_owned());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("a space and a value must follow {name}"));
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_value(value).ok_or_else(|| format!("{value:?} is not a number"))?;
    if let Some(timestamp) = fields.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err(format!("{timestamp:?} is not a timestamp in milliseconds"));
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `label="value", …}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if !is_label_name(name) {
            return Err("a label name must follow `{` or `,`".to_owned());
        }
        rest = rest[name_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("`=` must follow label {name}"))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name} must be quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {name} is not closed")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err(format!("bad escape in the value of label {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} is given twice"));
        }
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("`,` or `}` must follow a label".to_owned());
        }
    }
}

/// A float as Prometheus writes one, `NaN`, `+Inf` and `-Inf` included.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            None
        }
        _ => text.parse().ok(),
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The custom metric name of a sample: the metric name, then for each
/// label with a non-empty value, by label name, `.label.value`, with every
/// character of the value that a custom metric name cannot hold (anything
/// but ASCII letters, digits, `.`, `_`, `-`, `:`) written as `_`.
///
/// `node_filesystem_avail_bytes{mountpoint="/",device="sda1"}` becomes
/// `node_filesystem_avail_bytes.device.sda1.mountpoint._`.
pub(crate) fn fold_name(sample: &Sample) -> String {
    let mut name = sample.name.clone();
    for (label, value) in &sample.labels {
        if value.is_empty() {
            continue;
        }
        name.push('.');
        name.push_str(label);
        name.push('.');
        name.extend(value.chars().map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':') {
                c
            } else {
                '_'
            }
        }));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Sample, String> {
        parse_exposition(line).map(|mut s| s.remove(0))
    }

    #[test]
    fn reads_a_node_exporter_textfile() {
        let text = "\
# HELP backup_last_success_timestamp_seconds When the last backup succeeded.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds{job=\"db\",host=\"db-1\"} 1.7e9
# a comment

apt_upgrades_pending 3 1700000000000
http_requests_total{code=\"200\", method=\"get\",} 1027
weird_label{path=\"C:\\\\dir \\\"x\\\"\\n\"} -1.5
latency_bucket{le=\"+Inf\"} 7
nothing_to_say NaN
";
        let samples = parse_exposition(text).expect("valid");
        let folded: Vec<(String, f64)> = samples
            .iter()
            .map(|s| (fold_name(s), s.value))
            .filter(|(_, v)| v.is_finite())
            .collect();
        assert_eq!(
            folded,
            [
                (
                    "backup_last_success_timestamp_seconds.host.db-1.job.db".to_owned(),
                    1.7e9
                ),
                ("apt_upgrades_pending".to_owned(), 3.0),
                ("http_requests_total.code.200.method.get".to_owned(), 1027.0),
                ("weird_label.path.C:_dir__x__".to_owned(), -1.5),
                ("latency_bucket.le._Inf".to_owned(), 7.0),
            ]
        );
        assert_eq!(samples[3].labels["path"], "C:\\dir \"x\"\n");
        assert!(samples[5].value.is_nan());
    }

    #[test]
    fn empty_label_values_are_left_out() {
        let sample = one("up{job=\"\",instance=\"a\"} 1").expect("valid");
        assert_eq!(fold_name(&sample), "up.instance.a");
    }

    #[test]
    fn refuses_what_breaks_the_format() {
        for (text, problem) in [
            ("1abc 1", "line 1: a sample must start with a metric name"),
            ("a{b=\"c\" 1", "line 1: `,` or `}` must follow a label"),
            ("a{b=c} 1", "line 1: the value of label b must be quoted"),
            ("a{b=\"c} 1", "line 1: the value of label b is not closed"),
            (
                "a{b=\"\\t\"} 1",
                "line 1: bad escape in the value of label b",
            ),
            ("a{b=\"1\",b=\"2\"} 1", "line 1: label b is given twice"),
            (
                "a{1b=\"1\"} 1",
                "line 1: a label name must follow `{` or `,`",
            ),
            ("a", "line 1: a space and a value must follow a"),
            ("a one", "line 1: \"one\" is not a number"),
            ("a 0x10", "line 1: \"0x10\" is not a number"),
            (
                "a 1 soon",
                "line 1: \"soon\" is not a timestamp in milliseconds",
            ),
            ("a 1 2 3", "line 1: unexpected text after the timestamp"),
            (
                "ok 1\n# TYPE a gauge extra",
                "line 2: # TYPE must name a metric and one of counter, gauge, histogram, summary, untyped",
            ),
            (
                "# TYPE a meter",
                "line 1: # TYPE must name a metric and one of counter, gauge, histogram, summary, untyped",
            ),
            ("# HELP", "line 1: # HELP must name a metric"),
        ] {
            assert_eq!(parse_exposition(text), Err(problem.to_owned()), "{text}");
        }
    }
}
