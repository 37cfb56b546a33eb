//! The syslog message parser: one RFC 3164 or RFC 5424 message in, one Flume event out, with
//! the semantics of Flume's `SyslogUtils` (the parser of `syslogtcp` and `syslogudp`).
//!
//! # What an event looks like
//! - `Facility` = PRI / 8 and `Severity` = PRI % 8, always present (`0`/`0` when the PRI is
//!   missing or garbled).
//! - `priority` (the PRI digits as sent) and `version` (RFC 5424's `1`) when the message
//!   matched one of the two formats; [`SyslogParser::multiport`] spells them `Priority` and
//!   `Version` as Flume's `multiport_syslogtcp` (its `SyslogParser.java`) does.
//! - `timestamp`: milliseconds since the epoch as a decimal string, when the message carries a
//!   timestamp we can read (none for RFC 5424's `-`).
//! - `host`: the HOSTNAME field, unless it is RFC 5424's `-`.
//! - `flume.syslog.status` = `Invalid` when the message has no well-formed `<PRI>` (1 to 3
//!   digits), else `Incomplete` when the framing cut it at `eventSize`.
//! - Body: with `keepFields = all` the whole message; otherwise the text after the HOSTNAME
//!   (for RFC 5424 that is `APP-NAME PROCID MSGID SD MSG`) with the kept fields put back in
//!   front, in message order. A message that matches neither format (or has an empty
//!   remainder) keeps its whole raw bytes as the body: nothing is ever dropped.
//!
//! # Matching
//! The two formats are Flume's two regular expressions, written out by hand over bytes (RFC 5424
//! tried first, then RFC 3164; the same optional version digit and the same character classes:
//! host names are `[A-Za-z0-9_][A-Za-z0-9_.@-]*`). Every field the headers take is ASCII, so
//! header text never depends on the charset and non-UTF-8 bytes can only land in the body,
//! which is copied byte for byte. Nothing here panics or allocates more than the message.
//!
//! # Time
//! - RFC 3164 has no year: the current year (UTC) is assumed, the time is read in the local
//!   time zone, and a date more than a month in the future is moved to last year, one more than
//!   eleven months in the past to next year (Flume's 12-month window, so Dec 31 logs received
//!   on Jan 1 keep last year). Out-of-range fields roll over as Java's lenient calendar does
//!   (`Feb 30` is March 1 or 2).
//! - RFC 5424: fractional seconds (up to 6 digits, read to the millisecond), `Z` or `±hh:mm`
//!   offsets; without an offset the local time zone.
//!
//! # Deviations from Flume, on purpose
//! - An offset is honoured even when fractional seconds are present (Flume's first date format
//!   `yyyy-MM-dd'T'HH:mm:ss.S` parses a prefix and silently drops the offset, reading such a
//!   time as local), and `.5` is 500 ms (Java's `S` reads it as 5 ms).
//! - `priority`/`version` never leak from the previous message (Flume does not reset them).
//! - A kept field that was nil (`-`) is put back as `-`, not Java's `null`.
//! - The body may contain line breaks (octet-counted frames): Flume's `.` stops at them and the
//!   whole message then failed to match.
//! - One trailing `\n`, then one trailing `\r`, are stripped (Windows senders, UDP senders that
//!   end their datagram with a newline).

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{
    Datelike, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc,
};
use flumen_core::{CompactString, Event, Headers, ToCompactString};

/// Header with the facility (PRI / 8).
pub const FACILITY: &str = "Facility";
/// Header with the severity (PRI % 8).
pub const SEVERITY: &str = "Severity";
/// Header with the message time in milliseconds since the epoch.
pub const TIMESTAMP: &str = "timestamp";
/// Header with the sender's HOSTNAME field.
pub const HOST: &str = "host";
/// Header flagging a message that is not a well-formed syslog message.
pub const STATUS: &str = "flume.syslog.status";
/// [`STATUS`] value: no or a garbled `<PRI>`.
pub const STATUS_INVALID: &str = "Invalid";
/// [`STATUS`] value: the message was cut at `eventSize`.
pub const STATUS_INCOMPLETE: &str = "Incomplete";

/// Which parts of the syslog header Flume keeps in the body (`keepFields`).
///
/// All four set means `all`: the body is the message exactly as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepFields {
    /// Keep `<PRI>`.
    pub priority: bool,
    /// Keep the RFC 5424 version.
    pub version: bool,
    /// Keep the timestamp.
    pub timestamp: bool,
    /// Keep the hostname.
    pub hostname: bool,
}

impl KeepFields {
    /// Keep nothing (Flume's default, `none` or `false`).
    pub const NONE: Self = Self {
        priority: false,
        version: false,
        timestamp: false,
        hostname: false,
    };
    /// Keep everything (`all` or `true`): the body is the whole message.
    pub const ALL: Self = Self {
        priority: true,
        version: true,
        timestamp: true,
        hostname: true,
    };

    /// Flume's keepFields: `all` | `none` | `true` | `false` | a space list of `priority`,
    /// `version`, `timestamp`, `hostname` (case-insensitive). An empty value is `none`.
    ///
    /// Stricter than Flume, which looks for each name as a substring and ignores anything
    /// else: a word that is none of these is an error here, so the caller can warn and fall
    /// back to [`KeepFields::parse_lenient`] (exactly Flume's reading).
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "" | "none" | "false" => return Ok(Self::NONE),
            "all" | "true" => return Ok(Self::ALL),
            _ => {}
        }
        let mut keep = Self::NONE;
        for word in lower.split(|c: char| c.is_whitespace() || c == ',') {
            match word {
                "" => {}
                "priority" => keep.priority = true,
                "version" => keep.version = true,
                "timestamp" => keep.timestamp = true,
                "hostname" => keep.hostname = true,
                other => {
                    return Err(format!(
                        "unknown field `{other}`: expected `all`, `none`, or a space-separated \
                         list of `priority`, `version`, `timestamp`, `hostname`"
                    ));
                }
            }
        }
        Ok(keep)
    }

    /// Flume's own reading (`SyslogUtils.chooseFieldsToKeep`): `all`/`true`, `none`/`false`,
    /// else each of the four names counts when it occurs anywhere in the value.
    pub fn parse_lenient(s: &str) -> Self {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "none" | "false" => Self::NONE,
            "all" | "true" => Self::ALL,
            _ => Self {
                priority: lower.contains("priority"),
                version: lower.contains("version"),
                timestamp: lower.contains("timestamp"),
                hostname: lower.contains("hostname"),
            },
        }
    }

    fn is_all(self) -> bool {
        self == Self::ALL
    }
}

/// The character sets a syslog source accepts (`charset.default`, `charset.port.<port>`).
///
/// Every one of them is ASCII-compatible: the syslog header fields the parser reads are ASCII
/// in all of them, so the charset never changes the headers and the body keeps its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8 (Flume's default).
    Utf8,
    /// US-ASCII.
    Ascii,
    /// ISO-8859-1 (Latin-1).
    Latin1,
    /// Another single-byte ASCII superset (ISO-8859-x, windows-125x, KOI8).
    OtherAsciiCompatible,
}

impl Charset {
    /// Reads a Java charset name or alias, case-insensitively.
    pub fn from_name(name: &str) -> Result<Self, String> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match n.as_str() {
            "utf-8" | "utf8" => Self::Utf8,
            "us-ascii" | "ascii" | "iso646-us" => Self::Ascii,
            "iso-8859-1" | "iso8859-1" | "latin1" | "l1" | "iso-latin-1" | "cp819" => Self::Latin1,
            _ if n.starts_with("iso-8859-")
                || n.starts_with("iso8859-")
                || n.starts_with("windows-125")
                || n.starts_with("cp125")
                || n.starts_with("koi8") =>
            {
                Self::OtherAsciiCompatible
            }
            _ => {
                return Err(format!(
                    "unsupported charset `{name}`: use UTF-8, US-ASCII, ISO-8859-1 or another \
                     ASCII-compatible single-byte charset (ISO-8859-x, windows-125x, KOI8)"
                ));
            }
        })
    }
}

/// Where the parser reads "now" and the local time zone; fixed in tests.
#[derive(Debug, Clone, Copy)]
enum Zone {
    Local,
    Fixed(FixedOffset),
}

/// Turns one syslog message into one event (see the module docs for the exact shape).
#[derive(Debug, Clone)]
pub struct SyslogParser {
    keep: KeepFields,
    charset: Charset,
    priority_header: &'static str,
    version_header: &'static str,
    zone: Zone,
    /// Milliseconds since the epoch to use as "now"; `None` = the system clock.
    fixed_now: Option<i64>,
}

/// The fields of a message that matched RFC 5424 or RFC 3164, as slices of it.
struct Matched<'a> {
    version: &'a [u8],
    /// The timestamp as written; `None` for RFC 5424's nil `-`.
    stamp: Option<&'a [u8]>,
    stamp_ms: Option<i64>,
    /// `None` for RFC 5424's nil `-`.
    host: Option<&'a [u8]>,
    rest: &'a [u8],
}

impl SyslogParser {
    /// A parser keeping `keep` in the body; `charset` is a Java charset name (see [`Charset`]).
    pub fn new(keep: KeepFields, charset: &str) -> Result<Self, String> {
        Ok(Self {
            keep,
            charset: Charset::from_name(charset)?,
            priority_header: "priority",
            version_header: "version",
            zone: Zone::Local,
            fixed_now: None,
        })
    }

    /// Names the priority and version headers `Priority` and `Version`, as Flume's
    /// `multiport_syslogtcp` does (`syslogtcp`/`syslogudp` write `priority`/`version`).
    pub fn multiport(mut self) -> Self {
        self.priority_header = "Priority";
        self.version_header = "Version";
        self
    }

    /// Reads zone-less timestamps in `offset` instead of the machine's local time zone.
    pub fn with_time_zone(mut self, offset: FixedOffset) -> Self {
        self.zone = Zone::Fixed(offset);
        self
    }

    /// Uses `now_ms` (milliseconds since the epoch) as the current time: the year guessed for
    /// RFC 3164 timestamps is derived from it. For tests.
    pub fn with_fixed_clock(mut self, now_ms: i64) -> Self {
        self.fixed_now = Some(now_ms);
        self
    }

    /// The keepFields this parser applies.
    pub fn keep_fields(&self) -> KeepFields {
        self.keep
    }

    /// The charset this parser was configured with.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// One message (no framing bytes) -> one event, Flume's `SyslogUtils` semantics.
    /// `truncated` = the framing cut the message at eventSize (-> `Incomplete`).
    pub fn parse(&self, msg: &[u8], truncated: bool) -> Event {
        let msg = strip_line_end(msg);
        // Up to six headers, each short enough to be stored inline (no allocation).
        let mut headers = Headers::with_capacity(6);
        let Some((pri_digits, pri)) = priority(msg) else {
            headers.insert(FACILITY, "0");
            headers.insert(SEVERITY, "0");
            headers.insert(STATUS, STATUS_INVALID);
            return Event::with_headers(headers, Bytes::copy_from_slice(msg));
        };
        headers.insert(FACILITY, (pri / 8).to_compact_string());
        headers.insert(SEVERITY, (pri % 8).to_compact_string());
        if truncated {
            headers.insert(STATUS, STATUS_INCOMPLETE);
        }
        // `<` + digits + `>`: `priority` only accepted ASCII digits and the bracket.
        let after = &msg[pri_digits.len() + 2..];
        let matched = self.match_5424(after).or_else(|| self.match_3164(after));
        let Some(m) = matched else {
            return Event::with_headers(headers, Bytes::copy_from_slice(msg));
        };
        // In key order (`host` < `priority` < `timestamp` < `version`), so each insert appends.
        if let Some(host) = m.host {
            headers.insert(HOST, ascii(host));
        }
        headers.insert(self.priority_header, ascii(pri_digits));
        if let Some(ms) = m.stamp_ms {
            headers.insert(TIMESTAMP, ms.to_compact_string());
        }
        if !m.version.is_empty() {
            headers.insert(self.version_header, ascii(m.version));
        }
        let body = if self.keep.is_all() {
            Bytes::copy_from_slice(msg)
        } else {
            self.body(pri_digits, &m)
                .unwrap_or_else(|| Bytes::copy_from_slice(msg))
        };
        Event::with_headers(headers, body)
    }

    /// The remainder with the kept fields in front; `None` when that is empty (Flume then
    /// falls back to the raw message).
    fn body(&self, pri_digits: &[u8], m: &Matched<'_>) -> Option<Bytes> {
        let k = self.keep;
        let stamp = m.stamp.unwrap_or(b"-");
        let host = m.host.unwrap_or(b"-");
        // Exact size: the body lives on in the channel, spare capacity with it.
        let size = m.rest.len()
            + if k.priority { pri_digits.len() + 2 } else { 0 }
            + if k.version && !m.version.is_empty() {
                m.version.len() + 1
            } else {
                0
            }
            + if k.timestamp { stamp.len() + 1 } else { 0 }
            + if k.hostname { host.len() + 1 } else { 0 };
        let mut out = BytesMut::with_capacity(size);
        if k.priority {
            out.put_u8(b'<');
            out.put_slice(pri_digits);
            out.put_u8(b'>');
        }
        if k.version && !m.version.is_empty() {
            out.put_slice(m.version);
            out.put_u8(b' ');
        }
        if k.timestamp {
            out.put_slice(stamp);
            out.put_u8(b' ');
        }
        if k.hostname {
            out.put_slice(host);
            out.put_u8(b' ');
        }
        out.put_slice(m.rest);
        (!out.is_empty()).then(|| out.freeze())
    }

    /// `(\d?)\s?` then `STAMP|-`, `\s`, `HOST|-`, `\s`, the rest.
    fn match_5424<'a>(&self, s: &'a [u8]) -> Option<Matched<'a>> {
        version_prefixes(s).find_map(|(ver_len, start)| {
            let t = &s[start..];
            let (stamp, stamp_ms, n) = if t.first() == Some(&b'-') {
                (None, None, 1)
            } else {
                let n = stamp_5424_len(t)?;
                (Some(&t[..n]), self.parse_5424(&t[..n]), n)
            };
            let t = ws(t, n)?;
            let (host, n) = if t.first() == Some(&b'-') {
                (None, 1)
            } else {
                let n = host_len(t)?;
                (Some(&t[..n]), n)
            };
            let rest = ws(t, n)?;
            Some(Matched {
                version: &s[..ver_len],
                stamp,
                stamp_ms,
                host,
                rest,
            })
        })
    }

    /// `(\d)?\s?` then `Mmm dd hh:mm:ss` (one or two spaces before the day), `\s`, HOST, `\s`,
    /// the rest.
    fn match_3164<'a>(&self, s: &'a [u8]) -> Option<Matched<'a>> {
        version_prefixes(s).find_map(|(ver_len, start)| {
            let t = &s[start..];
            let n = stamp_3164_len(t)?;
            let stamp = &t[..n];
            let t = ws(t, n)?;
            let n = host_len(t)?;
            let host = &t[..n];
            let rest = ws(t, n)?;
            Some(Matched {
                version: &s[..ver_len],
                stamp: Some(stamp),
                stamp_ms: self.parse_3164(stamp),
                host: Some(host),
                rest,
            })
        })
    }

    fn now_ms(&self) -> i64 {
        self.fixed_now
            .unwrap_or_else(|| Utc::now().timestamp_millis())
    }

    /// Epoch ms of a wall-clock time in the configured zone. A time skipped by a DST jump
    /// moves forward an hour and an ambiguous one takes the earlier instant, as Java's
    /// lenient calendar does.
    fn local_ms(&self, t: NaiveDateTime) -> Option<i64> {
        fn pick<Tz: TimeZone>(tz: &Tz, t: NaiveDateTime) -> Option<i64> {
            match tz.from_local_datetime(&t) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Some(d.timestamp_millis()),
                LocalResult::None => {
                    let later = t.checked_add_signed(TimeDelta::hours(1))?;
                    tz.from_local_datetime(&later)
                        .earliest()
                        .map(|d| d.timestamp_millis())
                }
            }
        }
        match self.zone {
            Zone::Local => pick(&chrono::Local, t),
            Zone::Fixed(off) => pick(&off, t),
        }
    }

    /// `yyyy-MM-ddTHH:mm:ss[.f{1,6}][Z|±hh:mm]`, already matched by [`stamp_5424_len`].
    fn parse_5424(&self, s: &[u8]) -> Option<i64> {
        let year = num(&s[0..4])?;
        let naive = lenient(
            year,
            num(&s[5..7])?,
            num(&s[8..10])?,
            num(&s[11..13])? * 3600 + num(&s[14..16])? * 60 + num(&s[17..19])?,
        )?;
        let mut i = 19;
        let mut millis = 0;
        if s.get(i) == Some(&b'.') {
            let digits = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
            // The first three digits are the milliseconds: `.5` is 500 ms, `.123456` 123 ms.
            let frac = &s[i + 1..i + 1 + digits];
            for k in 0..3 {
                millis = millis * 10 + frac.get(k).map_or(0, |d| i64::from(d - b'0'));
            }
            i += 1 + digits;
        }
        let base = match s.get(i) {
            Some(b'Z') => naive.and_utc().timestamp_millis(),
            Some(&sign @ (b'+' | b'-')) => {
                let off = num(&s[i + 1..i + 3])? * 3600 + num(&s[i + 4..i + 6])? * 60;
                let off = if sign == b'+' { off } else { -off };
                naive.and_utc().timestamp_millis() - off * 1000
            }
            _ => self.local_ms(naive)?,
        };
        base.checked_add(millis)
    }

    /// `Mmm d hh:mm:ss` with the year guessed (see the module docs).
    fn parse_3164(&self, s: &[u8]) -> Option<i64> {
        const MONTHS: [&[u8; 3]; 12] = [
            b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
            b"dec",
        ];
        let name = s.get(..3)?.to_ascii_lowercase();
        let month = MONTHS.iter().position(|m| m[..] == name[..])? as i64 + 1;
        // After the month: one or two spaces, one or two day digits, a space, hh:mm:ss.
        let rest = &s[3..];
        let day_start = rest.iter().position(u8::is_ascii_digit)?;
        let day_len = rest[day_start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let day = num(&rest[day_start..day_start + day_len])?;
        let time = &rest[day_start + day_len + 1..];
        let secs = num(&time[0..2])? * 3600 + num(&time[3..5])? * 60 + num(&time[6..8])?;

        let now = self.now_ms();
        let year = i64::from(chrono::DateTime::from_timestamp_millis(now)?.year());
        let naive = lenient(year, month, day, secs)?;
        // Flume's window, compared in wall-clock time (one zone conversion per message
        // instead of four; a DST hour cannot move a date across a month-wide window edge in
        // any way that matters).
        let now = self.wall_clock(now)?;
        let fixed = if naive > now && naive.checked_sub_months(Months::new(1))? > now {
            // More than a month ahead: sent last year (Dec 31 received on Jan 1).
            naive.checked_sub_months(Months::new(12))?
        } else if naive < now && naive.checked_add_months(Months::new(11))? < now {
            // More than eleven months behind: our clock lags the sender's New Year.
            naive.checked_add_months(Months::new(12))?
        } else {
            naive
        };
        self.local_ms(fixed)
    }

    /// `ms` since the epoch as a wall-clock time in the configured zone.
    fn wall_clock(&self, ms: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp_millis(ms)?;
        Some(match self.zone {
            Zone::Local => utc.with_timezone(&chrono::Local).naive_local(),
            Zone::Fixed(off) => utc.with_timezone(&off).naive_local(),
        })
    }
}

/// Drops one trailing `\n`, then one trailing `\r`.
fn strip_line_end(msg: &[u8]) -> &[u8] {
    let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
    msg.strip_suffix(b"\r").unwrap_or(msg)
}

/// Flume's PRI state machine: `<`, 1 to 3 ASCII digits, `>`. Returns the digits and value.
fn priority(msg: &[u8]) -> Option<(&[u8], u32)> {
    if msg.first() != Some(&b'<') {
        return None;
    }
    let digits = msg[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || msg.get(1 + digits) != Some(&b'>') {
        return None;
    }
    let d = &msg[1..1 + digits];
    let value = d.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
    Some((d, value))
}

/// Java's `\s`: space, tab, LF, VT, FF, CR.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// `t[n]` must be a `\s`; returns what follows it.
fn ws(t: &[u8], n: usize) -> Option<&[u8]> {
    t.get(n).filter(|&&b| is_ws(b)).map(|_| &t[n + 1..])
}

/// Java's `\w` (ASCII).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.@-]*`: length of the host name at the start of `t`.
fn host_len(t: &[u8]) -> Option<usize> {
    if !is_word(*t.first()?) {
        return None;
    }
    Some(
        t.iter()
            .take_while(|&&b| is_word(b) || matches!(b, b'.' | b'@' | b'-'))
            .count(),
    )
}

/// The ways `(\d?)\s?` can match at the start of `s`, in the regex's backtracking order:
/// `(version length, bytes consumed)`.
fn version_prefixes(s: &[u8]) -> impl Iterator<Item = (usize, usize)> {
    let digit = s.first().is_some_and(u8::is_ascii_digit);
    let ws_at = |i: usize| s.get(i).is_some_and(|&b| is_ws(b));
    let candidates = [
        (digit && ws_at(1)).then_some((1, 2)),
        digit.then_some((1, 1)),
        ws_at(0).then_some((0, 1)),
        Some((0, 0)),
    ];
    candidates.into_iter().flatten()
}

fn pattern(t: &[u8], pat: &[u8]) -> bool {
    t.len() >= pat.len()
        && pat.iter().zip(t).all(|(&p, &b)| match p {
            b'd' => b.is_ascii_digit(),
            _ => p == b,
        })
}

/// Length of `\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|Z)?` at the
/// start of `t`. Greedy is exact here: every shorter choice is followed by a byte that cannot
/// be the `\s` the format needs next.
fn stamp_5424_len(t: &[u8]) -> Option<usize> {
    if !pattern(t, b"dddd-dd-ddTdd:dd:dd") {
        return None;
    }
    let mut n = 19;
    if t.get(n) == Some(&b'.') {
        let digits = t[n + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=6).contains(&digits) {
            n += 1 + digits;
        }
    }
    match t.get(n) {
        Some(b'Z') => n += 1,
        Some(b'+' | b'-') if pattern(&t[n + 1..], b"dd:dd") => n += 6,
        _ => {}
    }
    Some(n)
}

/// Length of `[A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2}` at the start of `t`.
fn stamp_3164_len(t: &[u8]) -> Option<usize> {
    let month = t.get(..3)?;
    if !(month[0].is_ascii_uppercase()
        && month[1].is_ascii_lowercase()
        && month[2].is_ascii_lowercase())
    {
        return None;
    }
    let mut n = 3;
    let spaces = t[n..].iter().take(2).take_while(|&&b| is_ws(b)).count();
    if spaces == 0 {
        return None;
    }
    n += spaces;
    let digits = t[n..]
        .iter()
        .take(2)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    n += digits;
    if !t.get(n).is_some_and(|&b| is_ws(b)) {
        return None;
    }
    n += 1;
    pattern(&t[n..], b"dd:dd:dd").then_some(n + 8)
}

/// ASCII digits to a number (the callers pass at most 4 digits).
fn num(d: &[u8]) -> Option<i64> {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0, |v, b| v * 10 + i64::from(b - b'0')))
}

/// A wall-clock time from possibly out-of-range fields, rolled over as Java's lenient
/// calendar does (month 13 is January next year, day 0 the last day of the previous month).
fn lenient(year: i64, month: i64, day: i64, secs: i64) -> Option<NaiveDateTime> {
    let months = year.checked_mul(12)?.checked_add(month - 1)?;
    let y = i32::try_from(months.div_euclid(12)).ok()?;
    let m = u32::try_from(months.rem_euclid(12) + 1).ok()?;
    let first = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
    first.checked_add_signed(TimeDelta::try_seconds((day - 1) * 86_400 + secs)?)
}

/// Header text from bytes the matchers proved ASCII.
fn ascii(b: &[u8]) -> CompactString {
    match std::str::from_utf8(b) {
        Ok(s) => CompactString::new(s),
        Err(_) => CompactString::from_utf8_lossy(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;

    /// 2026-11-21T14:17:30Z, just after the captures below were made.
    const CAPTURE_NOW: &str = "2026-11-21T14:17:30Z";

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    /// A parser reading zone-less times at +02:00 (so a lost offset shows), clock fixed.
    fn parser(keep: KeepFields) -> SyslogParser {
        SyslogParser::new(keep, "UTF-8")
            .unwrap()
            .with_time_zone(FixedOffset::east_opt(2 * 3600).unwrap())
            .with_fixed_clock(ms(CAPTURE_NOW))
    }

    fn utc_parser(keep: KeepFields, now: &str) -> SyslogParser {
        SyslogParser::new(keep, "UTF-8")
            .unwrap()
            .with_time_zone(FixedOffset::east_opt(0).unwrap())
            .with_fixed_clock(ms(now))
    }

    fn h<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.headers.get(k)
    }

    fn body(e: &Event) -> &[u8] {
        &e.body
    }

    // ---- Messages exactly as util-linux logger 2.38.1 and rsyslog 8.2302 sent them ----

    #[test]
    fn logger_rfc3164_tcp() {
        // logger --tcp -n 127.0.0.1 -P PORT --rfc3164 -t myapp -p local3.warning "hello rfc3164"
        let raw = b"<156>Nov 21 14:17:26 vm myapp: hello rfc3164\n";
        let e = utc_parser(KeepFields::NONE, CAPTURE_NOW).parse(raw, false);
        assert_eq!(h(&e, "Facility"), Some("19"));
        assert_eq!(h(&e, "Severity"), Some("4"));
        assert_eq!(h(&e, "priority"), Some("156"));
        assert_eq!(h(&e, "version"), None);
        assert_eq!(h(&e, "host"), Some("vm"));
        let want = ms("2026-11-21T14:17:26Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(body(&e), b"myapp: hello rfc3164");
        assert_eq!(e.headers.len(), 5);
    }

    #[test]
    fn logger_rfc5424_tcp() {
        // logger --tcp ... --rfc5424 -t myapp -p local3.warning "hello rfc5424"
        let raw = b"<156>1 2026-11-21T14:17:28.173300+00:00 vm myapp - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] hello rfc5424\n";
        let e = parser(KeepFields::NONE).parse(raw, false);
        assert_eq!(h(&e, "Facility"), Some("19"));
        assert_eq!(h(&e, "Severity"), Some("4"));
        assert_eq!(h(&e, "priority"), Some("156"));
        assert_eq!(h(&e, "version"), Some("1"));
        assert_eq!(h(&e, "host"), Some("vm"));
        let want = ms("2026-11-21T14:17:28.173Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(
            body(&e),
            b"myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello rfc5424"
        );
    }

    #[test]
    fn logger_udp_datagrams() {
        // logger --udp: no trailing newline.
        let p = utc_parser(KeepFields::NONE, CAPTURE_NOW);
        let e = p.parse(b"<13>Nov 21 14:17:27 vm myapp: hello udp rfc3164", false);
        assert_eq!(
            (h(&e, "Facility"), h(&e, "Severity")),
            (Some("1"), Some("5"))
        );
        assert_eq!(body(&e), b"myapp: hello udp rfc3164");
        let e = p.parse(
            b"<13>1 2026-11-21T14:17:29.196795+00:00 vm myapp - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] hello udp rfc5424",
            false,
        );
        let want = ms("2026-11-21T14:17:29.196Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(h(&e, "host"), Some("vm"));
    }

    #[test]
    fn rsyslog_forward_formats() {
        let p = parser(KeepFields::NONE);
        // omfwd template RSYSLOG_SyslogProtocol23Format (the octet count included the `\n`).
        let e = p.parse(
            b"<134>1 2026-11-21T14:17:43.737771+00:00 vm app - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] one from rsyslog\n",
            false,
        );
        assert_eq!(
            (h(&e, "Facility"), h(&e, "Severity")),
            (Some("16"), Some("6"))
        );
        let want = ms("2026-11-21T14:17:43.737Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(
            body(&e),
            b"app - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] one from rsyslog"
        );
        // RSYSLOG_ForwardFormat: an RFC 3339 stamp without the version.
        let e = p.parse(
            b"<134>2026-11-21T14:17:43.737771+00:00 vm app one from rsyslog\n",
            false,
        );
        assert_eq!(h(&e, "version"), None);
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(h(&e, "host"), Some("vm"));
        assert_eq!(body(&e), b"app one from rsyslog");
        // omfwd's default RSYSLOG_TraditionalForwardFormat.
        let e = utc_parser(KeepFields::NONE, CAPTURE_NOW)
            .parse(b"<134>Nov 21 14:17:35 vm app: one from rsyslog", false);
        let want = ms("2026-11-21T14:17:35Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        assert_eq!(body(&e), b"app: one from rsyslog");
    }

    // ---- Flume's TestSyslogUtils vectors ----

    const HOST1: &str = "ubuntu-11.cloudera.com";

    fn check(msg: &str, stamp: Option<&str>, host: Option<&str>, data: &str) {
        let e = parser(KeepFields::NONE).parse(msg.as_bytes(), false);
        let want = stamp.map(|s| ms(s).to_string());
        assert_eq!(h(&e, "timestamp"), want.as_deref(), "{msg}");
        assert_eq!(h(&e, "host"), host, "{msg}");
        assert_eq!(String::from_utf8_lossy(body(&e)), data, "{msg}");
        assert_eq!(h(&e, "Facility"), Some("1"));
        assert_eq!(h(&e, "Severity"), Some("2"));
        assert_eq!(h(&e, STATUS), None);
    }

    #[test]
    fn flume_header_vectors() {
        let m = |s: &str| format!("<10>{s} some msg\n");
        // TestHeader0: offset, no version.
        check(
            &m(&format!("2012-04-13T11:11:11+08:00 {HOST1}")),
            Some("2012-04-13T11:11:11+08:00"),
            Some(HOST1),
            "some msg",
        );
        // TestHeader1: version, no offset: the local zone (+02:00 here).
        check(
            &m(&format!("1 2012-04-13T11:11:11 {HOST1}")),
            Some("2012-04-13T11:11:11+02:00"),
            Some(HOST1),
            "some msg",
        );
        // TestHeader2: Z.
        check(
            &m(&format!("1 2012-04-13T11:11:11Z {HOST1}")),
            Some("2012-04-13T11:11:11Z"),
            Some(HOST1),
            "some msg",
        );
        // TestHeader3.
        check(
            &m(&format!("1 2012-04-13T11:11:11+08:00 {HOST1}")),
            Some("2012-04-13T11:11:11+08:00"),
            Some(HOST1),
            "some msg",
        );
        // TestHeader4: nil timestamp.
        check(&m(&format!("1 - {HOST1}")), None, Some(HOST1), "some msg");
        // TestHeader5-7: nil host.
        check(
            &m("1 2012-04-13T11:11:11 -"),
            Some("2012-04-13T11:11:11+02:00"),
            None,
            "some msg",
        );
        check(
            &m("1 2012-04-13T11:11:11Z -"),
            Some("2012-04-13T11:11:11Z"),
            None,
            "some msg",
        );
        check(
            &m("1 2012-04-13T11:11:11+08:00 -"),
            Some("2012-04-13T11:11:11+08:00"),
            None,
            "some msg",
        );
        // TestHeader8: milliseconds.
        check(
            &m(&format!("1 2012-04-13T11:11:11.999 {HOST1}")),
            Some("2012-04-13T11:11:11.999+02:00"),
            Some(HOST1),
            "some msg",
        );
        // TestHeader11: microseconds read to the millisecond; the offset is honoured (Flume
        // drops it here, see the module docs).
        check(
            &m(&format!("2014-10-03T17:20:01.123456-07:00 {HOST1}")),
            Some("2014-10-03T17:20:01.123-07:00"),
            Some(HOST1),
            "some msg",
        );
        // One fractional digit is tenths.
        check(
            &m(&format!("1 2012-04-13T11:11:11.5Z {HOST1}")),
            Some("2012-04-13T11:11:11.500Z"),
            Some(HOST1),
            "some msg",
        );
    }

    #[test]
    fn flume_rfc3164_vectors() {
        // TestHeader9/10 (the clock is 2026-11-21T14:17:30Z, the zone +02:00).
        check(
            &format!("<10>Nov 21 16:17:00 {HOST1} some msg\n"),
            Some("2026-11-21T16:17:00+02:00"),
            Some(HOST1),
            "some msg",
        );
        // A single-digit day has two spaces.
        check(
            &format!("<10>Nov  1 01:02:03 {HOST1} some msg\n"),
            Some("2026-11-01T01:02:03+02:00"),
            Some(HOST1),
            "some msg",
        );
        // TestRfc3164HeaderApacheLogWithNulls.
        let data = "- hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]";
        check(
            &format!("<10>Nov 21 16:17:00 {HOST1} {data}\n"),
            Some("2026-11-21T16:17:00+02:00"),
            Some(HOST1),
            data,
        );
    }

    /// TestRfc3164Dates: for a clock at each of 14 months, dates from 10 months before to just
    /// under a month after it get the right year.
    #[test]
    fn flume_rfc3164_year_window() {
        let start = DateTime::parse_from_rfc3339("2024-01-15T12:00:00Z")
            .unwrap()
            .to_utc();
        for month_offset in 0..=13 {
            let now = start.checked_add_months(Months::new(month_offset)).unwrap();
            let p = SyslogParser::new(KeepFields::NONE, "UTF-8")
                .unwrap()
                .with_time_zone(FixedOffset::east_opt(0).unwrap())
                .with_fixed_clock(now.timestamp_millis());
            for i in -10i32..=1 {
                let mut date = if i < 0 {
                    now.checked_sub_months(Months::new(i.unsigned_abs()))
                        .unwrap()
                } else {
                    now.checked_add_months(Months::new(i as u32)).unwrap()
                };
                if i == 1 {
                    date -= TimeDelta::days(1);
                }
                let stamp = date.format("%b %e %H:%M:%S").to_string();
                let e = p.parse(format!("<10>{stamp} {HOST1} some msg").as_bytes(), false);
                let want = date.timestamp_millis().to_string();
                assert_eq!(
                    h(&e, "timestamp"),
                    Some(want.as_str()),
                    "now {now}, {stamp}"
                );
            }
        }
    }

    #[test]
    fn rfc3164_new_year_both_ways() {
        // Sent on Dec 31, received on Jan 1: last year.
        let e = utc_parser(KeepFields::NONE, "2026-01-01T00:00:30Z")
            .parse(b"<13>Dec 31 23:59:50 h m", false);
        let want = ms("2025-12-31T23:59:50Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        // The sender's clock is ahead of ours across New Year: Jan 1 of this year would be
        // eleven months old, so it is next year's.
        let e = utc_parser(KeepFields::NONE, "2025-12-31T23:59:50Z")
            .parse(b"<13>Jan  1 00:00:05 h m", false);
        let want = ms("2026-01-01T00:00:05Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
    }

    #[test]
    fn rfc3164_lenient_fields_and_bad_month() {
        let p = utc_parser(KeepFields::NONE, "2026-03-15T00:00:00Z");
        // Java's lenient calendar: Feb 30 is March 2 (2026 is not a leap year).
        let e = p.parse(b"<13>Feb 30 10:00:00 h m", false);
        let want = ms("2026-03-02T10:00:00Z").to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
        // Not a month name: the format matched, so host and body are still taken.
        let e = p.parse(b"<13>Foo 30 10:00:00 h m", false);
        assert_eq!(h(&e, "timestamp"), None);
        assert_eq!(h(&e, "host"), Some("h"));
        assert_eq!(body(&e), b"m");
    }

    #[test]
    fn local_time_zone_is_the_default() {
        let p = SyslogParser::new(KeepFields::NONE, "utf8").unwrap();
        let e = p.parse(b"<13>1 2012-04-13T11:11:11 h m", false);
        let naive = NaiveDate::from_ymd_opt(2012, 4, 13)
            .unwrap()
            .and_hms_opt(11, 11, 11)
            .unwrap();
        let want = chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .timestamp_millis()
            .to_string();
        assert_eq!(h(&e, "timestamp"), Some(want.as_str()));
    }

    fn check_bad(raw: &[u8]) {
        let e = parser(KeepFields::NONE).parse(raw, false);
        assert_eq!(h(&e, "Facility"), Some("0"));
        assert_eq!(h(&e, "Severity"), Some("0"));
        assert_eq!(h(&e, STATUS), Some(STATUS_INVALID));
        assert_eq!(e.headers.len(), 3, "no other header");
        assert_eq!(body(&e), raw.strip_suffix(b"\n").unwrap_or(raw));
    }

    #[test]
    fn flume_bad_events() {
        check_bad(b"<10F> bad bad data\n");
        check_bad(b"hi guys! <10> bad bad data\n");
        check_bad(b"<> bad bad data\n");
        check_bad(b"<123123123123123123123123123123> bad bad data\n");
        check_bad(b"<1234> four digits");
        check_bad(b"<12");
        check_bad(b"");
        check_bad(b"\xff\xfe<13>1 - - -");
    }

    #[test]
    fn flume_good_event_without_a_format() {
        // testExtractGoodEvent: the PRI is fine, nothing else matched: the whole message.
        let e = parser(KeepFields::NONE).parse(b"<10>Good good good data\n", false);
        assert_eq!(
            (h(&e, "Facility"), h(&e, "Severity")),
            (Some("1"), Some("2"))
        );
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(h(&e, "priority"), None);
        assert_eq!(body(&e), b"<10>Good good good data");
        // Only a PRI.
        let e = parser(KeepFields::NONE).parse(b"<191>", false);
        assert_eq!(
            (h(&e, "Facility"), h(&e, "Severity")),
            (Some("23"), Some("7"))
        );
        assert_eq!(body(&e), b"<191>");
    }

    #[test]
    fn incomplete_and_invalid() {
        // testExtractBadEventLarge's first event: cut at 10 bytes, the PRI still read.
        let e = parser(KeepFields::NONE).parse(b"<10> bad b", true);
        assert_eq!(
            (h(&e, "Facility"), h(&e, "Severity")),
            (Some("1"), Some("2"))
        );
        assert_eq!(h(&e, STATUS), Some(STATUS_INCOMPLETE));
        assert_eq!(body(&e), b"<10> bad b");
        // A cut message that still has its headers keeps them.
        let e = parser(KeepFields::NONE).parse(b"<13>1 2012-04-13T11:11:11Z h app - - trunc", true);
        assert_eq!(h(&e, STATUS), Some(STATUS_INCOMPLETE));
        assert_eq!(h(&e, "host"), Some("h"));
        assert_eq!(body(&e), b"app - - trunc");
        // Invalid wins over Incomplete.
        let e = parser(KeepFields::NONE).parse(b"garbage", true);
        assert_eq!(h(&e, STATUS), Some(STATUS_INVALID));
    }

    #[test]
    fn keep_fields_parse() {
        let kf = |s| KeepFields::parse(s).unwrap();
        for s in ["none", "false", "", "  NONE "] {
            assert_eq!(kf(s), KeepFields::NONE, "{s}");
        }
        for s in [
            "all",
            "true",
            "ALL",
            "True",
            "priority version timestamp hostname",
        ] {
            assert_eq!(kf(s), KeepFields::ALL, "{s}");
        }
        assert_eq!(
            kf("Timestamp hostname"),
            KeepFields {
                timestamp: true,
                hostname: true,
                ..KeepFields::NONE
            }
        );
        assert!(KeepFields::parse("host").is_err());
        assert!(KeepFields::parse("priority bogus").is_err());
        // Flume's substring reading.
        assert_eq!(
            KeepFields::parse_lenient("priority,hostname;junk"),
            KeepFields {
                priority: true,
                hostname: true,
                ..KeepFields::NONE
            }
        );
        assert_eq!(KeepFields::parse_lenient("junk"), KeepFields::NONE);
        assert_eq!(KeepFields::parse_lenient("TRUE"), KeepFields::ALL);
    }

    /// Flume's testKeepFields, plus every one of the 16 combinations on both formats.
    #[test]
    fn keep_fields_every_combination() {
        let flume = format!("<10>1 2012-04-13T11:11:11+08:00 {HOST1} some msg\n");
        let cases = [
            ("none", "some msg".to_string()),
            ("false", "some msg".to_string()),
            ("hostname", format!("{HOST1} some msg")),
            (
                "timestamp hostname",
                format!("2012-04-13T11:11:11+08:00 {HOST1} some msg"),
            ),
            (
                "priority timestamp hostname",
                format!("<10>2012-04-13T11:11:11+08:00 {HOST1} some msg"),
            ),
            (
                "priority version timestamp hostname",
                format!("<10>1 2012-04-13T11:11:11+08:00 {HOST1} some msg"),
            ),
            (
                "all",
                format!("<10>1 2012-04-13T11:11:11+08:00 {HOST1} some msg"),
            ),
            (
                "true",
                format!("<10>1 2012-04-13T11:11:11+08:00 {HOST1} some msg"),
            ),
        ];
        for (keep, want) in cases {
            let e = parser(KeepFields::parse(keep).unwrap()).parse(flume.as_bytes(), false);
            assert_eq!(
                String::from_utf8_lossy(body(&e)),
                want,
                "keepFields = {keep}"
            );
            // Headers never depend on keepFields.
            assert_eq!(h(&e, "host"), Some(HOST1));
            assert!(h(&e, "timestamp").is_some());
        }

        let rfc5424 = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
[exampleSDID@32473 iut=\"3\"] An application event";
        let rfc3164 = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed on /dev/pts/8";
        let nil = b"<13>1 - - app - - nil fields";
        for bits in 0..16u8 {
            let k = KeepFields {
                priority: bits & 1 != 0,
                version: bits & 2 != 0,
                timestamp: bits & 4 != 0,
                hostname: bits & 8 != 0,
            };
            let p = parser(k);
            let mut want = Vec::new();
            let mut want3164 = Vec::new();
            let mut want_nil = Vec::new();
            if k.priority {
                want.extend_from_slice(b"<165>");
                want3164.extend_from_slice(b"<34>");
                want_nil.extend_from_slice(b"<13>");
            }
            if k.version {
                want.extend_from_slice(b"1 ");
                want_nil.extend_from_slice(b"1 ");
            }
            if k.timestamp {
                want.extend_from_slice(b"2003-10-11T22:14:15.003Z ");
                want3164.extend_from_slice(b"Oct 11 22:14:15 ");
                want_nil.extend_from_slice(b"- ");
            }
            if k.hostname {
                want.extend_from_slice(b"mymachine.example.com ");
                want3164.extend_from_slice(b"mymachine ");
                want_nil.extend_from_slice(b"- ");
            }
            want.extend_from_slice(
                b"evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event",
            );
            want3164.extend_from_slice(b"su: 'su root' failed on /dev/pts/8");
            want_nil.extend_from_slice(b"app - - nil fields");
            assert_eq!(body(&p.parse(rfc5424, false)), &want[..], "{k:?}");
            assert_eq!(body(&p.parse(rfc3164, false)), &want3164[..], "{k:?}");
            assert_eq!(body(&p.parse(nil, false)), &want_nil[..], "{k:?}");
            // Invalid messages keep their raw bytes whatever keepFields says.
            assert_eq!(body(&p.parse(b"junk <13>", false)), b"junk <13>");
        }
    }

    #[test]
    fn empty_remainder_falls_back_to_the_raw_message() {
        let e = parser(KeepFields::NONE).parse(b"<13>1 2012-04-13T11:11:11Z host ", false);
        assert_eq!(h(&e, "host"), Some("host"));
        assert_eq!(body(&e), b"<13>1 2012-04-13T11:11:11Z host ");
    }

    #[test]
    fn windows_line_end_and_multiline_body() {
        let p = parser(KeepFields::NONE);
        let e = p.parse(b"<13>1 2012-04-13T11:11:11Z h app - - msg\r\n", false);
        assert_eq!(body(&e), b"app - - msg");
        let e = p.parse(
            b"<13>Oct 11 22:14:15 h java: boom\n\tat a.b(C.java:1)",
            false,
        );
        assert_eq!(h(&e, "host"), Some("h"));
        assert_eq!(body(&e), b"java: boom\n\tat a.b(C.java:1)");
    }

    #[test]
    fn non_utf8_bytes_stay_in_the_body() {
        let p = SyslogParser::new(KeepFields::NONE, "ISO-8859-1").unwrap();
        let e = p.parse(b"<13>Oct 11 22:14:15 h caf\xe9 \xff\xfe", false);
        assert_eq!(h(&e, "host"), Some("h"));
        assert_eq!(body(&e), b"caf\xe9 \xff\xfe");
        // A non-ASCII byte where the host name is: no format matches, raw body.
        let e = p.parse(b"<13>Oct 11 22:14:15 h\xe9 x", false);
        assert_eq!(h(&e, "host"), None);
        assert_eq!(body(&e), b"<13>Oct 11 22:14:15 h\xe9 x");
    }

    #[test]
    fn multiport_header_names() {
        let p = parser(KeepFields::NONE).multiport();
        let e = p.parse(b"<13>1 2012-04-13T11:11:11Z h app - - m", false);
        assert_eq!(h(&e, "Priority"), Some("13"));
        assert_eq!(h(&e, "Version"), Some("1"));
        assert_eq!(h(&e, "priority"), None);
    }

    #[test]
    fn charsets() {
        for ok in [
            "UTF-8",
            "utf8",
            "US-ASCII",
            "ISO-8859-1",
            "iso8859_1",
            "latin1",
            "ISO-8859-15",
            "windows-1252",
            "KOI8-R",
        ] {
            assert!(Charset::from_name(ok).is_ok(), "{ok}");
        }
        for bad in ["UTF-16", "UTF-32BE", "Shift_JIS", "bogus"] {
            assert!(SyslogParser::new(KeepFields::NONE, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_digit_backtracking() {
        let p = parser(KeepFields::NONE);
        // A digit that is not a version: the first stamp digit.
        let e = p.parse(b"<13>2012-04-13T11:11:11Z h m", false);
        assert_eq!(h(&e, "version"), None);
        assert!(h(&e, "timestamp").is_some());
        // Seven fractional digits: not an RFC 5424 stamp, nothing matches.
        let e = p.parse(b"<13>1 2012-04-13T11:11:11.1234567Z h m", false);
        assert_eq!(h(&e, "timestamp"), None);
        assert_eq!(body(&e), b"<13>1 2012-04-13T11:11:11.1234567Z h m");
        // A broken offset.
        let e = p.parse(b"<13>1 2012-04-13T11:11:11+0800 h m", false);
        assert_eq!(h(&e, "host"), None);
    }

    /// Flume's two regular expressions (`SyslogUtils.SYSLOG_MSG_RFC5424_0` and `_RFC3164_0`),
    /// ASCII classes as Java's, `.` also matching line breaks (our one deliberate difference).
    fn flume_regexes() -> [regex::bytes::Regex; 2] {
        [
            r"(?s-u)\A<(\d{1,3})>(?:(\d?)\s?)(?:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)?)|-)\s(?:([\w][\w\d\.@\-]*)|-)\s(.*)\z",
            r"(?s-u)\A<(\d{1,3})>(?:(\d)?\s?)([A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2})\s([\w][\w\d\.@-]*)\s(.*)\z",
        ]
        .map(|r| regex::bytes::Regex::new(r).unwrap())
    }

    fn piece(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        proptest::sample::select(options)
    }

    proptest! {
        #[test]
        fn never_panics(msg in proptest::collection::vec(any::<u8>(), 0..300), truncated: bool) {
            let e = parser(KeepFields::NONE).parse(&msg, truncated);
            prop_assert!(e.headers.get(FACILITY).is_some());
            prop_assert!(e.headers.get(SEVERITY).is_some());
            let all = parser(KeepFields::ALL).parse(&msg, truncated);
            prop_assert_eq!(&all.body[..], strip_line_end(&msg));
        }

        #[test]
        fn never_panics_near_syslog(
            pri in 0u32..1000,
            head in "(1 )?([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,8})?(Z|[+-][0-9]{2}:?[0-9]{2})?|-|[A-Z][a-z]{2}  ?[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2}) ",
            host in "[a-z0-9.@_-]{0,8}",
            rest in proptest::collection::vec(any::<u8>(), 0..40),
            keep in 0u8..16,
        ) {
            let k = KeepFields {
                priority: keep & 1 != 0,
                version: keep & 2 != 0,
                timestamp: keep & 4 != 0,
                hostname: keep & 8 != 0,
            };
            let mut msg = format!("<{pri}>{head}{host} ").into_bytes();
            msg.extend_from_slice(&rest);
            let e = parser(k).parse(&msg, false);
            prop_assert_eq!(e.headers.get(STATUS), None);
            let facility = (pri / 8).to_string();
            prop_assert_eq!(e.headers.get(FACILITY), Some(facility.as_str()));
        }

        /// The hand-written matcher agrees with Flume's regexes, backtracking included.
        #[test]
        fn matches_like_flumes_regexes(
            pri in piece(&["<13>", "<0>", "<191>", "<007>"]),
            version in piece(&["", "1", "1 ", " ", "12 ", "\t", "2"]),
            stamp in piece(&[
                "2012-04-13T11:11:11", "2012-04-13T11:11:11Z", "2012-04-13T11:11:11.5+08:00",
                "2012-04-13T11:11:11.1234567Z", "2012-04-13T11:11:11+0800", "2012-04-13T11:11:11.",
                "012-04-13T11:11:11Z", "-", "--", "Oct 11 22:14:15", "Oct  1 22:14:15",
                "Oct   1 22:14:15", "Oct 111 22:14:15", "oct 11 22:14:15", "Foo 30 10:00:00",
                "Oct 11 22:14", "",
            ]),
            sep1 in piece(&[" ", "\t", "", "  ", "\n"]),
            host in piece(&["h", "-", "a.b@c-d", "_x", "-x", "h:", "", "h\u{e9}", "1.2.3.4"]),
            sep2 in piece(&[" ", "", "  ", "\r"]),
            rest in "[ -~]{0,12}",
        ) {
            let msg = format!("{pri}{version}{stamp}{sep1}{host}{sep2}{rest}");
            let e = parser(KeepFields::NONE).parse(msg.as_bytes(), false);
            let [r5424, r3164] = flume_regexes();
            // The oracle sees what we match: the message without its line end.
            let msg = String::from_utf8_lossy(strip_line_end(msg.as_bytes())).into_owned();
            let caps = r5424
                .captures(msg.as_bytes())
                .map(|c| (c, true))
                .or_else(|| r3164.captures(msg.as_bytes()).map(|c| (c, false)));
            let text = |m: Option<regex::bytes::Match<'_>>| {
                m.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            };
            let header = |k: &str| e.headers.get(k).map(str::to_owned);
            match caps {
                None => {
                    prop_assert_eq!(header("priority"), None, "{:?}", msg);
                    prop_assert_eq!(&e.body[..], msg.as_bytes());
                }
                Some((c, is_5424)) => {
                    prop_assert_eq!(header("priority"), text(c.get(1)), "{:?}", msg);
                    let version = text(c.get(2)).filter(|v| !v.is_empty());
                    prop_assert_eq!(header("version"), version, "{:?}", msg);
                    prop_assert_eq!(header("host"), text(c.get(4)), "{:?}", msg);
                    if is_5424 {
                        let stamp = c.get(3).is_some();
                        prop_assert_eq!(header("timestamp").is_some(), stamp, "{:?}", msg);
                    }
                    let rest = c.get(5).map_or(&b""[..], |m| m.as_bytes());
                    let want = if rest.is_empty() { msg.as_bytes() } else { rest };
                    prop_assert_eq!(&e.body[..], want, "{:?}", msg);
                }
            }
        }
    }
}
