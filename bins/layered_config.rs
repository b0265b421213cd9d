//! Layered configuration for both binaries, shared as a source file
//! (`#[path]`): flag > environment > configuration files > default, with one
//! name per setting everywhere.
//!
//! The clap definition is the one list of settings: every argument with a
//! long flag `--some-key` and a variable `TAILMON_SOME_KEY` is also the file
//! key `some_key` (flat, at the top of the file), checked by the same value
//! parser as the flag. Only structured lists are file-only tables (the
//! binary names them, e.g. `alerts`).
//!
//! How: clap parses the command line and the environment first; then every
//! file is read and checked; then each file value whose setting clap took
//! from its default (or did not have) is put in front of the command line
//! as `--some-key=value`, and clap parses again. Files given later override
//! earlier ones key by key; tables merge, arrays replace.

use std::collections::BTreeMap;
#[cfg(test)]
use std::ffi::OsStr;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Arguments that are not settings, and so never file keys.
const NOT_SETTINGS: &[&str] = &["config", "check_config", "print_config", "help", "version"];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A flag on the command line, e.g. `--listen`.
    Flag(String),
    /// An environment variable, e.g. `TAILMON_LISTEN`.
    Env(String),
    /// A configuration file, at this line.
    File { path: PathBuf, line: usize },
    /// Nobody set it.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(name) => f.write_str(name),
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// One thing wrong with the configuration, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// `FILE:LINE`, `FILE`, a flag or a variable.
    pub(crate) location: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(location: impl fmt::Display, message: impl Into<String>) -> Self {
        Self {
            location: location.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why the configuration could not be put together.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The command line itself is wrong (or asks for `--help`/`--version`):
    /// clap's own answer, shown with `exit()`.
    Clap(clap::Error),
    /// Every problem found in the files, environment and flags.
    Problems(Vec<Problem>),
}

/// What a binary tells [`load`] about itself.
pub(crate) struct Spec {
    /// The clap command: its arguments are the settings.
    pub(crate) command: Command,
    /// Top-level file keys that are tables (or arrays of tables), file only.
    pub(crate) tables: &'static [&'static str],
    /// Checks one file's tables on their own (types, unknown keys), e.g. by
    /// deserializing the file into a struct holding just the tables.
    pub(crate) check_tables: fn(&str) -> Result<(), toml::de::Error>,
}

/// The configuration, layered.
#[derive(Debug)]
pub(crate) struct Layered {
    /// clap's answer with the files' values in.
    pub(crate) matches: ArgMatches,
    /// Where each setting (by id) came from.
    pub(crate) origins: BTreeMap<String, Origin>,
    /// The files' tables, merged.
    pub(crate) tables: toml::Table,
    /// For each table, the last file that set it.
    pub(crate) table_origins: BTreeMap<String, PathBuf>,
}

impl Layered {
    /// Where setting `id` came from.
    pub(crate) fn origin(&self, id: &str) -> Origin {
        self.origins.get(id).cloned().unwrap_or(Origin::Default)
    }

    /// A problem with setting `id`, located where it was set.
    pub(crate) fn problem(&self, id: &str, message: impl fmt::Display) -> Problem {
        Problem::new(self.origin(id), format!("{id}: {message}"))
    }
}

/// The settings of `command`: its arguments with a long flag, except
/// `--config`, `--check-config`, `--print-config`, `--help`, `--version`.
pub(crate) fn settings(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some() && !NOT_SETTINGS.contains(&arg.get_id().as_str()))
}

/// Settings whose flag, variable and id do not share one name: each must
/// be `--some-key`, `TAILMON_SOME_KEY`, `some_key`. For a test.
#[cfg(test)]
pub(crate) fn misnamed_settings(command: &Command) -> Vec<String> {
    settings(command)
        .filter(|arg| {
            let id = arg.get_id().as_str();
            let env = format!("TAILMON_{}", id.to_uppercase());
            arg.get_long() != Some(&id.replace('_', "-")) || arg.get_env() != Some(OsStr::new(&env))
        })
        .map(|arg| arg.get_id().to_string())
        .collect()
}

/// Puts flags, environment and the `--config` files together.
pub(crate) fn load(spec: &Spec, argv: &[OsString]) -> Result<Layered, LoadError> {
    let first = spec
        .command
        .clone()
        .try_get_matches_from(argv)
        .map_err(LoadError::Clap)?;
    let paths: Vec<PathBuf> = first
        .get_many::<PathBuf>("config")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut problems = Vec::new();
    let mut values: BTreeMap<String, (toml::Value, Origin)> = BTreeMap::new();
    let mut tables = toml::Table::new();
    let mut table_origins = BTreeMap::new();
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                problems.push(Problem::new(
                    path.display(),
                    format!("cannot read: {error}"),
                ));
                continue;
            }
        };
        let at = |span: Option<std::ops::Range<usize>>| match span {
            Some(span) => format!("{}:{}", path.display(), line_of(&text, span.start)),
            None => path.display().to_string(),
        };
        let document = match toml::from_str::<toml::Table>(&text) {
            Ok(document) => document,
            Err(error) => {
                problems.push(Problem::new(at(error.span()), error.message().trim()));
                continue;
            }
        };
        let key_lines: BTreeMap<String, usize> = toml::de::DeTable::parse(&text)
            .map(|table| {
                table
                    .get_ref()
                    .iter()
                    .map(|(key, _)| (key.get_ref().to_string(), line_of(&text, key.span().start)))
                    .collect()
            })
            .unwrap_or_default();
        if let Err(error) = (spec.check_tables)(&text) {
            problems.push(Problem::new(at(error.span()), error.message().trim()));
        }
        for (key, value) in document {
            let line = key_lines.get(&key).copied().unwrap_or(1);
            let location = format!("{}:{line}", path.display());
            if spec.tables.contains(&key.as_str()) {
                merge(&mut tables, key.clone(), value);
                table_origins.insert(key, path.clone());
                continue;
            }
            let Some(arg) = settings(&spec.command).find(|arg| arg.get_id() == key.as_str()) else {
                let hint = closest(&key, settings(&spec.command).map(|a| a.get_id().as_str()))
                    .or_else(|| closest(&key, spec.tables.iter().copied()))
                    .map(|name| format!(" (did you mean `{name}`?)"))
                    .unwrap_or_default();
                problems.push(Problem::new(location, format!("unknown key `{key}`{hint}")));
                continue;
            };
            match check_value(arg, &value) {
                Ok(()) => {
                    let origin = Origin::File {
                        path: path.clone(),
                        line,
                    };
                    values.insert(key, (value, origin));
                }
                Err(message) => problems.push(Problem::new(location, format!("{key}: {message}"))),
            }
        }
    }
    if !problems.is_empty() {
        return Err(LoadError::Problems(problems));
    }
    let mut args: Vec<OsString> = argv.iter().take(1).cloned().collect();
    let mut from_files = BTreeMap::new();
    for (id, (value, origin)) in values {
        if matches!(
            first.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        if let Some(arg) = settings(&spec.command).find(|arg| arg.get_id() == id.as_str()) {
            args.extend(as_flags(arg, &value));
        }
        from_files.insert(id, origin);
    }
    args.extend(argv.iter().skip(1).cloned());
    let matches = spec
        .command
        .clone()
        .try_get_matches_from(&args)
        .map_err(|error| {
            LoadError::Problems(vec![Problem::new("configuration", clap_message(&error))])
        })?;
    let origins = settings(&spec.command)
        .map(|arg| {
            let id = arg.get_id().to_string();
            let origin = if let Some(origin) = from_files.remove(&id) {
                origin
            } else {
                match matches.value_source(&id) {
                    Some(ValueSource::CommandLine) => {
                        Origin::Flag(format!("--{}", arg.get_long().unwrap_or(&id)))
                    }
                    Some(ValueSource::EnvVariable) => Origin::Env(
                        arg.get_env()
                            .map(|env| env.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    _ => Origin::Default,
                }
            };
            (id, origin)
        })
        .collect();
    Ok(Layered {
        matches,
        origins,
        tables,
        table_origins,
    })
}

/// The effective settings as TOML, each with where it came from (secrets
/// hidden), for `--print-config`. `derived` tells, of a setting not set,
/// the default it takes from other settings, when it has such a default.
pub(crate) fn describe(
    command: &Command,
    layered: &Layered,
    derived: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::new();
    for arg in settings(command) {
        let id = arg.get_id().as_str();
        let origin = layered.origin(id);
        let values: Vec<String> = layered
            .matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        let line = if values.is_empty() {
            match derived(id) {
                Some(default) => format!("# {id} is not set: {default}"),
                None => format!("# {id} is not set"),
            }
        } else if arg.is_hide_env_values_set() {
            format!("{id} = \"(hidden)\"")
        } else if is_flag(arg) || values.len() == 1 && !is_multiple(arg) {
            format!("{id} = {}", toml_scalar(&values[0], is_flag(arg)))
        } else {
            let items: Vec<String> = values.iter().map(|v| toml_scalar(v, false)).collect();
            format!("{id} = [{}]", items.join(", "))
        };
        out.push_str(&format!("{line:<50} # {origin}\n"));
    }
    out
}

/// A raw value written as TOML: booleans and numbers bare, text quoted.
fn toml_scalar(value: &str, flag: bool) -> String {
    if flag || value.parse::<f64>().is_ok_and(f64::is_finite) {
        value.to_owned()
    } else {
        toml::Value::String(value.to_owned()).to_string()
    }
}

/// The name among `names` closest to `key`, if it is a likely typo (at
/// most two edits away).
fn closest<'a>(key: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|name| (edit_distance(key, name), name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// Puts `value` under `key` in `into`: tables merge key by key, anything
/// else (arrays included) replaces.
fn merge(into: &mut toml::Table, key: String, value: toml::Value) {
    match (into.get_mut(&key), value) {
        (Some(toml::Value::Table(old)), toml::Value::Table(new)) => {
            for (key, value) in new {
                merge(old, key, value);
            }
        }
        (_, value) => {
            into.insert(key, value);
        }
    }
}

/// Whether `arg` is an on/off flag (`--no-local-agent`).
fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// Whether `arg` takes a list (`--allowed-hosts a,b`).
fn is_multiple(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// Checks a file's `value` for `arg` with the flag's own parser.
fn check_value(arg: &Arg, value: &toml::Value) -> Result<(), String> {
    if is_flag(arg) {
        return match value {
            toml::Value::Boolean(_) => Ok(()),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_str()
            )),
        };
    }
    let texts = match value {
        toml::Value::Array(items) if is_multiple(arg) => items
            .iter()
            .map(|item| scalar_text(item).ok_or_else(|| wrong_type(arg, item)))
            .collect::<Result<Vec<_>, _>>()?,
        other => vec![scalar_text(other).ok_or_else(|| wrong_type(arg, other))?],
    };
    // The flag alone in a command of its own: parsed as on the command line.
    let alone = Command::new("setting")
        .no_binary_name(true)
        .arg(arg.clone().required(false).global(false));
    let long = arg.get_long().unwrap_or_default();
    for text in texts {
        alone
            .clone()
            .try_get_matches_from([format!("--{long}={text}")])
            .map_err(|error| clap_message(&error))?;
    }
    Ok(())
}

/// A string or number as the text a flag would take.
fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        _ => None,
    }
}

fn wrong_type(arg: &Arg, found: &toml::Value) -> String {
    let expected = if is_multiple(arg) {
        "a string or a list of strings"
    } else {
        "a string or a number"
    };
    format!("expected {expected}, found {}", found.type_str())
}

/// `value` as command-line arguments for `arg`.
fn as_flags(arg: &Arg, value: &toml::Value) -> Vec<OsString> {
    let long = arg.get_long().unwrap_or_default();
    match value {
        toml::Value::Boolean(true) => vec![format!("--{long}").into()],
        toml::Value::Boolean(false) => Vec::new(),
        toml::Value::Array(items) => items
            .iter()
            .filter_map(scalar_text)
            .map(|text| format!("--{long}={text}").into())
            .collect(),
        other => scalar_text(other)
            .map(|text| vec![format!("--{long}={text}").into()])
            .unwrap_or_default(),
    }
}

/// clap's error in one line, without its usage notes.
fn clap_message(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    if let (Some(ContextValue::String(value)), Some(ContextValue::Strings(valid))) = (
        error.get(ContextKind::InvalidValue),
        error.get(ContextKind::ValidValue),
    ) {
        return format!("{value:?} is not one of: {}", valid.join(", "));
    }
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_owned()
}

/// Prints every problem on stderr, one a line.
pub(crate) fn print_problems(problems: &[Problem]) {
    for problem in problems {
        eprintln!("{problem}");
    }
}

#[cfg(test)]
mod layering_tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        let names = ["listen", "max_devices", "max_devices_per_token"];
        assert_eq!(closest("lisen", names.into_iter()), Some("listen"));
        assert_eq!(
            closest("max_device", names.into_iter()),
            Some("max_devices")
        );
        assert_eq!(closest("colour", names.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a = 1\nb = 2\n", 0), 1);
        assert_eq!(line_of("a = 1\nb = 2\n", 6), 2);
    }

    #[test]
    fn tables_merge_and_arrays_replace() {
        let mut base: toml::Table =
            toml::from_str("[alerts]\nrepeat = \"1h\"\nrules = [1]\n").expect("toml");
        let profile: toml::Table =
            toml::from_str("[alerts]\nenabled = false\nrules = [2, 3]\n").expect("toml");
        for (key, value) in profile {
            merge(&mut base, key, value);
        }
        let expected: toml::Table =
            toml::from_str("[alerts]\nrepeat = \"1h\"\nenabled = false\nrules = [2, 3]\n")
                .expect("toml");
        assert_eq!(base, expected);
    }
}
