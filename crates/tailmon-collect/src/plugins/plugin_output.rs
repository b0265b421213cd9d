//! What a plugin prints: `name value` lines, or one JSON object.

use std::collections::BTreeMap;

use tailmon_core::{MAX_CUSTOM_VALUE, validate_device_id};

/// Values read from one run of a plugin, and the lines that were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PluginOutput {
    /// Full custom metric names (`<plugin>.<name>`) and their values.
    pub(crate) values: BTreeMap<String, f64>,
    /// Why each skipped line or entry was skipped, in order.
    pub(crate) skipped: Vec<String>,
}

/// Reads a plugin's standard output. Output whose first non-blank character
/// is `{` is one JSON object of name → number; anything else is read as
/// lines of `name value` (blank lines and lines starting with `#` are
/// ignored). Every name is prefixed with `<plugin>.`; a name that breaks the
/// custom metric name rules, a value that is not a finite number within
/// ±1e300, and a malformed line are skipped and told in `skipped`. A name
/// given twice keeps its last value.
pub(crate) fn parse_output(plugin: &str, stdout: &str) -> PluginOutput {
    let mut out = PluginOutput::default();
    if stdout.trim_start().starts_with('{') {
        parse_json(plugin, stdout, &mut out);
    } else {
        parse_lines(plugin, stdout, &mut out);
    }
    out
}

fn parse_lines(plugin: &str, stdout: &str, out: &mut PluginOutput) {
    for (i, line) in stdout.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, value] = fields.as_slice() else {
            out.skipped.push(format!(
                "line {}: not `name value`: {}",
                i + 1,
                excerpt(line)
            ));
            continue;
        };
        match value.parse::<f64>() {
            Ok(value) => out.add(plugin, name, value, || format!("line {}", i + 1)),
            Err(_) => out.skipped.push(format!(
                "line {}: {} is not a number",
                i + 1,
                excerpt(value)
            )),
        }
    }
}

fn parse_json(plugin: &str, stdout: &str, out: &mut PluginOutput) {
    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(stdout) {
        Ok(object) => object,
        Err(error) => {
            out.skipped.push(format!(
                "output is not one JSON object of name → number: {error}"
            ));
            return;
        }
    };
    for (name, value) in object {
        match value.as_f64() {
            Some(number) => out.add(plugin, &name, number, || format!("key {name:?}")),
            None => out
                .skipped
                .push(format!("key {}: {value} is not a number", excerpt(&name))),
        }
    }
}

impl PluginOutput {
    fn add(&mut self, plugin: &str, name: &str, value: f64, at: impl Fn() -> String) {
        let full = format!("{plugin}.{name}");
        if validate_device_id(&full).is_err() {
            self.skipped.push(format!(
                "{}: name {} must be letters, digits, '.', '_', '-' or ':', and {} with the plugin's prefix at most 128 characters",
                at(),
                excerpt(name),
                excerpt(&full),
            ));
        } else if !value.is_finite() || value.abs() > MAX_CUSTOM_VALUE {
            self.skipped.push(format!(
                "{}: value {value:?} of {name} is not a finite number within ±1e300",
                at()
            ));
        } else {
            self.values.insert(full, value);
        }
    }
}

/// At most 80 characters of `text`, quoted, for a log line.
pub(crate) fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(out: &PluginOutput) -> Vec<(&str, f64)> {
        out.values.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    #[test]
    fn reads_name_value_lines() {
        let out = parse_output(
            "pg",
            "# connections by state\n\nconnections 12\n  replication_lag_seconds\t0.25  \nactive -3e2\n",
        );
        assert_eq!(
            values(&out),
            [
                ("pg.active", -300.0),
                ("pg.connections", 12.0),
                ("pg.replication_lag_seconds", 0.25)
            ]
        );
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    }

    #[test]
    fn skips_bad_lines_and_keeps_the_rest() {
        let out = parse_output(
            "q",
            "depth 3\nno_value\nthree fields here\nbad name 1\nratio abc\nnan NaN\nhuge 1e301\ninf +inf\ndepth 4\n",
        );
        assert_eq!(values(&out), [("q.depth", 4.0)]);
        assert_eq!(
            out.skipped,
            [
                "line 2: not `name value`: \"no_value\"",
                "line 3: not `name value`: \"three fields here\"",
                "line 4: not `name value`: \"bad name 1\"",
                "line 5: \"abc\" is not a number",
                "line 6: value NaN of nan is not a finite number within ±1e300",
                "line 7: value 1e301 of huge is not a finite number within ±1e300",
                "line 8: value inf of inf is not a finite number within ±1e300",
            ]
        );
    }

    #[test]
    fn refuses_names_the_server_would_refuse() {
        let long = "x".repeat(127);
        let out = parse_output("p", &format!("a/b 1\n{long} 2\nok:sub-name.x_y 3\n"));
        assert_eq!(values(&out), [("p.ok:sub-name.x_y", 3.0)]);
        assert_eq!(out.skipped.len(), 2);
        assert!(
            out.skipped[0].starts_with("line 1: name \"a/b\""),
            "{}",
            out.skipped[0]
        );
        assert!(
            out.skipped[1].starts_with("line 2: name"),
            "{}",
            out.skipped[1]
        );
    }

    #[test]
    fn reads_one_json_object() {
        let out = parse_output(
            "redis",
            r#"  {"used_memory": 1048576, "hit_ratio": 0.93, "role": "master", "bad name": 1, "nested": {"a": 1}}"#,
        );
        assert_eq!(
            values(&out),
            [
                ("redis.hit_ratio", 0.93),
                ("redis.used_memory", 1_048_576.0)
            ]
        );
        assert_eq!(out.skipped.len(), 3, "{:?}", out.skipped);
        assert!(
            out.skipped
                .contains(&"key \"role\": \"master\" is not a number".to_owned())
        );

        let broken = parse_output("redis", r#"{"a": 1"#);
        assert!(broken.values.is_empty());
        assert!(broken.skipped[0].starts_with("output is not one JSON object"));
        let two = parse_output("redis", "{\"a\": 1}\n{\"b\": 2}\n");
        assert!(
            two.values.is_empty(),
            "trailing data refuses the whole output"
        );
    }
}
