//! A node_exporter textfile directory: every `*.prom` file in it, read again
//! only when its modification time or size changes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tailmon_core::{MAX_CUSTOM_VALUE, validate_device_id};

use super::exposition::{fold_name, parse_exposition};

/// Largest textfile read: 1 MiB. A larger one is skipped (and logged).
pub const MAX_TEXTFILE_BYTES: u64 = 1024 * 1024;

/// What one read of the directory found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TextfileScan {
    /// Custom metric names (see [`fold_name`]) and their values.
    pub(crate) values: BTreeMap<String, f64>,
    /// Problems, each with the file (or the directory) it is about.
    pub(crate) problems: Vec<(String, String)>,
}

/// What one file gave, kept while it does not change.
#[derive(Debug, Clone)]
struct FileReading {
    modified: Option<SystemTime>,
    len: u64,
    values: Vec<(String, f64)>,
    problems: Vec<String>,
}

/// Reads a textfile directory, keeping what each file gave until it changes.
#[derive(Debug)]
pub(crate) struct TextfileDir {
    dir: PathBuf,
    files: HashMap<PathBuf, FileReading>,
}

impl TextfileDir {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            files: HashMap::new(),
        }
    }

    /// Reads every `*.prom` file of the directory (regular files only, in
    /// name order; files whose name starts with `.` are left alone), each
    /// again only if its modification time or size changed. A file that
    /// breaks the format, is larger than [`MAX_TEXTFILE_BYTES`] or cannot be
    /// read gives nothing; a sample whose folded name breaks the custom
    /// metric name rules or whose value is not a finite number within
    /// ±1e300 is skipped. A name that two files give keeps the value of the
    /// file whose name sorts last.
    pub(crate) fn scan(&mut self) -> TextfileScan {
        let mut scan = TextfileScan::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) => {
                scan.problems.push((
                    self.dir.display().to_string(),
                    format!("cannot read the textfile directory: {error}"),
                ));
                self.files.clear();
                return scan;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| is_textfile(path))
            .collect();
        paths.sort();
        self.files.retain(|path, _| paths.contains(path));
        for path in paths {
            let reading = self.read(&path);
            let file = file_name(&path);
            for problem in &reading.problems {
                scan.problems.push((file.clone(), problem.clone()));
            }
            scan.values.extend(reading.values.iter().cloned());
        }
        scan
    }

    fn read(&mut self, path: &Path) -> &FileReading {
        let meta = std::fs::metadata(path);
        let (modified, len) = match &meta {
            Ok(meta) => (meta.modified().ok(), meta.len()),
            Err(_) => (None, 0),
        };
        let fresh = self.files.get(path).is_some_and(|r| {
            meta.is_ok() && r.modified.is_some() && r.modified == modified && r.len == len
        });
        if !fresh {
            let reading = match meta {
                Ok(meta) if !meta.is_file() => {
                    reading_of(modified, len, Err("not a regular file".to_owned()))
                }
                Ok(_) if len > MAX_TEXTFILE_BYTES => reading_of(
                    modified,
                    len,
                    Err(format!(
                        "{len} bytes; files over {MAX_TEXTFILE_BYTES} bytes are skipped"
                    )),
                ),
                Ok(_) => reading_of(
                    modified,
                    len,
                    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}")),
                ),
                Err(error) => reading_of(modified, len, Err(format!("cannot read: {error}"))),
            };
            self.files.insert(path.to_owned(), reading);
        }
        &self.files[path]
    }
}

fn reading_of(modified: Option<SystemTime>, len: u64, text: Result<String, String>) -> FileReading {
    let mut reading = FileReading {
        modified,
        len,
        values: Vec::new(),
        problems: Vec::new(),
    };
    let samples = match text.and_then(|text| parse_exposition(&text)) {
        Ok(samples) => samples,
        Err(problem) => {
            reading
                .problems
                .push(format!("{problem}; the file is skipped"));
            return reading;
        }
    };
    for sample in samples {
        let name = fold_name(&sample);
        if validate_device_id(&name).is_err() {
            reading.problems.push(format!(
                "sample {name:?}: its name is longer than 128 characters; skipped"
            ));
        } else if !sample.value.is_finite() || sample.value.abs() > MAX_CUSTOM_VALUE {
            reading.problems.push(format!(
                "sample {name}: value {} is not a finite number within ±1e300; skipped",
                sample.value
            ));
        } else {
            reading.values.push((name, sample.value));
        }
    }
    reading
}

fn is_textfile(path: &Path) -> bool {
    let name = file_name(path);
    name.ends_with(".prom") && !name.starts_with('.')
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the target's temporary folder.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tailmon-textfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn reads_prom_files_and_skips_bad_ones() {
        let dir = temp_dir("scan");
        std::fs::write(
            dir.join("backup.prom"),
            "# TYPE backup_age_seconds gauge\nbackup_age_seconds{job=\"db\"} 3600\nshared 1\n",
        )
        .expect("write");
        std::fs::write(dir.join("zz.prom"), "shared 2\nnot_finite +Inf\n").expect("write");
        std::fs::write(dir.join("broken.prom"), "good 1\nbad{ 2\n").expect("write");
        std::fs::write(dir.join("notes.txt"), "ignored 1\n").expect("write");
        std::fs::write(dir.join(".hidden.prom"), "ignored 1\n").expect("write");
        std::fs::write(dir.join("backup.prom.tmp"), "ignored 1\n").expect("write");
        std::fs::create_dir(dir.join("sub.prom")).expect("dir");

        let mut textfiles = TextfileDir::new(dir.clone());
        let scan = textfiles.scan();
        let values: Vec<(&str, f64)> = scan.values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            values,
            [("backup_age_seconds.job.db", 3600.0), ("shared", 2.0)]
        );
        assert_eq!(
            scan.problems,
            [
                (
                    "broken.prom".to_owned(),
                    "line 2: a label name must follow `{` or `,`; the file is skipped".to_owned()
                ),
                (
                    "sub.prom".to_owned(),
                    "not a regular file; the file is skipped".to_owned()
                ),
                (
                    "zz.prom".to_owned(),
                    "sample not_finite: value inf is not a finite number within ±1e300; skipped"
                        .to_owned()
                ),
            ]
        );

        // A file that changes is read again; one removed gives nothing more.
        std::fs::write(dir.join("broken.prom"), "good 1\nfixed 22\n").expect("write");
        std::fs::remove_file(dir.join("zz.prom")).expect("remove");
        let scan = textfiles.scan();
        let values: Vec<(&str, f64)> = scan.values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            values,
            [
                ("backup_age_seconds.job.db", 3600.0),
                ("fixed", 22.0),
                ("good", 1.0),
                ("shared", 1.0)
            ]
        );
        assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_large_file_or_a_missing_directory_gives_nothing() {
        let dir = temp_dir("large");
        let line = "padding_metric_with_a_long_name 1\n";
        let big = line.repeat((MAX_TEXTFILE_BYTES as usize / line.len()) + 1);
        std::fs::write(dir.join("big.prom"), big).expect("write");
        let scan = TextfileDir::new(dir.clone()).scan();
        assert!(scan.values.is_empty());
        assert!(
            scan.problems[0]
                .1
                .contains("files over 1048576 bytes are skipped")
        );

        let missing = TextfileDir::new(dir.join("missing")).scan();
        assert!(missing.values.is_empty());
        assert!(
            missing.problems[0]
                .1
                .starts_with("cannot read the textfile directory")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
