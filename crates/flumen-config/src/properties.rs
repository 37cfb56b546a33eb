//! A faithful lexer for `java.util.Properties.load`.
//!
//! Flume hands its files to `Properties.load` before applying its own grammar, so running
//! Flume files unchanged means copying Java's quirks, including the surprising ones: trailing
//! whitespace is part of the value, `#` is a comment only at the start of a line, and a comment
//! line ending in a backslash does *not* continue (Java resets at the end of any comment line).
//!
//! The work is split like Java's: `logical_lines` mirrors `Properties.LineReader.readLine`
//! (line ends, blank lines, comments, continuations), then each logical line is split into key
//! and value and unescaped like `Properties.load0`/`loadConvert`.
//!
//! ```text
//!   "  a.b\\\n   c = x y  \n"
//!      │           └ continuation: backslash+newline dropped, leading blanks skipped
//!      └ leading blanks skipped
//!   logical line: "a.bc = x y  "  → key "a.bc", value "x y  " (trailing blanks kept)
//! ```
//!
//! Differences from Java, both deliberate: the text is already decoded (we read UTF-8, Java
//! reads ISO-8859-1), and a malformed `\uXXXX` skips the one entry with an error
//! [`Diagnostic`] instead of failing the whole load. A `\u` escape that leaves an unpaired
//! UTF-16 surrogate cannot be stored in a Rust string and is reported the same way.

use crate::diagnostic::Diagnostic;

/// One `key = value` pair, after unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, unescaped.
    pub key: String,
    /// The value, unescaped, trailing whitespace included (as Java keeps it).
    pub value: String,
    /// 1-based first physical line of the logical line.
    pub line: u32,
}

/// Whitespace as `Properties` understands it: space, tab, form feed (not `\n`/`\r`).
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Splits `text` into logical lines exactly like Java's `LineReader`: returns each logical
/// line (continuations joined, leading blanks removed) with its first physical line number.
fn logical_lines(text: &str) -> Vec<(Vec<char>, u32)> {
    let mut out = Vec::new();
    let mut buf: Vec<char> = Vec::new();
    let mut skip_white = true;
    let mut is_comment = false;
    let mut is_new_line = true;
    let mut appended_line_begin = false;
    let mut preceding_backslash = false;
    let mut skip_lf = false;
    // Physical line of the character being read, and of the start of the current logical line.
    let mut phys: u32 = 1;
    let mut start_line: u32 = 1;
    let mut prev_cr = false;

    for c in text.chars() {
        // Count physical lines independently of Java's state machine: \r\n is one break.
        let this_line = phys;
        if c == '\n' {
            if !prev_cr {
                phys = phys.saturating_add(1);
            }
            prev_cr = false;
        } else if c == '\r' {
            phys = phys.saturating_add(1);
            prev_cr = true;
        } else {
            prev_cr = false;
        }

        if skip_lf {
            skip_lf = false;
            if c == '\n' {
                continue;
            }
        }
        if skip_white {
            if is_blank(c) {
                continue;
            }
            if !appended_line_begin && (c == '\r' || c == '\n') {
                continue;
            }
            skip_white = false;
            appended_line_begin = false;
        }
        if is_new_line {
            is_new_line = false;
            start_line = this_line;
            if c == '#' || c == '!' {
                is_comment = true;
                continue;
            }
        }
        if c != '\n' && c != '\r' {
            if !is_comment {
                buf.push(c);
            }
            if c == '\\' {
                preceding_backslash = !preceding_backslash;
            } else {
                preceding_backslash = false;
            }
        } else if is_comment || buf.is_empty() {
            // End of a comment (never continued, as in Java) or of a line that was only a
            // continuation of nothing: start afresh.
            is_comment = false;
            is_new_line = true;
            skip_white = true;
            preceding_backslash = false;
            buf.clear();
        } else if preceding_backslash {
            buf.pop();
            skip_white = true;
            appended_line_begin = true;
            preceding_backslash = false;
            if c == '\r' {
                skip_lf = true;
            }
        } else {
            out.push((std::mem::take(&mut buf), start_line));
            is_new_line = true;
            skip_white = true;
        }
    }
    if !buf.is_empty() && !is_comment {
        if preceding_backslash {
            buf.pop();
        }
        out.push((buf, start_line));
    }
    out
}

/// Unescapes like Java's `loadConvert`. Errors are messages for a [`Diagnostic`].
fn unescape(chars: &[char]) -> Result<String, String> {
    let mut out = String::with_capacity(chars.len());
    // Pending high surrogate from a previous `\uD8xx`, which must be followed by a low one.
    let mut high: Option<u16> = None;
    let mut i = 0;
    while i < chars.len() {
        let mut c = chars[i];
        i += 1;
        let mut unit: Option<u16> = None;
        if c == '\\' {
            // A trailing lone backslash cannot reach here in practice (the line reader drops
            // it), but an input-derived index must never panic, so treat it as literal.
            let Some(&next) = chars.get(i) else {
                out.push('\\');
                break;
            };
            i += 1;
            if next == 'u' {
                let hex: String = chars.get(i..i + 4).unwrap_or(&[]).iter().collect();
                let value = if hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    u16::from_str_radix(&hex, 16).ok()
                } else {
                    None
                };
                let Some(v) = value else {
                    let shown: String = chars.iter().skip(i).take(4).collect();
                    return Err(format!(
                        "malformed \\uXXXX escape `\\u{shown}`: expected exactly four hex digits"
                    ));
                };
                i += 4;
                unit = Some(v);
            } else {
                c = match next {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\u{c}',
                    other => other,
                };
            }
        }
        match (high.take(), unit) {
            (Some(h), Some(u)) if (0xDC00..0xE000).contains(&u) => {
                let cp = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(u) - 0xDC00);
                match char::from_u32(cp) {
                    Some(ch) => out.push(ch),
                    None => return Err("invalid \\u surrogate pair".to_string()),
                }
            }
            (Some(h), _) => {
                return Err(format!(
                    "unpaired UTF-16 surrogate `\\u{h:04X}` in \\u escape"
                ));
            }
            (None, Some(u)) if (0xD800..0xDC00).contains(&u) => high = Some(u),
            (None, Some(u)) => match char::from_u32(u32::from(u)) {
                Some(ch) => out.push(ch),
                None => {
                    return Err(format!(
                        "unpaired UTF-16 surrogate `\\u{u:04X}` in \\u escape"
                    ));
                }
            },
            (None, None) => out.push(c),
        }
    }
    if let Some(h) = high {
        return Err(format!(
            "unpaired UTF-16 surrogate `\\u{h:04X}` in \\u escape"
        ));
    }
    Ok(out)
}

/// Splits one logical line into raw key and value slices, as `Properties.load0` does.
fn split_key_value(line: &[char]) -> (&[char], &[char]) {
    let limit = line.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = line[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = line[value_start];
        if !is_blank(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..key_len], &line[value_start.min(limit)..])
}

/// Parses `.properties` text into entries in file order, duplicates included.
///
/// Never panics. A malformed `\uXXXX` escape yields an error [`Diagnostic`] at the entry's
/// line and that entry is skipped; everything else is accepted, as Java accepts it.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<Diagnostic>) {
    let mut entries = Vec::new();
    let mut diags = Vec::new();
    for (line, line_no) in logical_lines(text) {
        let (k, v) = split_key_value(&line);
        match (unescape(k), unescape(v)) {
            (Ok(key), Ok(value)) => entries.push(Entry {
                key,
                value,
                line: line_no,
            }),
            (Err(e), _) | (_, Err(e)) => diags.push(Diagnostic::error(e).at_line(line_no)),
        }
    }
    (entries, diags)
}

/// Escapes `s` the way `Properties.store` does, so that [`parse`] gives `s` back.
///
/// Used by tests and by tools that write configuration; non-ASCII is written as `\uXXXX`
/// so the output is also readable by Java's ISO-8859-1 loader.
pub fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, u32)> {
        let (e, d) = parse(text);
        assert!(d.is_empty(), "unexpected diagnostics: {d:?}");
        e.into_iter().map(|e| (e.key, e.value, e.line)).collect()
    }

    fn one(k: &str, v: &str, l: u32) -> (String, String, u32) {
        (k.to_string(), v.to_string(), l)
    }

    #[test]
    fn separators() {
        for t in [
            "key=value",
            "key = value",
            "key: value",
            "key value",
            "  key\t:\tvalue",
            "key  =value",
        ] {
            assert_eq!(kv(t), vec![one("key", "value", 1)], "{t:?}");
        }
        // Only one separator after whitespace is consumed.
        assert_eq!(kv("key = = v"), vec![one("key", "= v", 1)]);
        assert_eq!(kv("key==v"), vec![one("key", "=v", 1)]);
        assert_eq!(kv("key :=v"), vec![one("key", "=v", 1)]);
    }

    #[test]
    fn empty_values_and_keys() {
        assert_eq!(kv("key"), vec![one("key", "", 1)]);
        assert_eq!(kv("key ="), vec![one("key", "", 1)]);
        assert_eq!(kv("=v"), vec![one("", "v", 1)]);
    }

    #[test]
    fn trailing_whitespace_kept_and_hash_not_comment_midline() {
        assert_eq!(kv("a.b = x # note  "), vec![one("a.b", "x # note  ", 1)]);
    }

    #[test]
    fn comments_and_blank_lines() {
        let t = "# c\n! c2\n\n   \n  # indented\nk=v\n";
        assert_eq!(kv(t), vec![one("k", "v", 6)]);
    }

    #[test]
    fn comment_ending_in_backslash_does_not_continue() {
        assert_eq!(kv("# comment \\\nk=v"), vec![one("k", "v", 2)]);
    }

    #[test]
    fn line_endings() {
        assert_eq!(
            kv("a=1\rb=2\r\nc=3\n"),
            vec![one("a", "1", 1), one("b", "2", 2), one("c", "3", 3)]
        );
    }

    #[test]
    fn continuation() {
        assert_eq!(
            kv("k = a\\\n    b\nz=1"),
            vec![one("k", "ab", 1), one("z", "1", 3)]
        );
        assert_eq!(kv("k = a\\\r\n  b"), vec![one("k", "ab", 1)]);
        assert_eq!(kv("k = a\\\r  b"), vec![one("k", "ab", 1)]);
        // Even number of backslashes: no continuation, one literal backslash.
        assert_eq!(
            kv("k = a\\\\\nb=1"),
            vec![one("k", "a\\", 1), one("b", "1", 2)]
        );
        // Continuation in the key.
        assert_eq!(kv("ke\\\n  y=v"), vec![one("key", "v", 1)]);
        // A continued line starting with # is not a comment.
        assert_eq!(kv("k=a\\\n#b"), vec![one("k", "a#b", 1)]);
        // Backslash at EOF is dropped.
        assert_eq!(kv("k=a\\"), vec![one("k", "a", 1)]);
        // Empty continuation line ends the logical line.
        assert_eq!(kv("k=a\\\n\nz=1"), vec![one("k", "a", 1), one("z", "1", 3)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(kv(r"k=\t\n\r\f\\\q"), vec![one("k", "\t\n\r\u{c}\\q", 1)]);
        assert_eq!(kv(r"a\=b\:c\ d=v"), vec![one("a=b:c d", "v", 1)]);
        assert_eq!(kv(r"k=\u0041\u00e9"), vec![one("k", "Aé", 1)]);
        assert_eq!(kv(r"k=\uD83D\uDE00"), vec![one("k", "😀", 1)]);
        assert_eq!(kv(r"\#k=v"), vec![one("#k", "v", 1)]);
    }

    #[test]
    fn malformed_unicode_escape_skips_entry() {
        let (e, d) = parse("a=1\nb=\\u12x4\nc=3\nd=\\u12");
        assert_eq!(
            e.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].line, Some(2));
        assert!(d[0].is_error());
        assert!(
            d[0].message.starts_with("malformed \\uXXXX escape"),
            "{}",
            d[0].message
        );
        assert_eq!(d[1].line, Some(4));
    }

    #[test]
    fn unpaired_surrogate_is_an_error() {
        let (e, d) = parse("k=\\uD800x");
        assert!(e.is_empty());
        assert!(
            d[0].message.contains("unpaired UTF-16 surrogate"),
            "{}",
            d[0].message
        );
        let (_, d) = parse("k=\\uDC00");
        assert_eq!(d.len(), 1);
        let (_, d) = parse("k=\\uD800");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn duplicates_kept_in_order() {
        assert_eq!(kv("k=1\nk=2"), vec![one("k", "1", 1), one("k", "2", 2)]);
    }

    #[test]
    fn line_numbers_after_continuations() {
        let t = "\n\na=1\\\n2\\\n3\nb=2\n";
        assert_eq!(kv(t), vec![one("a", "123", 3), one("b", "2", 6)]);
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn round_trip(pairs in proptest::collection::vec((".*", ".*"), 0..8)) {
                let mut text = String::new();
                for (k, v) in &pairs {
                    text.push_str(&escape(k, true));
                    text.push('=');
                    text.push_str(&escape(v, false));
                    text.push('\n');
                }
                let (entries, diags) = parse(&text);
                prop_assert!(diags.is_empty());
                let got: Vec<(String, String)> =
                    entries.into_iter().map(|e| (e.key, e.value)).collect();
                prop_assert_eq!(got, pairs);
            }

            #[test]
            fn never_panics(s in ".*") {
                let _ = parse(&s);
            }

            #[test]
            fn never_panics_on_tricky_alphabet(s in "[ \\\\\\t\\r\\n=:#!u0-9a-fA-FD\u{c}é]{0,64}") {
                let _ = parse(&s);
            }
        }
    }
}
