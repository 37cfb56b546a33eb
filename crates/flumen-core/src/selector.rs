//! Channel selectors: which of a source's channels receive an event, and which of those are
//! required. A closed set of policies, so an enum of plain data indexing the source's channel list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::event::Event;

/// Channels selected for one event, as indexes into the source's channel list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection<'a> {
    /// A failed put to any of these fails the whole batch back to the source.
    pub required: &'a [usize],
    /// Best effort: failures are logged and ignored.
    pub optional: &'a [usize],
}

/// How a load-balancing selector picks the channel for each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancePolicy {
    /// One channel after the other.
    RoundRobin,
    /// A random channel each time.
    Random,
}

/// Flume's channel selectors.
#[derive(Debug)]
pub enum ChannelSelector {
    /// Every event to every channel; `optional` ones are best effort.
    Replicating {
        /// Channels whose failures fail the put.
        required: Vec<usize>,
        /// Channels written best effort (`selector.optional`).
        optional: Vec<usize>,
    },
    /// Routes on the value of one header.
    Multiplexing(Multiplexing),
    /// One channel per event, spread over all of them.
    LoadBalancing {
        /// Every channel of the source.
        all: Vec<usize>,
        /// Round robin or random.
        policy: BalancePolicy,
        /// Round-robin position; shared by every task of the source.
        next: AtomicUsize,
    },
}

/// The multiplexing policy with each header value's selection precomputed.
#[derive(Debug)]
pub struct Multiplexing {
    header: String,
    by_value: HashMap<String, (Vec<usize>, Vec<usize>)>,
    default: Vec<usize>,
}

impl Multiplexing {
    /// Builds the policy. `mapping` gives required channels per header value, `optional`
    /// optional channels per value, `default` the required channels for unmapped values. A
    /// channel both required and optional for a value is required (Flume's rule).
    pub fn new(
        header: String,
        mapping: HashMap<String, Vec<usize>>,
        optional: HashMap<String, Vec<usize>>,
        default: Vec<usize>,
    ) -> Self {
        let mut by_value: HashMap<String, (Vec<usize>, Vec<usize>)> = HashMap::new();
        let values: Vec<String> = mapping.keys().chain(optional.keys()).cloned().collect();
        for v in values {
            let required = mapping.get(&v).cloned().unwrap_or_else(|| default.clone());
            let opt = optional
                .get(&v)
                .map(|o| {
                    o.iter()
                        .copied()
                        .filter(|c| !required.contains(c))
                        .collect()
                })
                .unwrap_or_default();
            by_value.insert(v, (required, opt));
        }
        Self {
            header,
            by_value,
            default,
        }
    }
}

impl ChannelSelector {
    /// Copies every event to all `n` channels, all required.
    pub fn replicating_all(n: usize) -> Self {
        Self::Replicating {
            required: (0..n).collect(),
            optional: Vec::new(),
        }
    }

    /// The channels for `event`.
    pub fn select(&self, event: &Event) -> Selection<'_> {
        match self {
            Self::Replicating { required, optional } => Selection { required, optional },
            Self::Multiplexing(m) => {
                let hit = event.headers.get(&m.header).and_then(|v| m.by_value.get(v));
                match hit {
                    Some((req, opt)) => Selection {
                        required: req,
                        optional: opt,
                    },
                    None => Selection {
                        required: &m.default,
                        optional: &[],
                    },
                }
            }
            Self::LoadBalancing { all, policy, next } => {
                if all.is_empty() {
                    return Selection {
                        required: &[],
                        optional: &[],
                    };
                }
                let i = match policy {
                    BalancePolicy::RoundRobin => next.fetch_add(1, Ordering::Relaxed) % all.len(),
                    BalancePolicy::Random => fastrand::usize(..all.len()),
                };
                Selection {
                    required: &all[i..=i],
                    optional: &[],
                }
            }
        }
    }

    /// When every event goes to the same single required channel and nowhere else, its index:
    /// the processor then moves the batch without grouping or cloning.
    pub fn single_channel(&self) -> Option<usize> {
        match self {
            Self::Replicating { required, optional }
                if required.len() == 1 && optional.is_empty() =>
            {
                Some(required[0])
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    fn ev(h: &str, v: &str) -> Event {
        Event::with_headers(Headers::from_iter([(h, v)]), "x")
    }

    #[test]
    fn multiplexing_routes_by_header_and_falls_back_to_default() {
        let m = Multiplexing::new(
            "state".into(),
            HashMap::from([("CA".into(), vec![0]), ("NY".into(), vec![1, 0])]),
            HashMap::from([("CA".into(), vec![0, 2]), ("AZ".into(), vec![2])]),
            vec![1],
        );
        let s = ChannelSelector::Multiplexing(m);
        assert_eq!(
            s.select(&ev("state", "CA")),
            Selection {
                required: &[0],
                optional: &[2]
            }
        );
        assert_eq!(s.select(&ev("state", "NY")).required, &[1, 0]);
        // A value with only an optional mapping uses the default as its required channels.
        assert_eq!(
            s.select(&ev("state", "AZ")),
            Selection {
                required: &[1],
                optional: &[2]
            }
        );
        assert_eq!(
            s.select(&ev("state", "TX")),
            Selection {
                required: &[1],
                optional: &[]
            }
        );
        assert_eq!(s.select(&Event::new("no header")).required, &[1]);
    }

    #[test]
    fn load_balancing_round_robin_cycles() {
        let s = ChannelSelector::LoadBalancing {
            all: vec![0, 1, 2],
            policy: BalancePolicy::RoundRobin,
            next: AtomicUsize::new(0),
        };
        let picks: Vec<usize> = (0..6)
            .map(|_| s.select(&Event::new("x")).required[0])
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
