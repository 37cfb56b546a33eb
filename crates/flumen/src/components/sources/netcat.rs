//! The `netcat` source (Flume's `NetcatSource`): a TCP listener that turns every line of
//! input into one event, like `nc -k -l`.
//!
//! Each accepted connection runs in its own task (the shared accept loop in
//! [`super::tcp_listener`]), so that shutdown waits for every connection to finish the batch in
//! hand.
//!
//! The data path is built for throughput: the socket is read in 64 KiB+ chunks into a
//! `BytesMut`, the complete lines of a read are split off and frozen once, and every event body
//! is a slice of that frozen chunk (a reference count, no copy); newlines are found with
//! `memchr`. Nothing is logged per line.
//!
//! Invariants:
//! - a line is `\n`-terminated; one trailing `\r` is stripped from the body;
//! - a line whose length including its newline exceeds `max-line-length` bytes never becomes
//!   an event: it is counted in `EventReadFail`, answered `FAILED: ...` when acks are on, and
//!   skipped up to its newline;
//! - with `ack-every-event = true` the complete lines of one read form one batch (cut to the
//!   channels' `transactionCapacity`); the client gets `OK` for each accepted event and
//!   `FAILED: <reason>` for each event of a refused batch, in line order, so nothing accepted is
//!   lost and nothing refused goes unreported;
//! - with `ack-every-event = false` a refused batch is retried until accepted, and the
//!   connection is not read meanwhile, so a full channel pushes back on the client through TCP
//!   flow control instead of dropping lines.
//!
//! Differences from Flume (documented in `docs/compat.md`): Flume closes the connection after
//! an over-long line (and writes `FAILED` even with acks off); flumen skips that line and goes
//! on. Flume drops a last line that has no newline when the client closes; flumen delivers it.
//! Flume keeps a trailing `\r` in the body; flumen strips it. Lengths are counted in bytes, not
//! UTF-16 chars, and bodies are the received bytes as is (Flume re-encodes them, replacing
//! invalid UTF-8).

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Source, SourceContext, SourceError};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::tcp_listener::{self, ServeOptions, Stream};
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `netcat` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "netcat",
    classes: &["org.apache.flume.source.NetcatSource"],
    description: "Listens on a TCP port; one line of text = one event",
    batch_size_key: None,
    build,
};

/// Size of each socket read buffer allocation. Large reads are what make one connection fast.
const READ_CAPACITY: usize = 128 * 1024;
/// Below this much free room, the read buffer gets a fresh allocation before the next read.
const MIN_SPARE: usize = 16 * 1024;
/// Upper bound on the capacity reserved up front for a batch's event vector.
const BATCH_PREALLOC: usize = 1024;

/// Configuration of the `netcat` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NetcatSourceConfig {
    /// Host name or IP address to listen on. Flume key: `bind`. Required.
    pub bind: Option<String>,
    /// TCP port to listen on. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Longest accepted line in bytes, newline included. Flume key: `max-line-length`.
    /// Default: 512.
    #[serde(rename = "max-line-length")]
    pub max_line_length: usize,
    /// Answer `OK` (or `FAILED: ...`) for every event. Flume key: `ack-every-event`.
    /// Default: true.
    #[serde(rename = "ack-every-event")]
    pub ack_every_event: bool,
    /// Charset of the input; only UTF-8 is supported (bodies are the bytes received). Flume
    /// key: `encoding`. Default: `utf-8`.
    pub encoding: String,
}

impl Default for NetcatSourceConfig {
    fn default() -> Self {
        Self {
            bind: None,
            port: None,
            max_line_length: 512,
            ack_every_event: true,
            encoding: "utf-8".into(),
        }
    }
}

/// Whether `charset` names UTF-8 the way Java's `Charset.forName` accepts it.
pub(crate) fn is_utf8(charset: &str) -> bool {
    let c = charset.trim();
    c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8")
}

impl NetcatSourceConfig {
    /// Required keys and range checks; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.bind.as_deref().is_none_or(|b| b.trim().is_empty()) {
            errors.push(props.error("bind", "missing required property `bind`"));
        }
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if self.max_line_length == 0 {
            errors.push(props.error("max-line-length", "`max-line-length` must be at least 1"));
        }
        if !is_utf8(&self.encoding) {
            errors.push(props.error(
                "encoding",
                format!(
                    "unsupported encoding `{}`: only UTF-8 is supported",
                    self.encoding
                ),
            ));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    build_with(props, NetcatSourceConfig::validate, |c| {
        Ok(Box::new(NetcatSource {
            bind: c.bind.unwrap_or_default().trim().to_string(),
            port: c.port.unwrap_or_default(),
            settings: LineSettings {
                max_line_length: c.max_line_length,
                ack_every_event: c.ack_every_event,
            },
        }) as Box<dyn Source>)
    })
}

/// What every connection task needs to know about line handling.
#[derive(Debug, Clone, Copy)]
struct LineSettings {
    max_line_length: usize,
    ack_every_event: bool,
}

/// The netcat TCP source.
#[derive(Debug)]
pub struct NetcatSource {
    bind: String,
    port: u16,
    settings: LineSettings,
}

#[async_trait::async_trait]
impl Source for NetcatSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let listener = tcp_listener::bind(&self.bind, self.port).await?;
        self.serve(listener, cx).await
    }
}

impl NetcatSource {
    /// Accepts connections on `listener` until shutdown, then waits for every connection task.
    async fn serve(
        self: Box<Self>,
        listener: TcpListener,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(source = %cx.name, %addr, "Netcat source listening.");
        }
        let settings = self.settings;
        let options = ServeOptions {
            tls: None,
            // Replies are small and awaited by the client: do not let Nagle hold them back.
            nodelay: settings.ack_every_event,
        };
        let conn_cx = cx.clone();
        tcp_listener::serve(vec![listener], &cx, options, move |a| {
            Connection::new(a.stream, a.peer, conn_cx.clone(), settings).run()
        })
        .await;
        Ok(())
    }
}

/// Why a connection stops early: shutdown while blocked, or the client went away.
struct Stop;

/// One client connection: reads lines, delivers them, answers when acks are on.
struct Connection {
    stream: Stream,
    peer: SocketAddr,
    cx: SourceContext,
    settings: LineSettings,
    /// Largest batch the channels take in one transaction.
    max_batch: usize,
    /// Events parsed and not yet delivered, in line order.
    pending: Vec<Event>,
    /// Replies not yet written, in line order.
    replies: Vec<u8>,
    /// Inside an over-long line: drop bytes up to the next newline.
    discarding: bool,
    /// The channel refused the previous batch (acks on): log the outage once, not per batch.
    failing: bool,
}

impl Connection {
    fn new(stream: Stream, peer: SocketAddr, cx: SourceContext, settings: LineSettings) -> Self {
        let max_batch = cx.processor.max_batch();
        Self {
            stream,
            peer,
            cx,
            settings,
            max_batch,
            pending: Vec::with_capacity(max_batch.min(BATCH_PREALLOC)),
            replies: Vec::new(),
            discarding: false,
            failing: false,
        }
    }

    async fn run(mut self) {
        tracing::debug!(source = %self.cx.name, peer = %self.peer, "Connection opened.");
        let mut buf = BytesMut::with_capacity(READ_CAPACITY);
        loop {
            if buf.capacity() - buf.len() < MIN_SPARE {
                buf.reserve(READ_CAPACITY);
            }
            let read = tokio::select! {
                biased;
                () = self.cx.shutdown.cancelled() => break,
                read = self.stream.read_buf(&mut buf) => read,
            };
            let eof = match read {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::debug!(source = %self.cx.name, peer = %self.peer, %error, "Connection read failed.");
                    break;
                }
            };
            if self.process(&mut buf, eof).await.is_err() || eof {
                break;
            }
        }
        tracing::debug!(source = %self.cx.name, peer = %self.peer, "Connection closed.");
    }

    /// Turns the complete lines in `buf` into delivered events and written replies; at `eof`
    /// the unterminated rest is a last line too. Leaves an incomplete line in `buf`.
    async fn process(&mut self, buf: &mut BytesMut, eof: bool) -> Result<(), Stop> {
        if self.discarding {
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    buf.advance(i + 1);
                    self.discarding = false;
                }
                None => {
                    buf.clear();
                    return Ok(());
                }
            }
        }
        let max = self.settings.max_line_length;
        if let Some(last) = memchr::memrchr(b'\n', buf) {
            // One freeze per read; every body below is a slice of this chunk.
            let chunk = buf.split_to(last + 1).freeze();
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &chunk) {
                if nl - start >= max {
                    self.too_long().await?;
                } else {
                    self.pending.push(Event::new(line_body(&chunk, start, nl)));
                    if self.pending.len() >= self.max_batch {
                        self.deliver_pending().await?;
                    }
                }
                start = nl + 1;
            }
        }
        if eof {
            if !buf.is_empty() {
                let rest = buf.split().freeze();
                if rest.len() >= max {
                    self.too_long().await?;
                } else {
                    let end = rest.len();
                    self.pending.push(Event::new(line_body(&rest, 0, end)));
                }
            }
        } else if buf.len() >= max {
            // Even with its newline still to come this line is too long: fail it now and
            // skip the rest of it as it arrives.
            self.too_long().await?;
            buf.clear();
            self.discarding = true;
        }
        self.deliver_pending().await?;
        self.write_replies().await
    }

    /// Counts and answers one over-long line, after the lines before it (reply order).
    async fn too_long(&mut self) -> Result<(), Stop> {
        self.cx.counters.event_read_fail.inc();
        if self.settings.ack_every_event {
            self.deliver_pending().await?;
            self.replies.extend_from_slice(
                format!(
                    "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                    self.settings.max_line_length
                )
                .as_bytes(),
            );
        }
        Ok(())
    }

    /// Delivers the pending events as one batch. With acks, queues one reply per event; without,
    /// retries until accepted (the socket is not read meanwhile: back-pressure).
    async fn deliver_pending(&mut self) -> Result<(), Stop> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let cap = self.pending.len();
        let events = std::mem::replace(&mut self.pending, Vec::with_capacity(cap));
        if !self.settings.ack_every_event {
            return self.cx.deliver_retrying(events).await.map_err(|_| Stop);
        }
        match self.cx.deliver(events).await {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(source = %self.cx.name, peer = %self.peer, "Channel accepts events again.");
                }
                for _ in 0..cap {
                    self.replies.extend_from_slice(b"OK\n");
                }
            }
            Err(error) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(source = %self.cx.name, peer = %self.peer, %error, "Channel refused a batch; the client is told FAILED for each event.");
                }
                // One line per event is the protocol: a reason spanning lines (a storage
                // error with its cause) would be read as answers to the following events.
                let reason = error.to_string().replace(['\r', '\n'], " ");
                let reply = format!("FAILED: {reason}\n");
                for _ in 0..cap {
                    self.replies.extend_from_slice(reply.as_bytes());
                }
            }
        }
        Ok(())
    }

    async fn write_replies(&mut self) -> Result<(), Stop> {
        if self.replies.is_empty() {
            return Ok(());
        }
        // Write first: the answers for accepted events must reach the client even when
        // shutdown has just fired (else it would resend them); only a client that does not
        // read its answers is abandoned at shutdown.
        let written = tokio::select! {
            biased;
            written = self.stream.write_all(&self.replies) => written,
            () = self.cx.shutdown.cancelled() => return Err(Stop),
        };
        self.replies.clear();
        written.map_err(|_| Stop)
    }
}

/// The body of the line `chunk[start..nl]`, without one trailing `\r`.
#[inline]
fn line_body(chunk: &Bytes, start: usize, nl: usize) -> Bytes {
    let end = if nl > start && chunk[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    chunk.slice(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tokio::task::JoinHandle;

    const TOO_LONG_10: &str =
        "FAILED: Event exceeds the maximum length (10 chars, including newline)\n";

    fn settings(max_line_length: usize, ack_every_event: bool) -> LineSettings {
        LineSettings {
            max_line_length,
            ack_every_event,
        }
    }

    async fn start(
        settings: LineSettings,
        ch: Arc<dyn flumen_core::Channel>,
    ) -> (
        SocketAddr,
        SourceContext,
        JoinHandle<Result<(), SourceError>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cx = context(ch);
        let src = Box::new(NetcatSource {
            bind: "127.0.0.1".into(),
            port: addr.port(),
            settings,
        });
        (addr, cx.clone(), tokio::spawn(src.serve(listener, cx)))
    }

    /// Sends `input`, half-closes, and returns everything the source answered.
    async fn exchange(addr: SocketAddr, input: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(input).await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sources.r1.", "source r1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    fn build_props(pairs: &[(&str, &str)]) -> BuildResult<Box<dyn Source>> {
        let cx = SourceBuildContext {
            name: "r1".into(),
            counters: Default::default(),
        };
        (DESCRIPTOR.build)(&props(pairs), &cx)
    }

    #[test]
    fn config_required_keys_and_encoding() {
        let errs = build_props(&[]).err().unwrap();
        let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.contains(&"missing required property `bind`"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"missing required property `port`"),
            "{msgs:?}"
        );
        let errs = build_props(&[
            ("bind", "0.0.0.0"),
            ("port", "1"),
            ("encoding", "ISO-8859-1"),
        ])
        .err();
        assert!(errs.unwrap()[0].message.contains("only UTF-8"));
        assert!(build_props(&[("bind", "0.0.0.0"), ("port", "1"), ("encoding", "UTF-8")]).is_ok());
        let (c, w) = props(&[]).deserialize::<NetcatSourceConfig>().unwrap();
        assert_eq!(c, NetcatSourceConfig::default());
        assert!(w.is_empty());
        let table = crate::components::sources::SOURCES;
        assert_eq!(
            crate::components::lookup(table, "NETCAT")
                .map(|d| d.name)
                .ok(),
            Some("netcat")
        );
    }

    #[tokio::test]
    async fn ack_on_replies_ok_per_line() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(settings(512, true), ch.clone()).await;
        assert_eq!(exchange(addr, b"hello\r\nworld\n\n").await, "OK\nOK\nOK\n");
        assert_eq!(bodies(&ch.drain()), ["hello", "world", ""]);
        assert_eq!(cx.counters.event_received.get(), 3);
        assert_eq!(cx.counters.event_accepted.get(), 3);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn too_long_lines_are_failed_and_skipped() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(settings(10, true), ch.clone()).await;
        let mut input = b"123456789\n0123456789abc\nx\n".to_vec();
        input.extend(std::iter::repeat_n(b'z', 300_000)); // spans several reads
        input.extend(b"\ny\nlast");
        let replies = exchange(addr, &input).await;
        assert_eq!(
            replies,
            format!("OK\n{TOO_LONG_10}OK\n{TOO_LONG_10}OK\nOK\n")
        );
        assert_eq!(bodies(&ch.drain()), ["123456789", "x", "y", "last"]);
        assert_eq!(cx.counters.event_read_fail.get(), 2);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn refused_batch_is_answered_failed_per_event() {
        let ch = TestChannel::new(1000, 100);
        ch.set_refusing(true);
        let (addr, cx, task) = start(settings(512, true), ch.clone()).await;
        let replies = exchange(addr, b"a\nb\n").await;
        let lines: Vec<&str> = replies.lines().collect();
        assert_eq!(lines.len(), 2, "{replies}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("FAILED: channel `c1` is full")),
            "{replies}"
        );
        assert_eq!(cx.counters.event_accepted.get(), 0);
        assert_eq!(cx.counters.channel_write_fail.get(), 1);
        assert!(ch.drain().is_empty());
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn full_memory_channel_is_reported_to_the_client() {
        use crate::components::channels::memory::{MemoryChannel, MemoryChannelConfig};
        let config = MemoryChannelConfig {
            capacity: 2,
            transaction_capacity: 2,
            keep_alive: 0,
            ..Default::default()
        };
        let mem = Arc::new(MemoryChannel::new("c1", config, Arc::default()));
        let (addr, cx, task) = start(settings(512, true), mem.clone()).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut reply = [0u8; 6];
        s.write_all(b"a\nb\n").await.unwrap();
        s.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"OK\nOK\n");
        let replies = exchange(addr, b"c\n").await;
        assert!(
            replies.starts_with("FAILED: ") && replies.ends_with('\n'),
            "{replies}"
        );
        assert_eq!(replies.lines().count(), 1, "{replies}");
        assert_eq!(flumen_core::Channel::len(&*mem), 2);
        assert_eq!(cx.counters.event_accepted.get(), 2);
        assert_eq!(cx.counters.channel_write_fail.get(), 1);
        drop(s);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn ack_off_many_lines_in_order_within_transaction_capacity() {
        const N: usize = 200_000;
        let ch = TestChannel::new(usize::MAX, 100);
        let (addr, cx, task) = start(settings(512, false), ch.clone()).await;
        let client = tokio::spawn(async move {
            let mut data = Vec::new();
            for i in 0..N - 1 {
                data.extend(format!("line-{i:06}\n").as_bytes());
            }
            data.extend(format!("line-{:06}", N - 1).as_bytes()); // no final newline
            exchange(addr, &data).await
        });
        let events = ch.take_at_least(N).await;
        assert_eq!(client.await.unwrap(), "", "no replies with acks off");
        assert_eq!(events.len(), N);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.body, format!("line-{i:06}").as_bytes());
        }
        assert_eq!(cx.counters.event_accepted.get(), N as u64);
        assert_eq!(
            cx.counters.channel_write_fail.get(),
            0,
            "a batch exceeded 100 events"
        );
        assert!(cx.counters.append_batch_accepted.get() >= (N / 100) as u64);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn ack_off_full_channel_pushes_back_and_loses_nothing() {
        let ch = TestChannel::new(1000, 100);
        ch.set_refusing(true);
        let (addr, cx, task) = start(settings(512, false), ch.clone()).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"a\nb\n").await.unwrap();
        let counters = cx.counters.clone();
        wait_until("a refused batch", || counters.channel_write_fail.get() >= 1).await;
        ch.set_refusing(false);
        assert_eq!(bodies(&ch.take_at_least(2).await), ["a", "b"]);
        drop(s);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn open_connections_are_counted_and_shutdown_closes_them() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(settings(512, true), ch.clone()).await;
        let c = cx.counters.clone();
        let mut a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        wait_until("two open connections", || c.open_connection.get() == 2).await;
        drop(b);
        wait_until("one open connection", || c.open_connection.get() == 1).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(c.open_connection.get(), 0);
        // The source closed the idle connection: the client sees end of stream.
        let mut rest = Vec::new();
        assert_eq!(a.read_to_end(&mut rest).await.unwrap(), 0);
        assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    }

    #[tokio::test]
    async fn run_binds_the_configured_address() {
        let (src, _) = build_props(&[("bind", "192.0.2.1"), ("port", "0")]).unwrap();
        let ch = TestChannel::new(10, 10);
        match src.run(context(ch)).await {
            Err(SourceError::Bind { addr, .. }) => assert_eq!(addr, "192.0.2.1:0"),
            other => panic!("expected a bind error, got {other:?}"),
        }
    }

    /// Throughput check: `cargo test --release -p flumen --lib netcat::tests::throughput --
    /// --ignored --nocapture`. One connection, acks off, 200-byte lines.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn throughput() {
        const N: usize = 5_000_000;
        let ch = TestChannel::new(usize::MAX, 1000);
        let (addr, cx, task) = start(settings(512, false), ch.clone()).await;
        let line = format!("{}\n", "x".repeat(199));
        let chunk: Vec<u8> = line.as_bytes().repeat(5000);
        let start = std::time::Instant::now();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for _ in 0..N / 5000 {
                s.write_all(&chunk).await.unwrap();
            }
        });
        let mut got = 0;
        while got < N {
            got += ch.take_at_least(1).await.len();
        }
        let secs = start.elapsed().as_secs_f64();
        client.await.unwrap();
        println!(
            "{N} lines in {secs:.3} s: {:.2} M lines/s",
            N as f64 / secs / 1e6
        );
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    /// As [`throughput`], into the real memory channel drained by a consumer task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark"]
    async fn throughput_memory_channel() {
        use crate::components::channels::memory::{MemoryChannel, MemoryChannelConfig};
        use flumen_core::Channel;
        const N: usize = 5_000_000;
        let config = MemoryChannelConfig {
            capacity: 100_000,
            transaction_capacity: 1000,
            ..Default::default()
        };
        let mem = Arc::new(MemoryChannel::new("c1", config, Arc::default()));
        let (addr, cx, task) = start(settings(512, false), mem.clone()).await;
        let chunk: Vec<u8> = format!("{}\n", "x".repeat(199)).as_bytes().repeat(5000);
        let start = std::time::Instant::now();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for _ in 0..N / 5000 {
                s.write_all(&chunk).await.unwrap();
            }
        });
        let mut got = 0;
        while got < N {
            let mut tx = mem.begin();
            let n = tx.take(1000).await.unwrap();
            tx.commit().await.unwrap();
            if n == 0 {
                mem.readable().await;
            }
            got += n;
        }
        let secs = start.elapsed().as_secs_f64();
        client.await.unwrap();
        println!(
            "{N} lines in {secs:.3} s: {:.2} M lines/s",
            N as f64 / secs / 1e6
        );
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
