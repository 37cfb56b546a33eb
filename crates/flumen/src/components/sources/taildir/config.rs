//! The typed configuration of the `TAILDIR` source: Flume's keys and defaults, plus flumen's
//! multi-line mode, and the checks that turn a `.properties` block into [`Settings`].
//!
//! Invariants of a validated config: at least one file group; every group has an absolute
//! path whose file-name part is a valid regex (matched against the whole name, as Java's
//! `Matcher.matches`); batch sizes and intervals are non-zero.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use flumen_config::{Diagnostic, Props};
use flumen_core::Headers;
use serde::Deserialize;

/// Configuration of the `TAILDIR` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TaildirSourceConfig {
    /// Space-separated file-group names. Flume key: `filegroups`. Required.
    pub filegroups: Option<Vec<String>>,
    /// Per group, the absolute path whose file-name part is a regex. Flume keys:
    /// `filegroups.<group>`. Required for every group. Filled by the build function from the
    /// `filegroups.*` keys (the deserializer gives `filegroups` itself to the field above).
    #[serde(skip)]
    pub paths: BTreeMap<String, String>,
    /// Where positions are stored. Flume key: `positionFile`. Default:
    /// `~/.flumen/taildir_position.json` (Flume: `~/.flume/taildir_position.json`).
    #[serde(rename = "positionFile")]
    pub position_file: Option<String>,
    /// Static headers per group, keyed `<group>.<key>`. Flume keys: `headers.<group>.<key>`.
    /// Default: none.
    pub headers: BTreeMap<String, String>,
    /// Add the line's byte offset in header `byteoffset`. Flume key: `byteOffsetHeader`.
    /// Default: false.
    #[serde(rename = "byteOffsetHeader")]
    pub byte_offset_header: bool,
    /// Start files absent from the position file at their end. Flume key: `skipToEnd`.
    /// Default: false.
    #[serde(rename = "skipToEnd")]
    pub skip_to_end: bool,
    /// Close files without new data for this many ms. Flume key: `idleTimeout`. Default: 120000.
    #[serde(rename = "idleTimeout")]
    pub idle_timeout: u64,
    /// Milliseconds between position-file writes. Flume key: `writePosInterval`. Default: 3000.
    #[serde(rename = "writePosInterval")]
    pub write_pos_interval: u64,
    /// Lines per channel transaction. Flume key: `batchSize`. Default: 100.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// Consecutive batches from one file before the next file gets its turn. Flume key:
    /// `maxBatchCount`. Default: `Long.MAX_VALUE`.
    #[serde(rename = "maxBatchCount")]
    pub max_batch_count: u64,
    /// Step (ms) of the poll back-off when no new data. Flume key: `backoffSleepIncrement`.
    /// Default: 1000.
    #[serde(rename = "backoffSleepIncrement")]
    pub backoff_sleep_increment: u64,
    /// Cap (ms) of the poll back-off. Flume key: `maxBackoffSleep`. Default: 5000.
    #[serde(rename = "maxBackoffSleep")]
    pub max_backoff_sleep: u64,
    /// Re-list a group's directory only when its mtime changed. Flume key:
    /// `cachePatternMatching`. Default: true.
    #[serde(rename = "cachePatternMatching")]
    pub cache_pattern_matching: bool,
    /// Put the file's absolute path in a header. Flume key: `fileHeader`. Default: false.
    #[serde(rename = "fileHeader")]
    pub file_header: bool,
    /// Name of that header. Flume key: `fileHeaderKey`. Default: `file`.
    #[serde(rename = "fileHeaderKey")]
    pub file_header_key: String,
    /// flumen only: a regex matching the first line of an event; other lines are appended to
    /// the current event with `\n`. Key: `multiline.pattern`. Default: none (one line = one
    /// event).
    #[serde(rename = "multiline.pattern")]
    pub multiline_pattern: Option<String>,
    /// flumen only: milliseconds without a new line after which a pending multi-line event is
    /// delivered. Key: `multiline.flushTimeout`. Default: 1000.
    #[serde(rename = "multiline.flushTimeout")]
    pub multiline_flush_timeout: u64,
}

impl Default for TaildirSourceConfig {
    fn default() -> Self {
        Self {
            filegroups: None,
            paths: BTreeMap::new(),
            position_file: None,
            headers: BTreeMap::new(),
            byte_offset_header: false,
            skip_to_end: false,
            idle_timeout: 120_000,
            write_pos_interval: 3000,
            batch_size: 100,
            max_batch_count: u64::MAX,
            backoff_sleep_increment: 1000,
            max_backoff_sleep: 5000,
            cache_pattern_matching: true,
            file_header: false,
            file_header_key: "file".into(),
            multiline_pattern: None,
            multiline_flush_timeout: 1000,
        }
    }
}

/// Reads the config from `props`: the typed keys, plus the `filegroups.<g>` paths (which the
/// deserializer cannot give to a field that also has an exact key).
///
/// # Errors
/// Every error found, with the warnings.
pub fn deserialize(
    props: &Props,
) -> Result<(TaildirSourceConfig, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut typed = props.without(&["filegroups"]);
    if let Some(v) = props.get("filegroups") {
        typed.insert("filegroups", v, props.line("filegroups").unwrap_or(0));
    }
    let (mut config, warnings) = typed.deserialize::<TaildirSourceConfig>()?;
    let sub = props.sub("filegroups", props.component());
    for (k, v, _) in sub.iter() {
        config.paths.insert(k.to_string(), v.to_string());
    }
    Ok((config, warnings))
}

/// One file group, ready to match: a literal directory and a whole-name regex.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group's name, for logs.
    pub name: String,
    /// The directory part of `filegroups.<g>`, literal.
    pub dir: PathBuf,
    /// The file-name part, anchored at both ends.
    pub pattern: regex::Regex,
    /// `headers.<g>.*`, plus nothing else (file and offset headers are per event).
    pub headers: Headers,
}

/// Everything the running source needs, checked and converted.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file groups in configuration order.
    pub groups: Vec<Group>,
    /// Absolute path of the position file.
    pub position_file: PathBuf,
    /// `byteOffsetHeader`.
    pub byte_offset_header: bool,
    /// `skipToEnd`.
    pub skip_to_end: bool,
    /// `idleTimeout`.
    pub idle_timeout: Duration,
    /// `writePosInterval`.
    pub write_pos_interval: Duration,
    /// `batchSize`.
    pub batch_size: usize,
    /// `maxBatchCount`.
    pub max_batch_count: u64,
    /// `backoffSleepIncrement`.
    pub backoff_increment: Duration,
    /// `maxBackoffSleep`.
    pub backoff_max: Duration,
    /// `cachePatternMatching`.
    pub cache_pattern_matching: bool,
    /// `fileHeaderKey` when `fileHeader` is on.
    pub file_header_key: Option<String>,
    /// `multiline.pattern`.
    pub multiline: Option<regex::bytes::Regex>,
    /// `multiline.flushTimeout`.
    pub multiline_flush: Duration,
}

/// The default position file: `$HOME/.flumen/taildir_position.json`.
fn default_position_file() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home)
        .join(".flumen")
        .join("taildir_position.json")
}

/// Expands a leading `~/` as the shell (and users writing Flume configs) expect.
fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(rest)
        }
        None => PathBuf::from(p),
    }
}

/// Splits `filegroups.<g>` into its literal directory and its anchored file-name regex.
fn parse_group_path(path: &str) -> Result<(PathBuf, regex::Regex), String> {
    let path = path.trim();
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    let Some(slash) = path.rfind('/') else {
        return Err(format!("`{path}` is not an absolute path"));
    };
    let (dir, name) = (&path[..slash], &path[slash + 1..]);
    if name.is_empty() {
        return Err(format!(
            "`{path}` has no file-name pattern after its last `/`"
        ));
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    let re = regex::Regex::new(&format!("^(?:{name})$"))
        .map_err(|e| format!("invalid file-name regex `{name}`: {e}"))?;
    Ok((PathBuf::from(dir), re))
}

impl TaildirSourceConfig {
    /// Required keys, ranges and regexes; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        self.settings(props).err().unwrap_or_default()
    }

    /// The checked, converted settings.
    ///
    /// # Errors
    /// Every problem found, located at its key.
    pub fn settings(&self, props: &Props) -> Result<Settings, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let names = self.filegroups.clone().unwrap_or_default();
        if names.is_empty() {
            errors.push(props.error("filegroups", "missing required property `filegroups`"));
        }
        let mut groups = Vec::new();
        for name in &names {
            let key = format!("filegroups.{name}");
            let Some(path) = self.paths.get(name) else {
                errors.push(props.error(&key, format!("missing required property `{key}`")));
                continue;
            };
            match parse_group_path(path) {
                Ok((dir, pattern)) => {
                    let prefix = format!("{name}.");
                    let headers = self
                        .headers
                        .iter()
                        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|h| (h, v.as_str())))
                        .collect();
                    groups.push(Group {
                        name: name.clone(),
                        dir,
                        pattern,
                        headers,
                    });
                }
                Err(msg) => errors.push(props.error(&key, msg)),
            }
        }
        for key in self.paths.keys() {
            if !names.contains(key) {
                errors.push(props.error(
                    &format!("filegroups.{key}"),
                    format!("file group `{key}` is not listed in `filegroups`"),
                ));
            }
        }
        let multiline = match self.multiline_pattern.as_deref() {
            None => None,
            Some(p) => match regex::bytes::Regex::new(p) {
                Ok(re) => Some(re),
                Err(e) => {
                    errors.push(
                        props.error("multiline.pattern", format!("invalid regex `{p}`: {e}")),
                    );
                    None
                }
            },
        };
        let positive = [
            ("batchSize", self.batch_size as u64),
            ("maxBatchCount", self.max_batch_count),
            ("idleTimeout", self.idle_timeout),
            ("writePosInterval", self.write_pos_interval),
            ("backoffSleepIncrement", self.backoff_sleep_increment),
            ("maxBackoffSleep", self.max_backoff_sleep),
            ("multiline.flushTimeout", self.multiline_flush_timeout),
        ];
        for (key, value) in positive {
            if value == 0 {
                errors.push(props.error(key, format!("`{key}` must be at least 1")));
            }
        }
        let position_file = match self.position_file.as_deref().map(str::trim) {
            None | Some("") => default_position_file(),
            Some(p) => expand_home(p),
        };
        if !position_file.is_absolute() {
            errors.push(props.error(
                "positionFile",
                format!("`{}` is not an absolute path", position_file.display()),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            groups,
            position_file,
            byte_offset_header: self.byte_offset_header,
            skip_to_end: self.skip_to_end,
            idle_timeout: Duration::from_millis(self.idle_timeout),
            write_pos_interval: Duration::from_millis(self.write_pos_interval),
            batch_size: self.batch_size,
            max_batch_count: self.max_batch_count,
            backoff_increment: Duration::from_millis(self.backoff_sleep_increment),
            backoff_max: Duration::from_millis(self.max_backoff_sleep),
            cache_pattern_matching: self.cache_pattern_matching,
            file_header_key: self.file_header.then(|| self.file_header_key.clone()),
            multiline,
            multiline_flush: Duration::from_millis(self.multiline_flush_timeout),
        })
    }
}
