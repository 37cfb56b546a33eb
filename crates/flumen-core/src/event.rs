//! The unit of data: string headers plus an opaque byte body.
//!
//! The body is a [`Bytes`] so that fan-out to several channels and retries clone a reference
//! count, never the payload.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Event headers: a map of string keys to string values.
///
/// A newtype so the representation can change without touching components; a `BTreeMap` gives a
/// deterministic order (the `header_and_text` serializer and tests rely on it) and costs no
/// allocation while empty, which is the common case on the hot path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    /// An empty header map.
    pub fn new() -> Self {
        Self(BTreeMap::new())
    }
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }
    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    /// Keeps only the headers for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|k, v| f(k, v));
    }
    /// Headers in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// One log event, as Flume defines it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// String key/value metadata (timestamp, host, routing keys...).
    pub headers: Headers,
    /// The payload; never interpreted by the core.
    pub body: Bytes,
}

impl Event {
    /// An event with `body` and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            headers: Headers::new(),
            body: body.into(),
        }
    }
    /// An event with `headers` and `body`.
    pub fn with_headers(headers: Headers, body: impl Into<Bytes>) -> Self {
        Self {
            headers,
            body: body.into(),
        }
    }
}
