//! The unit of data: string headers plus an opaque byte body.
//!
//! The body is a [`Bytes`] so that fan-out to several channels and retries clone a reference
//! count, never the payload.

use bytes::Bytes;
use compact_str::CompactString;

/// Event headers: a map of string keys to string values.
///
/// A newtype so the representation can change without touching components. Events carry a
/// handful of headers, so they are kept as a vector sorted by key: one allocation for all of
/// them (none while empty, the common case), lookups by binary search, and the same
/// deterministic key order a `BTreeMap` gives (the `header_and_text` serializer and tests rely
/// on it). Keys and values are `CompactString`s: up to 24 bytes they are stored inline, so
/// typical headers (`host`, `timestamp`, `Severity` and their values) cost no allocation of
/// their own. Measured on the syslog source (six headers per event): the `BTreeMap<String,
/// String>` this replaces spent most of the source's CPU in malloc/free and tree inserts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<(CompactString, CompactString)>);

impl Headers {
    /// An empty header map.
    pub fn new() -> Self {
        Self(Vec::new())
    }
    /// An empty header map with room for `n` headers.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| self.0[i].1.as_str())
    }
    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(
        &mut self,
        key: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<String> {
        let key = key.into();
        let value = value.into();
        // Sources usually add headers in key order: appending needs one comparison.
        if self.0.last().is_none_or(|(last, _)| *last < key) {
            self.0.push((key, value));
            return None;
        }
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value).into_string()),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }
    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        Some(self.0.remove(i).1.into_string())
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }
    /// Keeps only the headers for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(k, v)| f(k, v));
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

impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut h = Self::with_capacity(iter.size_hint().0);
        for (k, v) in iter {
            h.insert(k, v);
        }
        h
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, String),
        Remove(String),
        Retain(char),
    }

    fn key() -> impl Strategy<Value = String> {
        // A small alphabet so operations hit the same keys; some keys longer than 24 bytes
        // (the inline limit) and some non-ASCII.
        prop_oneof![
            "[a-d]{0,3}",
            "[a-d]{25,30}",
            Just("é".to_string()),
            Just("host".to_string()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (key(), "[ -~]{0,40}").prop_map(|(k, v)| Op::Insert(k, v)),
            key().prop_map(Op::Remove),
            prop::sample::select(vec!['a', 'b', 'x']).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Headers behave exactly like the ordered map they replace.
        #[test]
        fn behaves_like_a_btreemap(ops in prop::collection::vec(op(), 0..60)) {
            let mut h = Headers::new();
            let mut model: BTreeMap<String, String> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(h.insert(k.as_str(), v.as_str()), model.insert(k, v));
                    }
                    Op::Remove(k) => prop_assert_eq!(h.remove(&k), model.remove(&k)),
                    Op::Retain(c) => {
                        h.retain(|k, _| !k.starts_with(c));
                        model.retain(|k, _| !k.starts_with(c));
                    }
                }
                prop_assert_eq!(h.len(), model.len());
                let got: Vec<(&str, &str)> = h.iter().collect();
                let want: Vec<(&str, &str)> =
                    model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                prop_assert_eq!(got, want);
                for k in model.keys() {
                    prop_assert_eq!(h.get(k), model.get(k).map(String::as_str));
                    prop_assert!(h.contains_key(k));
                }
            }
            let rebuilt: Headers = model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(rebuilt, h);
        }
    }
}
