//! The Avro IPC handshake (`flume-rpc.md` A.4): `HandshakeRequest`/`HandshakeResponse`, the
//! protocol texts and MD5s flumen knows, and the server's BOTH/CLIENT/NONE decision.
//!
//! Invariants: flumen's own protocol is Flume 1.11's exact JSON, so Flume 1.10/1.11 clients get
//! BOTH at once; the Flume ≤1.9 and doc-less texts describe the same wire schema and are known
//! by hash. A client protocol learned from `clientProtocol` is assumed wire-equivalent
//! (flumen does no Avro schema resolution); its hash is remembered per server.

use bytes::{BufMut, BytesMut};

use super::protocol::{DecodeError, Reader, put_bytes, put_long};

/// An Avro protocol hash: MD5 of the protocol's JSON text.
pub type Md5 = [u8; 16];

/// Flume 1.10/1.11's `AvroSourceProtocol` JSON text (flumen's own protocol).
pub const PROTOCOL_JSON: &str = include_str!("AvroSourceProtocol.flume-1.11.avpr");
/// MD5 of [`PROTOCOL_JSON`].
pub const PROTOCOL_MD5: Md5 = hex16("8076c53714e01f6e2c1deb9544e7b1fe");
/// MD5 of Flume ≤1.9's text of the same protocol (license kept with `* `).
pub const PROTOCOL_MD5_FLUME_1_9: Md5 = hex16("86aadae2c45474c0fe93ffd0f2350a65");
/// MD5 of the protocol's JSON without `doc`.
pub const PROTOCOL_MD5_NODOC: Md5 = hex16("30da54059df72d9584b867d5202e2069");

const fn hex16(s: &str) -> Md5 {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lower-case hex"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = nib(b[2 * i]) << 4 | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// `org.apache.avro.ipc.HandshakeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// MD5 of the client's protocol.
    pub client_hash: Md5,
    /// The client's protocol text, sent after a NONE.
    pub client_protocol: Option<String>,
    /// The client's guess of the server's hash.
    pub server_hash: Md5,
    /// Handshake metadata (Java sends an empty map, `avsc` null); not interpreted.
    pub meta: Option<Vec<(String, bytes::Bytes)>>,
}

/// `HandshakeMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// Both protocols known: go on.
    Both = 0,
    /// Client protocol known, the client guessed the server's wrong: it gets ours.
    Client = 1,
    /// Client protocol unknown: resend with `clientProtocol`; the call was not executed.
    None = 2,
}

/// `org.apache.avro.ipc.HandshakeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// The verdict.
    pub matched: HandshakeMatch,
    /// Our protocol text, for CLIENT and NONE.
    pub server_protocol: Option<String>,
    /// Our hash, for CLIENT and NONE.
    pub server_hash: Option<Md5>,
}

fn md5(r: &mut Reader) -> Result<Md5, DecodeError> {
    let b = r.raw(16)?;
    let mut m = [0u8; 16];
    m.copy_from_slice(&b);
    Ok(m)
}

fn opt_meta(r: &mut Reader) -> Result<Option<Vec<(String, bytes::Bytes)>>, DecodeError> {
    Ok(match r.union(2)? {
        0 => None,
        _ => Some(r.bytes_map()?),
    })
}

impl HandshakeRequest {
    /// The request flumen's client sends: our hash twice, the text only when asked for.
    pub fn ours(server_hash: Md5, with_text: bool) -> Self {
        Self {
            client_hash: PROTOCOL_MD5,
            client_protocol: with_text.then(|| PROTOCOL_JSON.to_string()),
            server_hash,
            meta: Some(Vec::new()),
        }
    }
    /// Reads a request from the start of a call payload.
    ///
    /// # Errors
    /// Malformed data.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let client_hash = md5(r)?;
        let client_protocol = match r.union(2)? {
            0 => None,
            _ => Some(r.string()?),
        };
        let server_hash = md5(r)?;
        let meta = opt_meta(r)?;
        Ok(Self {
            client_hash,
            client_protocol,
            server_hash,
            meta,
        })
    }
    /// Writes the request.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_slice(&self.client_hash);
        match &self.client_protocol {
            None => put_long(out, 0),
            Some(t) => {
                put_long(out, 1);
                put_bytes(out, t.as_bytes());
            }
        }
        out.put_slice(&self.server_hash);
        match &self.meta {
            None => put_long(out, 0),
            Some(m) => {
                put_long(out, 1);
                if !m.is_empty() {
                    put_long(out, m.len() as i64);
                    for (k, v) in m {
                        put_bytes(out, k.as_bytes());
                        put_bytes(out, v);
                    }
                }
                put_long(out, 0);
            }
        }
    }
}

impl HandshakeResponse {
    /// Reads a response from the start of a response payload.
    ///
    /// # Errors
    /// Malformed data.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let matched = match r.long()? {
            0 => HandshakeMatch::Both,
            1 => HandshakeMatch::Client,
            2 => HandshakeMatch::None,
            i => return Err(DecodeError(format!("handshake match {i}"))),
        };
        let server_protocol = match r.union(2)? {
            0 => None,
            _ => Some(r.string()?),
        };
        let server_hash = match r.union(2)? {
            0 => None,
            _ => Some(md5(r)?),
        };
        let _meta = opt_meta(r)?;
        Ok(Self {
            matched,
            server_protocol,
            server_hash,
        })
    }
    /// Writes the response (meta null).
    pub fn write(&self, out: &mut BytesMut) {
        put_long(out, self.matched as i64);
        match &self.server_protocol {
            None => put_long(out, 0),
            Some(t) => {
                put_long(out, 1);
                put_bytes(out, t.as_bytes());
            }
        }
        match &self.server_hash {
            None => put_long(out, 0),
            Some(h) => {
                put_long(out, 1);
                out.put_slice(h);
            }
        }
        put_long(out, 0);
    }
}

/// The protocols a server knows by hash: its own, Flume ≤1.9's, the doc-less text, and every
/// client protocol it has been sent.
#[derive(Debug, Clone)]
pub struct KnownProtocols {
    hashes: Vec<Md5>,
}

/// Most learned client protocols remembered, so a hostile client cannot grow the list forever.
const MAX_LEARNED: usize = 64;

impl Default for KnownProtocols {
    fn default() -> Self {
        Self {
            hashes: vec![PROTOCOL_MD5, PROTOCOL_MD5_FLUME_1_9, PROTOCOL_MD5_NODOC],
        }
    }
}

impl KnownProtocols {
    /// Decides the server's answer to `req` (A.4 step 2), learning a sent client protocol.
    /// Returns the response and whether the call may be executed (match ≠ NONE).
    pub fn answer(&mut self, req: &HandshakeRequest) -> HandshakeResponse {
        let mut known = self.hashes.contains(&req.client_hash);
        if !known
            && let Some(text) = &req.client_protocol
            && looks_like_flume_protocol(text)
        {
            if self.hashes.len() < MAX_LEARNED {
                self.hashes.push(req.client_hash);
            }
            known = true;
        }
        let matched = match (known, req.server_hash == PROTOCOL_MD5) {
            (true, true) => HandshakeMatch::Both,
            (true, false) => HandshakeMatch::Client,
            (false, _) => HandshakeMatch::None,
        };
        let ours = matched != HandshakeMatch::Both;
        HandshakeResponse {
            matched,
            server_protocol: ours.then(|| PROTOCOL_JSON.to_string()),
            server_hash: ours.then_some(PROTOCOL_MD5),
        }
    }
}

/// Whether a client's protocol text plausibly declares Flume's messages (no JSON parser here:
/// the messages and record names must appear).
fn looks_like_flume_protocol(text: &str) -> bool {
    ["\"append\"", "\"appendBatch\"", "AvroFlumeEvent"]
        .iter()
        .all(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn golden_java_handshake_request() {
        let req = HandshakeRequest::ours(PROTOCOL_MD5, false);
        let mut b = BytesMut::new();
        req.write(&mut b);
        let mut expected = PROTOCOL_MD5.to_vec();
        expected.push(0);
        expected.extend(PROTOCOL_MD5);
        expected.extend([2, 0]);
        assert_eq!(&b[..], &expected[..]);
        assert_eq!(&expected[..4], &[0x80, 0x76, 0xc5, 0x37]);
        assert_eq!(
            HandshakeRequest::read(&mut Reader::new(b.freeze())).unwrap(),
            req
        );
        assert_eq!(PROTOCOL_JSON.len(), 1289);
    }

    #[test]
    fn golden_both_response() {
        let mut known = KnownProtocols::default();
        let resp = known.answer(&HandshakeRequest::ours(PROTOCOL_MD5, false));
        let mut b = BytesMut::new();
        resp.write(&mut b);
        assert_eq!(&b[..], &[0, 0, 0, 0]);
        assert_eq!(
            HandshakeResponse::read(&mut Reader::new(b.freeze())).unwrap(),
            resp
        );
    }

    #[test]
    fn both_client_none() {
        let mut known = KnownProtocols::default();
        // Flume <= 1.9 client guessing its own hash as ours: CLIENT.
        let old = HandshakeRequest {
            client_hash: PROTOCOL_MD5_FLUME_1_9,
            client_protocol: None,
            server_hash: PROTOCOL_MD5_FLUME_1_9,
            meta: Some(Vec::new()),
        };
        let r = known.answer(&old);
        assert_eq!(r.matched, HandshakeMatch::Client);
        assert_eq!(r.server_hash, Some(PROTOCOL_MD5));
        assert_eq!(r.server_protocol.as_deref(), Some(PROTOCOL_JSON));
        // Unknown client without text: NONE.
        let stranger = HandshakeRequest {
            client_hash: [7; 16],
            client_protocol: None,
            server_hash: [7; 16],
            meta: None,
        };
        assert_eq!(known.answer(&stranger).matched, HandshakeMatch::None);
        // Retry with its text and our hash: BOTH, and it is known from now on.
        let retry = HandshakeRequest {
            client_protocol: Some(
                r#"{"protocol":"P","types":[{"name":"AvroFlumeEvent"}],"messages":{"append":{},"appendBatch":{}}}"#
                    .into(),
            ),
            server_hash: PROTOCOL_MD5,
            ..stranger.clone()
        };
        assert_eq!(known.answer(&retry).matched, HandshakeMatch::Both);
        assert_eq!(known.answer(&stranger).matched, HandshakeMatch::Client);
        // A text that is not Flume's protocol stays unknown.
        let other = HandshakeRequest {
            client_hash: [9; 16],
            client_protocol: Some("{\"protocol\":\"Other\"}".into()),
            server_hash: PROTOCOL_MD5,
            meta: None,
        };
        assert_eq!(known.answer(&other).matched, HandshakeMatch::None);
    }

    #[test]
    fn avsc_null_meta_and_garbage() {
        let req = HandshakeRequest {
            client_hash: [1; 16],
            client_protocol: Some("x".into()),
            server_hash: [2; 16],
            meta: None,
        };
        let mut b = BytesMut::new();
        req.write(&mut b);
        assert_eq!(*b.last().unwrap(), 0);
        assert_eq!(
            HandshakeRequest::read(&mut Reader::new(b.freeze())).unwrap(),
            req
        );
        assert!(HandshakeRequest::read(&mut Reader::new(Bytes::from_static(&[1; 10]))).is_err());
        assert!(HandshakeResponse::read(&mut Reader::new(Bytes::from_static(&[6]))).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            let b = Bytes::from(data);
            let _ = HandshakeRequest::read(&mut Reader::new(b.clone()));
            let _ = HandshakeResponse::read(&mut Reader::new(b));
        }
    }
}
