//! A zlib (RFC 1950) byte-stream layer over any tokio stream: what goes in through
//! [`AsyncWrite`] leaves compressed, what arrives is inflated for [`AsyncRead`]. Flume 1.11
//! puts this layer directly on the TCP connection when `compression-type = deflate`, under TLS
//! when `ssl = true` as well (`flume-rpc.md` A.1, A.8): zlib(TLS(frames)).
//!
//! Invariants:
//! - each direction is one zlib stream for the whole connection, never finished (Flume never
//!   finishes it; closing the connection ends it), starting with the 2-byte header (`78 9c` at
//!   level 6);
//! - every `poll_write` (or vectored write) is compressed and sync-flushed at once, so the peer can inflate
//!   everything written so far without waiting for more; at most one write's compressed
//!   output waits for the inner stream (back-pressure: the next write is `Pending` until it has
//!   gone out);
//! - inflation is incremental and bounded by the reader's buffer: a few bytes that would inflate
//!   to gigabytes cost no more memory than the caller's read buffer; bad zlib data is an
//!   `InvalidData` I/O error, never a panic;
//! - a peer that does finish its stream: the inflated side ends (EOF) at the stream's end.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the inner stream at a time.
const INPUT_BUFFER: usize = 16 * 1024;

/// A zlib-compressed stream over `S` (both directions).
pub struct ZlibStream<S> {
    inner: S,
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes not yet accepted by `inner`, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Compressed bytes read from `inner`, not yet inflated: `input[in_pos..in_end]`.
    input: Box<[u8]>,
    in_pos: usize,
    in_end: usize,
    /// The peer finished its zlib stream (or the inner stream ended): reads return EOF.
    read_done: bool,
}

impl<S> std::fmt::Debug for ZlibStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZlibStream")
            .field("total_in", &self.compress.total_in())
            .field("total_out", &self.compress.total_out())
            .field("pending_out", &(self.out.len() - self.out_pos))
            .field("pending_in", &(self.in_end - self.in_pos))
            .finish()
    }
}

impl<S> ZlibStream<S> {
    /// Wraps `inner`; `level` (0-9, larger values mean 9) applies to what this side writes.
    pub fn new(inner: S, level: u32) -> Self {
        Self {
            inner,
            compress: Compress::new(Compression::new(level.min(9)), true),
            decompress: Decompress::new(true),
            out: Vec::new(),
            out_pos: 0,
            input: vec![0; INPUT_BUFFER].into_boxed_slice(),
            in_pos: 0,
            in_end: 0,
            read_done: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream; writing to it directly corrupts the zlib stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

fn zlib_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad zlib stream: {e}"))
}

impl<S: AsyncWrite + Unpin> ZlibStream<S> {
    /// Writes the pending compressed bytes to `inner`; `Ready(Ok)` once none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Compresses all of `parts` into `out`, then sync-flushes once.
    fn compress_all(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        self.out.reserve(total / 2 + 64);
        for (i, part) in parts.iter().enumerate() {
            let flush = if i + 1 == parts.len() {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            let mut data = *part;
            loop {
                if self.out.capacity() - self.out.len() < 64 {
                    self.out.reserve(self.out.capacity().max(4096));
                }
                let before = self.compress.total_in();
                self.compress
                    .compress_vec(data, &mut self.out, flush)
                    .map_err(zlib_error)?;
                let used = usize::try_from(self.compress.total_in() - before).unwrap_or(data.len());
                data = &data[used.min(data.len())..];
                // Done when everything is in and the flush did not run out of room.
                if data.is_empty() && self.out.len() < self.out.capacity() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn poll_write_parts(
        &mut self,
        cx: &mut Context<'_>,
        parts: &[&[u8]],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        self.compress_all(parts)?;
        // Start sending now; what does not fit stays for the next write or flush.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(total))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ZlibStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_parts(cx, &[buf])
    }

    /// All slices in one sync flush (TLS writes several records at once).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let parts: Vec<&[u8]> = bufs
            .iter()
            .map(|b| &**b)
            .filter(|b| !b.is_empty())
            .collect();
        self.get_mut().poll_write_parts(cx, &parts)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Sends what is pending and shuts the inner stream down; the zlib stream is left
    /// unfinished, as Flume leaves it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ZlibStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.read_done {
                return Poll::Ready(Ok(()));
            }
            // Inflate even with no new input: zlib may hold output that did not fit last time.
            let out = buf.initialize_unfilled();
            let room = out.len();
            let (in0, out0) = (this.decompress.total_in(), this.decompress.total_out());
            let status = this
                .decompress
                .decompress(
                    &this.input[this.in_pos..this.in_end],
                    out,
                    FlushDecompress::Sync,
                )
                .map_err(zlib_error)?;
            let consumed = usize::try_from(this.decompress.total_in() - in0).unwrap_or(0);
            let produced = usize::try_from(this.decompress.total_out() - out0).unwrap_or(0);
            this.in_pos = (this.in_pos + consumed).min(this.in_end);
            buf.advance(produced.min(room));
            if status == Status::StreamEnd {
                this.read_done = true;
            }
            if produced > 0 || this.read_done {
                return Poll::Ready(Ok(()));
            }
            if consumed > 0 {
                continue; // The header or an empty sync block: keep inflating.
            }
            // No progress: zlib needs more bytes. Make room behind the buffered ones.
            this.input.copy_within(this.in_pos..this.in_end, 0);
            this.in_end -= this.in_pos;
            this.in_pos = 0;
            if this.in_end == this.input.len() {
                return Poll::Ready(Err(zlib_error("no progress on a full input buffer")));
            }
            let mut rb = ReadBuf::new(&mut this.input[this.in_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // The connection ended; an unfinished stream is normal (Flume never finishes).
                this.read_done = true;
                return Poll::Ready(Ok(()));
            }
            this.in_end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn round_trip_many_small_writes_never_finished() {
        let (a, b) = tokio::io::duplex(1024);
        let mut w = ZlibStream::new(a, 6);
        let mut r = ZlibStream::new(b, 6);
        let chunks: Vec<String> = (0..2000u32)
            .map(|i| format!("message {i} {}|", "x".repeat((i % 50) as usize)))
            .collect();
        let sent = chunks.concat().into_bytes();
        let writer = tokio::spawn(async move {
            for chunk in &chunks {
                w.write_all(chunk.as_bytes()).await.unwrap();
            }
            w.flush().await.unwrap();
            // Not shut down, not finished: the reader must still get everything.
            w
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 333];
        while got.len() < sent.len() {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "early EOF");
            got.extend_from_slice(&buf[..n]);
        }
        let w = writer.await.unwrap();
        assert_eq!(got, sent);
        // The other direction on the same pair works too, one message at a time (sync flush:
        // each write is readable before the next one is sent).
        let (mut w, mut r) = (r, w);
        for i in 0..50u8 {
            w.write_all(&[i; 7]).await.unwrap();
            let mut one = [0u8; 7];
            r.read_exact(&mut one).await.unwrap();
            assert_eq!(one, [i; 7]);
        }
        // Closing the writer ends the reader cleanly without a finished zlib stream.
        drop(w);
        assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn first_bytes_are_the_level_6_zlib_header() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = ZlibStream::new(a, 6);
        w.write_all(b"hello").await.unwrap();
        let mut head = [0u8; 2];
        b.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x78, 0x9c]);
    }

    #[tokio::test]
    async fn garbage_is_an_io_error() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut r = ZlibStream::new(b, 6);
        a.write_all(b"this is not zlib at all").await.unwrap();
        let mut buf = [0u8; 64];
        let e = r.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_bomb_inflates_only_into_the_read_buffer() {
        // 64 MiB of zeros compresses to ~64 KiB; each read inflates at most the caller's buffer.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(9));
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        std::io::Write::flush(&mut enc).unwrap(); // Sync flush, stream not finished.
        let wire = enc.get_ref().clone();
        assert!(wire.len() < 1 << 20);
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut r = ZlibStream::new(b, 6);
        let feeder = tokio::spawn(async move {
            let _ = a.write_all(&wire).await;
            a
        });
        let mut buf = vec![0u8; 4096];
        let mut total = 0usize;
        while total < 64 << 20 {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0 && n <= 4096);
            total += n;
        }
        assert_eq!(total, 64 << 20);
        drop(feeder.await.unwrap());
        assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn vectored_writes_are_one_sync_flush() {
        let (a, b) = tokio::io::duplex(1024);
        let mut w = ZlibStream::new(a, 6);
        let mut r = ZlibStream::new(b, 6);
        assert!(w.is_write_vectored());
        let parts = [
            io::IoSlice::new(b"ab"),
            io::IoSlice::new(b""),
            io::IoSlice::new(b"cd"),
        ];
        assert_eq!(w.write_vectored(&parts).await.unwrap(), 4);
        let mut got = [0u8; 4];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcd");
    }

    proptest::proptest! {
        /// Whatever arrives (raw, or behind a valid header), reading ends in data, EOF or an
        /// error: never a panic.
        #[test]
        fn inflating_garbage_never_panics(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            header in proptest::prelude::any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut wire = if header { vec![0x78, 0x9c] } else { Vec::new() };
                wire.extend_from_slice(&data);
                let mut r = ZlibStream::new(&wire[..], 6);
                let mut out = Vec::new();
                let _ = r.read_to_end(&mut out).await;
            });
        }
    }
}
