//! Host bookkeeping of the load-balancing client: Flume's `OrderSelector` back-off and its
//! round-robin and random orders, as pure functions of an explicit clock so they can be
//! tested without waiting.
//!
//! Back-off (Flume's `OrderSelector.informFailure`): after a host's n-th consecutive failure
//! it is skipped for min(maxBackoff, 1000 ms × 2^n), n capped at 16; n starts again at 1 when
//! the previous failure is more than (its back-off + one hour) old. Unlike Flume, a success
//! also resets n (Flume only forgets after the hour), so a host that recovered and fails
//! again later starts over at the shortest back-off.

use std::time::Duration;

use tokio::time::Instant;

/// Flume's `EXP_BACKOFF_COUNTER_LIMIT`.
const MAX_EXPONENT: u32 = 16;
/// Flume's `CONSIDER_SEQUENTIAL_RANGE`: failures further apart than this (plus the back-off)
/// are not consecutive.
const SEQUENTIAL_RANGE: Duration = Duration::from_secs(3600);

/// One host's failure state.
#[derive(Debug, Clone, Default)]
pub(super) struct Backoff {
    /// Consecutive failures (n), capped at [`MAX_EXPONENT`].
    pub(super) sequential: u32,
    last_fail: Option<Instant>,
    restore: Option<Instant>,
}

fn length(max: Duration, n: u32) -> Duration {
    let ms = 1000u64.saturating_mul(1u64 << n.min(MAX_EXPONENT));
    Duration::from_millis(ms).min(max)
}

impl Backoff {
    /// Records a failure at `now`.
    pub(super) fn fail(&mut self, now: Instant, max: Duration) {
        let consecutive = self.last_fail.is_some_and(|last| {
            now.saturating_duration_since(last) < length(max, self.sequential) + SEQUENTIAL_RANGE
        });
        self.sequential = if consecutive {
            (self.sequential + 1).min(MAX_EXPONENT)
        } else {
            1
        };
        self.last_fail = Some(now);
        self.restore = Some(now + length(max, self.sequential));
    }

    /// Records a success: the host is healthy again.
    pub(super) fn succeed(&mut self) {
        *self = Self::default();
    }

    /// How long the host is still to be skipped at `now` (`None`: usable).
    pub(super) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.restore
            .filter(|r| *r > now)
            .map(|r| r.saturating_duration_since(now))
    }
}

/// The order in which one call tries the hosts.
#[derive(Debug)]
pub(super) struct Order {
    next_head: usize,
    rng: u64,
}

impl Order {
    pub(super) fn new() -> Self {
        // Seed from the clock and an address: good enough to spread load, no crate needed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let seed = nanos ^ (std::ptr::addr_of!(local) as u64).rotate_left(32);
        Self {
            next_head: 0,
            rng: seed | 1,
        }
    }

    /// Flume's `RoundRobinOrderSelector`: the active hosts starting one further than last
    /// time (the head wraps when the active set shrank).
    pub(super) fn round_robin(&mut self, active: &[usize]) -> Vec<usize> {
        let size = active.len();
        if size == 0 {
            return Vec::new();
        }
        if self.next_head >= size {
            self.next_head = 0;
        }
        let begin = self.next_head;
        self.next_head = (self.next_head + 1) % size;
        (0..size).map(|i| active[(begin + i) % size]).collect()
    }

    /// Flume's `RandomOrderSelector`: a random permutation of the active hosts.
    pub(super) fn random(&mut self, active: &[usize]) -> Vec<usize> {
        let mut v = active.to_vec();
        for i in (1..v.len()).rev() {
            let j = (self.next_random() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }

    /// xorshift64*.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let max = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.remaining(t0), None);
        b.fail(t0, max);
        assert_eq!(b.sequential, 1);
        assert_eq!(b.remaining(t0), Some(Duration::from_secs(2)));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(b.remaining(t1), None);
        b.fail(t1, max);
        assert_eq!(b.remaining(t1), Some(Duration::from_secs(4)));
        let mut t = t1;
        for _ in 0..30 {
            t += Duration::from_secs(40);
            b.fail(t, max);
        }
        assert_eq!(b.sequential, MAX_EXPONENT);
        assert_eq!(b.remaining(t), Some(max));
        // More than back-off + one hour later: n starts again at 1.
        let later = t + Duration::from_secs(3600 + 31);
        b.fail(later, max);
        assert_eq!(b.sequential, 1);
        b.succeed();
        assert_eq!(b.remaining(later), None);
        assert_eq!(
            length(Duration::from_secs(100_000), 40),
            Duration::from_millis(65_536_000)
        );
    }

    #[test]
    fn round_robin_rotates_and_random_permutes() {
        let mut o = Order::new();
        assert_eq!(o.round_robin(&[0, 1, 2]), [0, 1, 2]);
        assert_eq!(o.round_robin(&[0, 1, 2]), [1, 2, 0]);
        assert_eq!(o.round_robin(&[0, 1, 2]), [2, 0, 1]);
        assert_eq!(o.round_robin(&[0, 2]), [0, 2]);
        assert!(o.round_robin(&[]).is_empty());
        let mut firsts = [0usize; 3];
        for _ in 0..300 {
            let mut p = o.random(&[0, 1, 2]);
            firsts[p[0]] += 1;
            p.sort_unstable();
            assert_eq!(p, [0, 1, 2]);
        }
        assert!(firsts.iter().all(|&n| n > 30), "{firsts:?}");
    }
}
