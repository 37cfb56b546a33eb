//! The position file, in Flume's TAILDIR JSON format:
//! `[{"inode":2496275,"pos":1240,"file":"/var/log/app.log"}, ...]`.
//!
//! Reading is tolerant (any whitespace, any field order, unknown fields and JSON values
//! ignored, numbers as integers) so that a file written by Flume's Gson is accepted; writing
//! produces exactly Flume's compact form, so Flume can read ours. A small hand parser keeps the
//! crate free of a JSON dependency for this one 3-field record.
//!
//! Writes are atomic: a temporary file beside the target is written, fsynced, renamed over the
//! target, and the directory is fsynced, so a crash leaves either the old or the new file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One file's committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's inode (Flume stores no device).
    pub inode: u64,
    /// Byte offset of the first byte not yet committed to the channel.
    pub pos: u64,
    /// The file's absolute path when the position was recorded.
    pub file: String,
}

/// Serializes `entries` as Flume does (compact, fields in Flume's order).
pub fn to_json(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(2 + entries.len() * 64);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"inode\":{},\"pos\":{},\"file\":",
            e.inode, e.pos
        ));
        push_json_string(&mut out, &e.file);
        out.push('}');
    }
    out.push(']');
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses a position file. An empty (or all-whitespace) file is an empty list, as Flume treats
/// a missing file.
///
/// # Errors
/// A message saying where the text stops being a valid position list.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    if p.i == p.s.len() {
        return Ok(Vec::new());
    }
    let value = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters after the list"));
    }
    let Value::Array(items) = value else {
        return Err("expected a JSON array".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        let Value::Object(fields) = item else {
            return Err(format!("element {n} is not an object"));
        };
        let (mut inode, mut pos, mut file) = (None, None, None);
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("inode", Value::Number(x)) => inode = Some(x),
                ("pos", Value::Number(x)) => pos = Some(x),
                ("file", Value::String(x)) => file = Some(x),
                ("inode" | "pos" | "file", _) => {
                    return Err(format!("element {n}: `{k}` has the wrong type"));
                }
                _ => {}
            }
        }
        match (inode, pos) {
            (Some(inode), Some(pos)) => out.push(Entry {
                inode,
                pos,
                file: file.unwrap_or_default(),
            }),
            _ => return Err(format!("element {n} lacks `inode` or `pos`")),
        }
    }
    Ok(out)
}

/// The JSON values a position file may contain; numbers are non-negative integers (others
/// are kept as `Other`, which only matters if they sit in `inode`/`pos`).
enum Value {
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
    String(String),
    Number(u64),
    Other,
}

/// Nesting deeper than this is not a position file; the bound keeps recursion safe.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    return Err(self.err("expected `,` or `]`"));
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') {
                    return Ok(Value::Object(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.err("expected `:`"));
                    }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'}') {
                        return Ok(Value::Object(fields));
                    }
                    return Err(self.err("expected `,` or `}`"));
                }
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                for word in [&b"true"[..], b"false", b"null"] {
                    if self.s[self.i..].starts_with(word) {
                        self.i += word.len();
                        return Ok(Value::Other);
                    }
                }
                Err(self.err("unexpected character"))
            }
            None => Err(self.err("unexpected end of file")),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Value::Number(n));
        }
        // Gson may write longs as `1.0E3`-style doubles only if told to; accept whole doubles.
        match text.parse::<f64>() {
            Ok(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(Value::Number(f as u64)),
            Ok(_) => Ok(Value::Other),
            Err(_) => Err(format!("invalid number `{text}` at byte {start}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(self.err("expected a string"));
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.err("invalid escape")),
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in a string"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.i += 4;
        Ok(digits)
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            self.i += 2;
            let lo = self.hex4()?;
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
            return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }
}

/// Reads and parses the position file; a missing file is an empty list. Blocking.
///
/// # Errors
/// An I/O error other than "not found", or a parse error, as a message.
pub fn load_blocking(path: &Path) -> Result<Vec<Entry>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            parse(&text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `json` to `path` atomically (tmp, fsync, rename, fsync of the directory), creating
/// the directory if needed. Blocking.
///
/// # Errors
/// The I/O error.
pub fn store_blocking(path: &Path, json: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "taildir_position.json".into());
    tmp_name.push(".tmp");
    let tmp: PathBuf = dir.join(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(json.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable; failure here is not worth failing the write for.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_flumes_exact_form() {
        let entries = vec![
            Entry {
                inode: 2496275,
                pos: 1240,
                file: "/var/log/a.log".into(),
            },
            Entry {
                inode: 7,
                pos: 0,
                file: "/tmp/q\"uo\\te".into(),
            },
        ];
        let json = to_json(&entries);
        assert_eq!(
            json,
            r#"[{"inode":2496275,"pos":1240,"file":"/var/log/a.log"},{"inode":7,"pos":0,"file":"/tmp/q\"uo\\te"}]"#
        );
        assert_eq!(parse(&json).unwrap(), entries);
        assert_eq!(to_json(&[]), "[]");
    }

    #[test]
    fn tolerant_of_whitespace_order_and_extra_fields() {
        let text = "\n [ {\n \"file\" : \"/x/\\u00e9.log\", \"pos\": 12 ,\"inode\":3, \"extra\": [1, {\"a\": null}], \"b\": true }\n ]\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![Entry {
                inode: 3,
                pos: 12,
                file: "/x/é.log".into()
            }]
        );
        assert_eq!(parse("  ").unwrap(), vec![]);
        assert_eq!(parse("[]").unwrap(), vec![]);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        for bad in [
            "[{\"inode\":1,\"pos\":2,\"file\":\"/a\"}",
            "[{\"inode\":1,\"pos\":2,\"file\":\"/a}]",
            "{\"inode\":1}",
            "[{\"inode\":\"x\",\"pos\":2}]",
            "[{\"pos\":2}]",
            "[1,2",
            "\u{0}\u{1}garbage",
            "[{\"inode\":1,\"pos\":2}] x",
            &"[".repeat(1000),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn store_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pos.json");
        store_blocking(&path, "[]").unwrap();
        store_blocking(&path, r#"[{"inode":1,"pos":2,"file":"/a"}]"#).unwrap();
        assert_eq!(load_blocking(&path).unwrap().len(), 1);
        assert!(!dir.path().join("sub/pos.json.tmp").exists());
        assert_eq!(load_blocking(&dir.path().join("none")).unwrap(), vec![]);
    }
}
