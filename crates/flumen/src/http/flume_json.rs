//! Flume's `/metrics` JSON document: one object per component keyed `SOURCE.<name>`,
//! `CHANNEL.<name>`, `SINK.<name>`, every attribute a string, compact on one line with no
//! trailing newline (what Flume's Gson output looks like).
//!
//! Keys come out in a stable order (components by key, attributes in Flume's `Type`,
//! `StartTime`, `StopTime`, counters order): Flume promises no order, so this is compatible
//! and makes output diffable.

use flumen_core::metrics::RegistryEntry;

/// Renders the document for `entries`.
pub fn render(entries: &[RegistryEntry]) -> String {
    let mut out = String::with_capacity(256 + entries.len() * 512);
    out.push('{');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, &e.key);
        out.push_str(":{");
        for (j, (name, value)) in e.group.attributes().iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_str(&mut out, name);
            out.push(':');
            push_str(&mut out, value);
        }
        out.push('}');
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flumen_core::metrics::{ComponentMetrics, MetricsRegistry};
    use flumen_core::{ChannelCounters, SinkCounters, SourceCounters};

    use super::*;

    /// The reference's example (flume-metrics.md §8), minus the file-channel and Kafka extras
    /// flumen's memory channel and avro sink do not have, compacted as Flume sends it.
    #[test]
    fn golden_document() {
        let r = MetricsRegistry::default();
        let src = Arc::new(SourceCounters::default());
        src.lifecycle.start_time.set(1_718_870_400_123);
        src.event_received.set(48210);
        src.event_accepted.set(48200);
        src.append_batch_received.set(483);
        src.append_batch_accepted.set(482);
        src.open_connection.set(3);
        src.channel_write_fail.set(1);
        let ch = Arc::new(ChannelCounters::default());
        ch.lifecycle.start_time.set(1_718_870_400_087);
        ch.channel_size.set(1250);
        ch.channel_capacity.set(200_000);
        ch.event_put_attempt.set(48201);
        ch.event_put_success.set(48200);
        ch.event_take_attempt.set(48158);
        ch.event_take_success.set(46950);
        let k = Arc::new(SinkCounters::default());
        k.lifecycle.start_time.set(1_718_870_400_140);
        k.connection_created.set(2);
        k.connection_closed.set(1);
        k.connection_failed.set(1);
        k.batch_empty.set(610);
        k.batch_underflow.set(37);
        k.batch_complete.set(210);
        k.event_drain_attempt.set(24180);
        k.event_drain_success.set(24080);
        k.event_write_fail.set(1);
        r.register("in", ComponentMetrics::Source(src));
        r.register("buf", ComponentMetrics::Channel(ch));
        r.register("fwd", ComponentMetrics::Sink(k));
        let expected = concat!(
            r#"{"CHANNEL.buf":{"Type":"CHANNEL","StartTime":"1718870400087","StopTime":"0","#,
            r#""ChannelSize":"1250","ChannelCapacity":"200000","ChannelFillPercentage":"0.625","#,
            r#""EventPutAttemptCount":"48201","EventPutSuccessCount":"48200","#,
            r#""EventTakeAttemptCount":"48158","EventTakeSuccessCount":"46950"},"#,
            r#""SINK.fwd":{"Type":"SINK","StartTime":"1718870400140","StopTime":"0","#,
            r#""ConnectionCreatedCount":"2","ConnectionClosedCount":"1","ConnectionFailedCount":"1","#,
            r#""BatchEmptyCount":"610","BatchUnderflowCount":"37","BatchCompleteCount":"210","#,
            r#""EventDrainAttemptCount":"24180","EventDrainSuccessCount":"24080","#,
            r#""EventWriteFail":"1","ChannelReadFail":"0"},"#,
            r#""SOURCE.in":{"Type":"SOURCE","StartTime":"1718870400123","StopTime":"0","#,
            r#""EventReceivedCount":"48210","EventAcceptedCount":"48200","AppendReceivedCount":"0","#,
            r#""AppendAcceptedCount":"0","AppendBatchReceivedCount":"483","#,
            r#""AppendBatchAcceptedCount":"482","OpenConnectionCount":"3","EventReadFail":"0","#,
            r#""ChannelWriteFail":"1","GenericProcessingFail":"0"}}"#
        );
        assert_eq!(render(&r.entries()), expected);
    }

    #[test]
    fn empty_document_and_capacity_zero() {
        assert_eq!(render(&[]), "{}");
        let r = MetricsRegistry::default();
        r.register("k", ComponentMetrics::Channel(Arc::default()));
        let doc = render(&r.entries());
        assert!(doc.contains(r#""ChannelFillPercentage":"1.7976931348623157E308""#));
    }

    #[test]
    fn names_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\u{1}");
        assert_eq!(s, r#""a\"b\\c\u0001""#);
    }
}
