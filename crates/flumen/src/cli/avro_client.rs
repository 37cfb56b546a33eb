//! `flumen avro-client`: sends the lines of a file (or of standard input) as events to an Avro
//! source, like `flume-ng avro-client`, through [`flumen_rpc::client::RpcClient`].
//!
//! Same options and line rules as Flume's `AvroCLIClient` (one event per line; `\n`, `\r\n`
//! and `\r` end a line and are stripped; `-R` headers go on every event; `-P` takes Flume's RPC
//! client properties, so failover and load-balancing clients work too). Differences, on
//! purpose:
//! - the exit status says whether delivery worked (Flume's exits 0 even when nothing was
//!   delivered): 0 = every line acknowledged, 1 = delivery failed (the message says how many
//!   lines were acknowledged before the failure, so a resend can start there), 2 = usage;
//! - batches are `--batch-size` events (default 100, Flume's RPC client default; Flume's CLI
//!   uses 5 with `-H/-p`), which only changes speed;
//! - bodies are the line's bytes as read (Flume decodes and re-encodes UTF-8, replacing bytes
//!   that are not UTF-8);
//! - on a terminal a progress bar shows lines sent and the rate.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Args;
use flumen_core::{Event, Headers};
use flumen_rpc::client::{ClientType, RpcClient, RpcClientConfig};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Exit status when events could not be delivered.
const EXIT_DELIVERY: u8 = 1;
/// Exit status for bad options or unreadable inputs.
const EXIT_USAGE: u8 = 2;

/// `flumen avro-client` options (Flume's spellings).
#[derive(Debug, Args)]
pub struct AvroClientArgs {
    /// Host of the avro source.
    #[arg(short = 'H', long = "host", requires = "port")]
    pub host: Option<String>,
    /// Port of the avro source.
    #[arg(short = 'p', long = "port", requires = "host")]
    pub port: Option<u16>,
    /// Flume RPC client properties (`client.type`, `hosts`, `hosts.<h>`, `batch-size`...),
    /// instead of `-H`/`-p`.
    #[arg(short = 'P', long = "rpcProps", conflicts_with_all = ["host", "port"])]
    pub rpc_props: Option<PathBuf>,
    /// File to send, one event per line; standard input without it.
    #[arg(short = 'F', long = "filename")]
    pub filename: Option<PathBuf>,
    /// Java properties file whose pairs become headers of every event.
    #[arg(short = 'R', long = "headerFile")]
    pub header_file: Option<PathBuf>,
    /// Events per appendBatch call (default: `batch-size` from `-P`, else 100).
    #[arg(long = "batch-size", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long = "log-level", default_value = "warn")]
    pub log_level: String,
}

/// Runs `flumen avro-client`.
pub fn run(args: AvroClientArgs) -> ExitCode {
    super::init_logging(&args.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flumen avro-client: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    runtime.block_on(send(args))
}

/// Reads a Java properties file into a map, reporting syntax problems with file and line.
fn read_properties(path: &PathBuf, what: &str) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let (entries, diags) = flumen_config::parse_properties(&text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(format!("{}: {d}", path.display()));
    }
    Ok(entries
        .into_iter()
        .map(|e| (e.key, e.value.trim_end().to_owned()))
        .collect())
}

fn client_config(args: &AvroClientArgs) -> Result<RpcClientConfig, String> {
    let mut config = match (&args.rpc_props, &args.host, args.port) {
        (Some(path), _, _) => {
            let props = read_properties(path, "RPC properties file")?;
            let (config, warnings) = RpcClientConfig::from_properties(&props)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for w in warnings {
                eprintln!("flumen avro-client: warning: {}: {w}", path.display());
            }
            config
        }
        (None, Some(host), Some(port)) => {
            let mut c = RpcClientConfig::single(ClientType::Default, host, port);
            c.batch_size = 100;
            c
        }
        _ => return Err("give the source's address with -H HOST -p PORT, or -P FILE".into()),
    };
    if let Some(n) = args.batch_size {
        config.batch_size = n as usize;
    }
    Ok(config)
}

async fn send(args: AvroClientArgs) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("flumen avro-client: {msg}");
        ExitCode::from(EXIT_USAGE)
    };
    let config = match client_config(&args) {
        Ok(c) => c,
        Err(msg) => return usage(msg),
    };
    let mut headers = Headers::new();
    if let Some(path) = &args.header_file {
        match read_properties(path, "header file") {
            Ok(map) => {
                for (k, v) in map {
                    headers.insert(k, v);
                }
            }
            Err(msg) => return usage(msg),
        }
    }
    let (input, total): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = match &args.filename {
        Some(path) => match tokio::fs::File::open(path).await {
            Ok(f) => {
                let len = f.metadata().await.ok().map(|m| m.len());
                (Box::new(f), len)
            }
            Err(e) => return usage(format!("cannot open {}: {e}", path.display())),
        },
        None => (Box::new(tokio::io::stdin()), None),
    };
    let source = args
        .filename
        .as_ref()
        .map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
    let progress = progress_bar(!args.no_progress && std::io::stderr().is_terminal(), total);

    let batch_size = config.batch_size.max(1);
    let mut client = RpcClient::new(config);
    let mut lines = LineReader::new(input);
    let mut batch: Vec<Event> = Vec::with_capacity(batch_size);
    let mut sent: u64 = 0;
    let mut bytes_read: u64 = 0;
    let started = Instant::now();
    loop {
        batch.clear();
        let mut eof = false;
        while batch.len() < batch_size {
            match lines.next_line().await {
                Ok(Some((line, consumed))) => {
                    bytes_read += consumed;
                    batch.push(Event::with_headers(headers.clone(), line));
                }
                Ok(None) => {
                    eof = true;
                    break;
                }
                Err(e) => {
                    progress.abandon();
                    eprintln!(
                        "flumen avro-client: cannot read {source} after line {}: {e}",
                        sent + batch.len() as u64
                    );
                    client.close().await;
                    return ExitCode::from(EXIT_DELIVERY);
                }
            }
        }
        if !batch.is_empty() {
            if let Err(e) = client.append_batch(&batch).await {
                progress.abandon();
                eprintln!("flumen avro-client: delivery failed: {e}");
                if sent == 0 {
                    eprintln!("flumen avro-client: no event from {source} was acknowledged");
                } else {
                    eprintln!(
                        "flumen avro-client: the first {sent} events from {source} (lines 1 to \
                         {sent}) were acknowledged; line {} and later were not",
                        sent + 1
                    );
                }
                client.close().await;
                return ExitCode::from(EXIT_DELIVERY);
            }
            sent += batch.len() as u64;
            progress.set_position(if total.is_some() { bytes_read } else { sent });
            progress.set_message(format!("{sent} events"));
        }
        if eof {
            break;
        }
    }
    client.close().await;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "flumen avro-client: sent {sent} events from {source} in {secs:.2} s ({:.0} events/s)",
        if secs > 0.0 { sent as f64 / secs } else { 0.0 }
    );
    ExitCode::SUCCESS
}

/// A bar over the file's bytes when the size is known, a spinner counting events otherwise;
/// hidden when not on a terminal.
fn progress_bar(visible: bool, total: Option<u64>) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{bar:40} {percent:>3}% {msg} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} ({per_sec}) {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Splits a byte stream into lines the way Java's `BufferedReader.readLine` does: `\n`, `\r\n`
/// and a lone `\r` end a line; the last line needs no terminator; an empty input has no lines.
struct LineReader<R> {
    inner: BufReader<R>,
    /// The previous line ended with `\r`: a `\n` right after it belongs to that terminator.
    skip_lf: bool,
    line: BytesMut,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(256 * 1024, inner),
            skip_lf: false,
            line: BytesMut::new(),
        }
    }

    /// The next line without its terminator, and how many input bytes it took.
    async fn next_line(&mut self) -> std::io::Result<Option<(Bytes, u64)>> {
        let mut consumed: u64 = 0;
        // Whether this line has begun: bytes of a previous line's `\r\n` do not count.
        let mut started = false;
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                if !started {
                    return Ok(None);
                }
                return Ok(Some((self.line.split().freeze(), consumed)));
            }
            if std::mem::take(&mut self.skip_lf) && buf[0] == b'\n' {
                self.inner.consume(1);
                consumed += 1;
                continue;
            }
            started = true;
            match memchr::memchr2(b'\n', b'\r', buf) {
                Some(end) => {
                    self.line.extend_from_slice(&buf[..end]);
                    self.skip_lf = buf[end] == b'\r';
                    self.inner.consume(end + 1);
                    consumed += (end + 1) as u64;
                    return Ok(Some((self.line.split().freeze(), consumed)));
                }
                None => {
                    let n = buf.len();
                    self.line.extend_from_slice(buf);
                    self.inner.consume(n);
                    consumed += n as u64;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8]) -> Vec<Vec<u8>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut r = LineReader::new(input);
            let mut out = Vec::new();
            let mut total = 0;
            while let Some((line, n)) = r.next_line().await.expect("read") {
                out.push(line.to_vec());
                total += n;
            }
            // Only a final `\n` after a `\r` may be left uncounted (it starts no line).
            assert!(input.len() as u64 - total <= 1, "bytes are accounted for");
            out
        })
    }

    #[test]
    fn lines_end_like_javas_read_line() {
        let v = |s: &[&str]| s.iter().map(|l| l.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(split(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split(b"a\nb\n"), v(&["a", "b"]));
        assert_eq!(split(b"a\r\nb\rc"), v(&["a", "b", "c"]));
        assert_eq!(split(b"\n\n"), v(&["", ""]));
        assert_eq!(split(b"\r\r\n"), v(&["", ""]));
        assert_eq!(split("é\u{1F600}\n".as_bytes()), v(&["é\u{1F600}"]));
        assert_eq!(split(b"\xff\xfe\n"), vec![b"\xff\xfe".to_vec()]);
    }

    #[test]
    fn a_crlf_split_across_reads_is_one_terminator() {
        // A reader that hands out one byte per read puts `\r` and `\n` in different buffers.
        struct OneByte(Vec<u8>, usize);
        impl AsyncRead for OneByte {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                if self.1 < self.0.len() {
                    let b = self.0[self.1];
                    buf.put_slice(&[b]);
                    self.1 += 1;
                }
                std::task::Poll::Ready(Ok(()))
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let lines = rt.block_on(async {
            let mut r = LineReader::new(OneByte(b"ab\r\ncd\r\n\r\nef\r\n".to_vec(), 0));
            let mut out = Vec::new();
            while let Some((line, _)) = r.next_line().await.expect("read") {
                out.push(String::from_utf8(line.to_vec()).expect("utf8"));
            }
            out
        });
        assert_eq!(lines, ["ab", "cd", "", "ef"]);
    }
}
