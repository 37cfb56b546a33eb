//! The `logger` sink: logs every event at INFO, for debugging and demos.
//!
//! Each event becomes one `tracing` INFO record with target `flumen::sink::logger`, formatted as
//! Flume's `EventHelper.dumpEvent` does (Flume logs `"Event: " + dumpEvent(event)`):
//!
//! ```text
//! Event: { headers:{host=web1, ts=1} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }
//! ```
//!
//! The body part is the Apache commons-io `HexDump.dump` of at most `maxBytesToLog` body bytes:
//! - rows of 16 bytes; each row is an 8-digit upper-case hex offset, a space, then 16 slots of
//!   `XX ` (upper-case hex and a space; slots past the end of the data are three spaces), then
//!   the bytes as ASCII, where bytes outside `0x20..=0x7E` print as `.`;
//! - the offset of the first row (`00000000`) is removed, so one-row dumps read
//!   `body: 48 65 ...`; further rows start on a new line with their offset (`00000010 ...`);
//! - the final line break is removed. An empty body (or `maxBytesToLog = 0`) prints `body: }`.
//!
//! Headers print as Java's `Map.toString()`, `{k1=v1, k2=v2}`, in key order.
//!
//! Flume's logger sink takes one event per transaction and has no `batchSize`; flumen takes
//! batches of `batchSize` (default 100), which changes nothing in the output but the speed.
//! The formatting is skipped entirely when INFO is disabled for the target (Flume checks
//! `isInfoEnabled` the same way).

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink};
use serde::Deserialize;

use super::push_java_map;
use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "logger",
    classes: &["org.apache.flume.sink.LoggerSink"],
    description: "Logs every event at INFO (headers and a hex dump of the body)",
    batch_size_key: Some("batchSize"),
    build,
};

/// The `tracing` target of the event records, so operators can route or filter them.
pub const TARGET: &str = "flumen::sink::logger";

/// Bytes per hex-dump row, as commons-io `HexDump`.
const ROW: usize = 16;

/// Configuration of the `logger` sink.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LoggerSinkConfig {
    /// Body bytes shown per event. Flume key: `maxBytesToLog`. Default: 16.
    #[serde(rename = "maxBytesToLog")]
    pub max_bytes_to_log: usize,
    /// Events per transaction. Flume key: `batchSize` (flumen only; Flume takes one event per
    /// transaction). Default: 100.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
}

impl Default for LoggerSinkConfig {
    fn default() -> Self {
        Self {
            max_bytes_to_log: 16,
            batch_size: 100,
        }
    }
}

impl LoggerSinkConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "batchSize must be at least 1"));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    build_with(
        props,
        LoggerSinkConfig::validate,
        |config: LoggerSinkConfig| {
            let sink: Box<dyn Sink> = Box::new(LoggerSink::new(config));
            Ok(sink)
        },
    )
}

/// The `logger` sink. Called by a single task (its driver).
#[derive(Debug)]
pub struct LoggerSink {
    config: LoggerSinkConfig,
    /// Reused formatting buffer, so logging a batch does not allocate per event.
    line: Vec<u8>,
}

impl LoggerSink {
    /// A logger sink with `config`.
    pub fn new(config: LoggerSinkConfig) -> Self {
        Self {
            config,
            line: Vec::with_capacity(256),
        }
    }
}

#[async_trait]
impl Sink for LoggerSink {
    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return Ok(());
        }
        for event in batch {
            self.line.clear();
            dump_event(&mut self.line, event, self.config.max_bytes_to_log);
            // Every byte pushed is ASCII or comes from a `String`, so this never replaces.
            let line = String::from_utf8_lossy(&self.line);
            tracing::info!(target: TARGET, "{line}");
        }
        Ok(())
    }
}

/// Appends `Event: { headers:{..} body: <hex dump> }` for `event` to `out` (see the module doc).
pub fn dump_event(out: &mut Vec<u8>, event: &Event, max_bytes: usize) {
    out.extend_from_slice(b"Event: { headers:");
    push_java_map(out, &event.headers);
    out.extend_from_slice(b" body:");
    let data = &event.body[..event.body.len().min(max_bytes)];
    for (row, chunk) in data.chunks(ROW).enumerate() {
        if row > 0 {
            // Flume strips only the first row's offset and the trailing line break.
            out.push(b'\n');
            push_hex(out, (row * ROW) as u64, 8);
        }
        out.push(b' ');
        for slot in 0..ROW {
            match chunk.get(slot) {
                Some(&b) => push_hex(out, u64::from(b), 2),
                None => out.extend_from_slice(b"  "),
            }
            out.push(b' ');
        }
        out.extend(
            chunk
                .iter()
                .map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'.' }),
        );
    }
    out.extend_from_slice(b" }");
}

/// Appends the low `digits` hex digits of `v`, upper case, zero padded.
fn push_hex(out: &mut Vec<u8>, v: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use flumen_core::{Headers, SinkCounters};

    use super::*;

    fn dump(event: &Event, max: usize) -> String {
        let mut out = Vec::new();
        dump_event(&mut out, event, max);
        String::from_utf8(out).unwrap()
    }

    fn build_sink(keys: &[(&str, &str)]) -> Result<Box<dyn Sink>, Vec<Diagnostic>> {
        let mut props = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in keys.iter().enumerate() {
            props.insert(*k, *v, i as u32 + 1);
        }
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Arc::new(SinkCounters::default()),
        };
        (DESCRIPTOR.build)(&props, &cx).map(|(s, _)| s)
    }

    #[test]
    fn short_body_matches_flume() {
        // The line from Flume's user guide, for a netcat "Hello world!\r".
        let e = Event::new(&b"Hello world!\r"[..]);
        assert_eq!(
            dump(&e, 16),
            "Event: { headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }"
        );
    }

    #[test]
    fn headers_and_exactly_one_row() {
        let h: Headers = [("host", "web1"), ("a", "1")].into_iter().collect();
        let e = Event::with_headers(h, &b"0123456789abcdef"[..]);
        assert_eq!(
            dump(&e, 16),
            "Event: { headers:{a=1, host=web1} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 \
             0123456789abcdef }"
        );
    }

    #[test]
    fn long_body_is_cut_at_max_bytes() {
        let e = Event::new(vec![b'x'; 100]);
        let s = dump(&e, 16);
        assert!(s.ends_with(" xxxxxxxxxxxxxxxx }"), "{s}");
        assert!(!s.contains('\n'));
        // Shorter limit: padding for the missing slots.
        assert_eq!(
            dump(&e, 2),
            format!(
                "Event: {{ headers:{{}} body: 78 78 {}xx }}",
                "   ".repeat(14)
            )
        );
    }

    #[test]
    fn several_rows_carry_offsets() {
        let body: Vec<u8> = (0u8..40).collect();
        let s = dump(&Event::new(body), 40);
        let lines: Vec<&str> = s.split('\n').collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert!(
            lines[0].starts_with("Event: { headers:{} body: 00 01 02"),
            "{s}"
        );
        assert!(lines[1].starts_with("00000010 10 11 12"), "{s}");
        assert_eq!(
            lines[2],
            format!(
                "00000020 20 21 22 23 24 25 26 27 {} !\"#$%&' }}",
                "   ".repeat(8)
            )
        );
    }

    #[test]
    fn binary_and_empty_bodies() {
        let e = Event::new(vec![0x00, 0x7f, 0x80, 0xff, b'A']);
        assert_eq!(
            dump(&e, 16),
            format!(
                "Event: {{ headers:{{}} body: 00 7F 80 FF 41 {}....A }}",
                "   ".repeat(11)
            )
        );
        assert_eq!(
            dump(&Event::new(&b""[..]), 16),
            "Event: { headers:{} body: }"
        );
        assert_eq!(
            dump(&Event::new(&b"abc"[..]), 0),
            "Event: { headers:{} body: }"
        );
    }

    #[test]
    fn config_defaults_and_errors() {
        let s = build_sink(&[]).unwrap();
        assert_eq!(s.batch_size(), 100);
        let s = build_sink(&[("batchSize", "7"), ("maxBytesToLog", "4")]).unwrap();
        assert_eq!(s.batch_size(), 7);
        assert!(build_sink(&[("batchSize", "0")]).is_err());
        assert!(build_sink(&[("maxBytesToLog", "-1")]).is_err());
    }

    /// A `tracing` writer that collects output for assertions.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn deliver_logs_each_event_at_info() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut sink = build_sink(&[("maxBytesToLog", "5")]).unwrap();
        sink.deliver(&[Event::new(&b"Hello, world"[..]), Event::new(&b"second"[..])])
            .await
            .unwrap();
        let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0]
                .contains("INFO flumen::sink::logger: Event: { headers:{} body: 48 65 6C 6C 6F")
        );
        assert!(lines[0].ends_with("Hello }"), "{out}");
        assert!(lines[1].ends_with("secon }"), "{out}");
    }
}
