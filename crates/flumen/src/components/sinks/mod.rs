//! Sinks: one module per Flume sink type.
//!
//! A sink only delivers batches; [`flumen_core::SinkDriver`] owns the take transaction and the
//! `Batch*`/`EventDrain*` counters, while each sink counts its own connections (files opened,
//! sockets connected) through the `Arc<SinkCounters>` of its build context.

use flumen_core::Headers;

use super::SinkDescriptor;

pub mod avro;
pub mod file_roll;
pub mod http;
pub mod logger;
pub mod null;
pub mod thrift;
pub mod tls_keys;

/// Every sink type flumen knows, one line each.
pub static SINKS: &[SinkDescriptor] = &[
    logger::DESCRIPTOR,
    null::DESCRIPTOR,
    file_roll::DESCRIPTOR,
    thrift::DESCRIPTOR,
    avro::DESCRIPTOR,
    http::DESCRIPTOR,
];

/// Appends `headers` the way Java's `Map.toString()` prints them: `{k1=v1, k2=v2}`, `{}` when
/// empty. Flume writes headers this way in the logger sink and the `header_and_text`
/// serializer; flumen's order is the key order of [`Headers`] (Flume's is `HashMap` order).
pub(crate) fn push_java_map(out: &mut Vec<u8>, headers: &Headers) {
    out.push(b'{');
    for (i, (k, v)) in headers.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::lookup;

    #[test]
    fn java_map_format() {
        let mut out = Vec::new();
        push_java_map(&mut out, &Headers::new());
        assert_eq!(out, b"{}");
        out.clear();
        let h: Headers = [("k2", "v2"), ("k1", "v1")].into_iter().collect();
        push_java_map(&mut out, &h);
        assert_eq!(out, b"{k1=v1, k2=v2}");
    }

    #[test]
    fn sinks_are_registered_by_alias_and_class() {
        for (alias, class) in [
            ("logger", "org.apache.flume.sink.LoggerSink"),
            ("null", "org.apache.flume.sink.NullSink"),
            ("file_roll", "org.apache.flume.sink.RollingFileSink"),
        ] {
            assert_eq!(
                lookup(SINKS, &alias.to_uppercase()).map(|d| d.name).ok(),
                Some(alias)
            );
            assert_eq!(lookup(SINKS, class).map(|d| d.name).ok(), Some(alias));
        }
    }
}
