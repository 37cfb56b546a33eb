//! Memory channel throughput: one producer task putting batches, one consumer task taking and
//! committing them, on a 2-thread runtime. Prints the median of several runs in events/s.
//!
//! Run: `cargo bench -p flumen --bench memory_channel`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use flumen::components::channels::memory::{MemoryChannel, MemoryChannelConfig};
use flumen_core::{Channel, Event};

const EVENTS: usize = 5_000_000;
const RUNS: usize = 5;

fn run(batch: usize, total: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let config = MemoryChannelConfig {
            capacity: 10_000,
            transaction_capacity: batch.max(100),
            keep_alive: 3,
            ..Default::default()
        };
        let ch = Arc::new(MemoryChannel::new("c1", config, Arc::default()));
        let body = Bytes::from(vec![b'x'; 200]);
        let start = Instant::now();
        let producer = {
            let ch = ch.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                while sent < total {
                    let n = batch.min(total - sent);
                    let events: Vec<Event> = (0..n).map(|_| Event::new(body.clone())).collect();
                    let mut tx = ch.begin();
                    tx.put(events).await.unwrap();
                    tx.commit().await.unwrap();
                    sent += n;
                }
            })
        };
        let consumer = {
            let ch = ch.clone();
            tokio::spawn(async move {
                let mut got = 0;
                while got < total {
                    let mut tx = ch.begin();
                    let n = tx.take(batch).await.unwrap();
                    if n == 0 {
                        tx.rollback();
                        ch.readable().await;
                        continue;
                    }
                    tx.commit().await.unwrap();
                    got += n;
                }
            })
        };
        producer.await.unwrap();
        consumer.await.unwrap();
        total as f64 / start.elapsed().as_secs_f64()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for batch in [1usize, 100] {
        // Batch 1 is a hundred times more transactions per event: fewer events keep runs short.
        let total = if batch == 1 { EVENTS / 10 } else { EVENTS };
        let rates: Vec<f64> = (0..RUNS).map(|_| run(batch, total)).collect();
        println!(
            "memory channel put+take, batch {batch:>3}: median {:>12.0} events/s (runs: {})",
            median(rates.clone()),
            rates
                .iter()
                .map(|r| format!("{:.2}M", r / 1e6))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
