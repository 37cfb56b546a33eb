//! [`RpcClient`]: Flume's RPC client SDK (`RpcClientFactory`, `flume-rpc.md` C.2) in Rust —
//! one API over the four client types, used by the avro and thrift sinks and by
//! `flumen avro-client`.
//!
//! - `default` (Avro) and `thrift`: one connection to the first host. After any failure the
//!   connection is dropped and the next call reconnects (Flume's client would stay dead and
//!   its owner would rebuild it; reconnecting is what every owner wants).
//! - `default_failover` (Avro): hosts in listed order. The client sticks to the host in use
//!   until a call to it fails, then moves on to the *next* host in the list (cyclically, as
//!   Flume's `FailoverRpcClient` does: it never goes back to an earlier host while the
//!   current one works). Finding a host means connecting to each in turn from there; hosts
//!   that refuse the connection are passed over without using an attempt. At most
//!   `max_attempts` calls are made per `append`/`append_batch`; each retry resends all its
//!   events (the receiving side may see duplicates, as with Flume).
//! - `default_loadbalance` (Avro): each call tries the hosts in the selector's order (round
//!   robin or random) until one answers OK; with `backoff` a failed host is skipped for a
//!   while (Flume's `OrderSelector`, in the private `select` module). Every host failing or
//!   backing off is an error naming each.
//!
//! Invariants: a call counts as delivered only on an `OK` reply; `append_batch` splits into
//! calls of at most `batch_size` events, and a failure in any of them fails the whole (earlier
//! calls may have been delivered: at-least-once). A failed connection is always dropped
//! before the error is returned. Connections are opened lazily, on the first call.
//! Counters (with [`RpcClient::with_counters`]): `ConnectionCreated` per connect (TCP plus
//! the Avro handshake), `ConnectionFailed` per failed connect, `ConnectionClosed` per
//! connection dropped.

pub mod config;
mod select;

use std::sync::Arc;
use std::time::Duration;

use flumen_core::{Event, SinkCounters};
use tokio::time::Instant;

pub use config::{ClientType, ConfigError, HostSelector, HostSpec, RpcClientConfig};

use crate::avro::{self, AvroClient};
use crate::thrift::{self, ThriftClient};
use select::{Backoff, Order};

/// Why one host did not take the events.
#[derive(Debug, thiserror::Error)]
pub enum HostFailure {
    /// The Avro connection or call failed (includes `FAILED` replies).
    #[error(transparent)]
    Avro(#[from] avro::ClientError),
    /// The Thrift connection or call failed.
    #[error(transparent)]
    Thrift(#[from] thrift::ClientError),
    /// The Thrift source answered a status other than `OK`.
    #[error("the thrift source answered {0:?}")]
    ThriftStatus(thrift::Status),
    /// The host was skipped: it failed recently (load balancing with `backoff`).
    #[error("skipped for another {0:?} after recent failures")]
    BackingOff(Duration),
}

/// One host's failure.
#[derive(Debug, thiserror::Error)]
#[error("host {host}: {failure}")]
pub struct HostError {
    /// The host.
    pub host: HostSpec,
    /// What went wrong there.
    #[source]
    pub failure: HostFailure,
}

/// Why `append`/`append_batch` failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The single host of a `default` or `thrift` client failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Every host tried (failover, load balance) failed or was skipped, in the order tried.
    #[error("no host took the events: {}", join(.0))]
    AllHosts(Vec<HostError>),
}

fn join(errors: &[HostError]) -> String {
    if errors.is_empty() {
        return "no host available".into();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Per-host statistics, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Connections attempted.
    pub connect_attempts: u64,
    /// Connections that failed (refused, timed out, bad handshake).
    pub connect_failures: u64,
    /// Calls answered `OK`.
    pub calls_ok: u64,
    /// Calls that failed on an open connection.
    pub calls_failed: u64,
    /// Times the load balancer skipped the host because it was backing off.
    pub skipped: u64,
    /// Consecutive failures counted by the back-off (load balancing with `backoff` only; 0
    /// when healthy).
    pub consecutive_failures: u32,
}

/// An open connection.
enum Conn {
    Avro(AvroClient),
    Thrift(ThriftClient),
}

struct HostState {
    spec: HostSpec,
    conn: Option<(Conn, Instant)>,
    stats: HostStats,
    backoff: Backoff,
}

/// What one call carries.
#[derive(Clone, Copy)]
enum Payload<'a> {
    One(&'a Event),
    Batch(&'a [Event]),
}

/// A Flume RPC client over one or several hosts; see the module documentation. Used by one
/// task at a time (`&mut self`).
pub struct RpcClient {
    config: RpcClientConfig,
    hosts: Vec<HostState>,
    /// Failover: the host in use (or last used).
    cursor: Option<usize>,
    /// Failover: the host in use failed; look for the next one.
    advance: bool,
    /// The host of the last success.
    last_ok: Option<usize>,
    order: Order,
    counters: Option<Arc<SinkCounters>>,
    /// Who owns the client (a sink's name), for logs.
    name: String,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("client_type", &self.config.client_type)
            .field("hosts", &self.config.hosts)
            .field("batch_size", &self.config.batch_size)
            .field("current_host", &self.current_host())
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client for `config`; nothing is connected until the first call. The top-level
    /// timeouts are copied into the Avro and Thrift options; single-host types keep only the
    /// first host; a batch size of 0 becomes 100 and `max_attempts` of 0 the host count.
    pub fn new(mut config: RpcClientConfig) -> Self {
        config.avro.connect_timeout = config.connect_timeout;
        config.avro.request_timeout = config.request_timeout;
        config.thrift.connect_timeout = config.connect_timeout;
        config.thrift.request_timeout = config.request_timeout;
        if !config.client_type.multi_host() {
            config.hosts.truncate(1);
        }
        if config.batch_size == 0 {
            config.batch_size = config::DEFAULT_BATCH_SIZE;
        }
        if config.max_attempts == 0 {
            config.max_attempts = config.hosts.len();
        }
        let hosts = config
            .hosts
            .iter()
            .map(|spec| HostState {
                spec: spec.clone(),
                conn: None,
                stats: HostStats::default(),
                backoff: Backoff::default(),
            })
            .collect();
        Self {
            config,
            hosts,
            cursor: None,
            advance: false,
            last_ok: None,
            order: Order::new(),
            counters: None,
            name: String::new(),
        }
    }

    /// Counts connections in a sink's counters.
    #[must_use]
    pub fn with_counters(mut self, counters: Arc<SinkCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Names the owner (e.g. the sink) in the client's log lines.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &RpcClientConfig {
        &self.config
    }

    /// Most events per call.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// The host of the last successful call.
    pub fn current_host(&self) -> Option<&HostSpec> {
        self.last_ok.map(|i| &self.hosts[i].spec)
    }

    /// Statistics of every host, in configured order.
    pub fn host_stats(&self) -> Vec<(HostSpec, HostStats)> {
        self.hosts
            .iter()
            .map(|h| {
                let mut s = h.stats.clone();
                s.consecutive_failures = h.backoff.sequential;
                (h.spec.clone(), s)
            })
            .collect()
    }

    /// How long the oldest open connection has been open (`None`: none open). Lets a sink
    /// apply `reset-connection-interval`.
    pub fn connection_age(&self) -> Option<Duration> {
        self.hosts
            .iter()
            .filter_map(|h| h.conn.as_ref().map(|(_, since)| since.elapsed()))
            .max()
    }

    /// Opens a connection now instead of on the first call: to the host a call would use
    /// first (single-host and failover), or to every host not backing off (load balance;
    /// succeeds if one connects).
    ///
    /// # Errors
    /// No connection could be made.
    pub async fn connect(&mut self) -> Result<(), RpcError> {
        if self.hosts.is_empty() {
            return Err(RpcError::AllHosts(Vec::new()));
        }
        match self.config.client_type {
            ClientType::Default | ClientType::Thrift => self
                .ensure(0)
                .await
                .map_err(|failure| self.host_error(0, failure).into()),
            ClientType::DefaultFailover => self.failover_host().await.map(|_| ()),
            ClientType::DefaultLoadBalance => {
                let mut errors = Vec::new();
                let mut any = false;
                let now = Instant::now();
                for i in 0..self.hosts.len() {
                    if self.config.backoff
                        && let Some(left) = self.hosts[i].backoff.remaining(now)
                    {
                        errors.push(self.host_error(i, HostFailure::BackingOff(left)));
                        continue;
                    }
                    match self.ensure(i).await {
                        Ok(()) => any = true,
                        Err(f) => errors.push(self.host_error(i, f)),
                    }
                }
                if any {
                    Ok(())
                } else {
                    Err(RpcError::AllHosts(errors))
                }
            }
        }
    }

    /// Sends one event (`append`) and waits for `OK`.
    ///
    /// # Errors
    /// The host(s) and why; see [`RpcError`].
    pub async fn append(&mut self, event: &Event) -> Result<(), RpcError> {
        self.dispatch(Payload::One(event)).await
    }

    /// Sends `events` with `appendBatch` calls of at most [`Self::batch_size`] events and waits
    /// for every `OK`. An empty slice sends nothing.
    ///
    /// # Errors
    /// The host(s) and why; see [`RpcError`]. Calls before the failing one may have been
    /// delivered.
    pub async fn append_batch(&mut self, events: &[Event]) -> Result<(), RpcError> {
        if events.is_empty() {
            return Ok(());
        }
        self.dispatch(Payload::Batch(events)).await
    }

    /// Closes every connection; a later call reconnects.
    pub async fn close(&mut self) {
        for i in 0..self.hosts.len() {
            self.drop_conn(i);
        }
        self.advance = false;
    }

    async fn dispatch(&mut self, payload: Payload<'_>) -> Result<(), RpcError> {
        // A config built in code may have no host: an error, never an index panic.
        if self.hosts.is_empty() {
            return Err(RpcError::AllHosts(Vec::new()));
        }
        match self.config.client_type {
            ClientType::Default | ClientType::Thrift => match self.send(0, payload).await {
                Ok(()) => Ok(()),
                Err(f) => Err(self.host_error(0, f).into()),
            },
            ClientType::DefaultFailover => self.failover(payload).await,
            ClientType::DefaultLoadBalance => self.load_balance(payload).await,
        }
    }

    fn host_error(&self, i: usize, failure: HostFailure) -> HostError {
        HostError {
            host: self.hosts[i].spec.clone(),
            failure,
        }
    }

    /// Failover: the host in use, or the next one that accepts a connection.
    async fn failover_host(&mut self) -> Result<usize, RpcError> {
        if let Some(i) = self.cursor
            && !self.advance
            && self.hosts[i].conn.is_some()
        {
            return Ok(i);
        }
        let n = self.hosts.len();
        let start = match self.cursor {
            None => 0,
            Some(c) if self.advance => (c + 1) % n,
            Some(c) => c,
        };
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            match self.ensure(i).await {
                Ok(()) => {
                    if self.cursor.is_some_and(|c| c != i) {
                        tracing::warn!(client = %self.name, host = %self.hosts[i].spec, "RPC client failing over to the next host.");
                    }
                    self.cursor = Some(i);
                    self.advance = false;
                    return Ok(i);
                }
                Err(f) => errors.push(self.host_error(i, f)),
            }
        }
        // Flume starts again from the first host after finding none.
        self.cursor = None;
        self.advance = false;
        Err(RpcError::AllHosts(errors))
    }

    async fn failover(&mut self, payload: Payload<'_>) -> Result<(), RpcError> {
        let mut errors = Vec::new();
        for _ in 0..self.config.max_attempts.max(1) {
            let i = match self.failover_host().await {
                Ok(i) => i,
                Err(RpcError::AllHosts(mut more)) => {
                    errors.append(&mut more);
                    return Err(RpcError::AllHosts(errors));
                }
                Err(e) => return Err(e),
            };
            match self.send(i, payload).await {
                Ok(()) => return Ok(()),
                Err(f) => {
                    tracing::warn!(client = %self.name, host = %self.hosts[i].spec, error = %f, "RPC call failed; trying the next host.");
                    errors.push(self.host_error(i, f));
                    self.advance = true;
                }
            }
        }
        Err(RpcError::AllHosts(errors))
    }

    async fn load_balance(&mut self, payload: Payload<'_>) -> Result<(), RpcError> {
        let now = Instant::now();
        let mut errors = Vec::new();
        let mut active = Vec::with_capacity(self.hosts.len());
        for i in 0..self.hosts.len() {
            match self.hosts[i].backoff.remaining(now) {
                Some(left) if self.config.backoff => {
                    self.hosts[i].stats.skipped += 1;
                    errors.push(self.host_error(i, HostFailure::BackingOff(left)));
                }
                _ => active.push(i),
            }
        }
        let order = match self.config.host_selector {
            HostSelector::RoundRobin => self.order.round_robin(&active),
            HostSelector::Random => self.order.random(&active),
        };
        for i in order {
            match self.send(i, payload).await {
                Ok(()) => {
                    self.hosts[i].backoff.succeed();
                    return Ok(());
                }
                Err(f) => {
                    tracing::warn!(client = %self.name, host = %self.hosts[i].spec, error = %f, "RPC call failed; trying the next host.");
                    if self.config.backoff {
                        let max = self.config.max_backoff;
                        self.hosts[i].backoff.fail(Instant::now(), max);
                    }
                    errors.push(self.host_error(i, f));
                }
            }
        }
        Err(RpcError::AllHosts(errors))
    }

    /// Connects host `i` unless it is connected.
    async fn ensure(&mut self, i: usize) -> Result<(), HostFailure> {
        if self.hosts[i].conn.is_some() {
            return Ok(());
        }
        let spec = self.hosts[i].spec.clone();
        self.hosts[i].stats.connect_attempts += 1;
        let made = match self.config.client_type {
            ClientType::Thrift => ThriftClient::connect(&spec.host, spec.port, &self.config.thrift)
                .await
                .map(Conn::Thrift)
                .map_err(HostFailure::from),
            _ => AvroClient::connect(&spec.host, spec.port, &self.config.avro)
                .await
                .map(Conn::Avro)
                .map_err(HostFailure::from),
        };
        match made {
            Ok(conn) => {
                if let Some(c) = &self.counters {
                    c.connection_created.inc();
                }
                tracing::info!(client = %self.name, host = %spec, "RPC client connected.");
                self.hosts[i].conn = Some((conn, Instant::now()));
                Ok(())
            }
            Err(f) => {
                if let Some(c) = &self.counters {
                    c.connection_failed.inc();
                }
                self.hosts[i].stats.connect_failures += 1;
                Err(f)
            }
        }
    }

    fn drop_conn(&mut self, i: usize) {
        if self.hosts[i].conn.take().is_some()
            && let Some(c) = &self.counters
        {
            c.connection_closed.inc();
        }
    }

    /// Connects host `i` if needed and sends the payload there, split by batch size; drops
    /// the connection on any failure.
    async fn send(&mut self, i: usize, payload: Payload<'_>) -> Result<(), HostFailure> {
        self.ensure(i).await?;
        let batch_size = self.config.batch_size.max(1);
        let result = match payload {
            Payload::One(event) => self.call(i, Payload::One(event)).await,
            Payload::Batch(events) => {
                let mut r = Ok(());
                for chunk in events.chunks(batch_size) {
                    r = self.call(i, Payload::Batch(chunk)).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        match result {
            Ok(()) => {
                self.last_ok = Some(i);
                Ok(())
            }
            Err(f) => {
                self.drop_conn(i);
                Err(f)
            }
        }
    }

    /// One RPC on host `i`'s open connection.
    async fn call(&mut self, i: usize, payload: Payload<'_>) -> Result<(), HostFailure> {
        let host = &mut self.hosts[i];
        let Some((conn, _)) = host.conn.as_mut() else {
            return Err(HostFailure::Avro(avro::ClientError::Closed));
        };
        let r = match (conn, payload) {
            (Conn::Avro(c), Payload::One(e)) => c.append(e).await.map_err(HostFailure::from),
            (Conn::Avro(c), Payload::Batch(es)) => {
                c.append_batch(es).await.map_err(HostFailure::from)
            }
            (Conn::Thrift(c), p) => {
                let status = match p {
                    Payload::One(e) => c.append(e).await,
                    Payload::Batch(es) => c.append_batch(es).await,
                };
                match status {
                    Ok(thrift::Status::Ok) => Ok(()),
                    Ok(s) => Err(HostFailure::ThriftStatus(s)),
                    Err(e) => Err(HostFailure::from(e)),
                }
            }
        };
        if r.is_ok() {
            host.stats.calls_ok += 1;
        } else {
            host.stats.calls_failed += 1;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use bytes::Bytes;
    use futures_util::future::BoxFuture;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::avro::{AvroHandler, Call, ServerOptions, Status};

    /// What a test server saw.
    #[derive(Default)]
    struct Seen {
        calls: AtomicUsize,
        appends: AtomicUsize,
        events: Mutex<Vec<String>>,
        refuse: AtomicBool,
    }

    impl Seen {
        fn record<'a>(&self, batch: impl Iterator<Item = &'a Event>, single: bool) -> bool {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if single {
                self.appends.fetch_add(1, Ordering::SeqCst);
            }
            if self.refuse.load(Ordering::SeqCst) {
                return false;
            }
            let mut ev = self.events.lock().unwrap();
            ev.extend(batch.map(|e| String::from_utf8_lossy(&e.body).into_owned()));
            true
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
        fn count(&self) -> usize {
            self.events.lock().unwrap().len()
        }
    }

    impl AvroHandler for Seen {
        fn call(&self, call: Call) -> BoxFuture<'_, Status> {
            let ok = match &call {
                Call::Append(e) => self.record(std::iter::once(e), true),
                Call::AppendBatch(es) => self.record(es.iter(), false),
                Call::Ping => true,
            };
            Box::pin(async move { if ok { Status::Ok } else { Status::Failed } })
        }
    }

    /// A real Avro server on loopback that can be stopped and restarted on its port.
    struct Server {
        port: u16,
        seen: Arc<Seen>,
        stop: CancellationToken,
        task: Option<tokio::task::JoinHandle<()>>,
    }

    impl Server {
        async fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            Self::serve(listener, Arc::default())
        }

        /// A port nobody listens on (yet).
        async fn dead_port() -> u16 {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        }

        async fn start_on(port: u16) -> Self {
            let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            Self::serve(listener, Arc::default())
        }

        fn serve(listener: TcpListener, seen: Arc<Seen>) -> Self {
            let port = listener.local_addr().unwrap().port();
            let stop = CancellationToken::new();
            let task = tokio::spawn(crate::avro::serve(
                listener,
                seen.clone(),
                ServerOptions::default(),
                None,
                stop.clone(),
            ));
            Self {
                port,
                seen,
                stop,
                task: Some(task),
            }
        }

        async fn stop(&mut self) {
            self.stop.cancel();
            if let Some(t) = self.task.take() {
                t.await.unwrap();
            }
        }

        async fn restart(&mut self) {
            self.stop().await;
            let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
            let again = Self::serve(listener, self.seen.clone());
            *self = again;
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(Bytes::from(format!("e{i}"))))
            .collect()
    }

    fn config(client_type: ClientType, ports: &[u16]) -> RpcClientConfig {
        let mut c = RpcClientConfig::single(client_type, "127.0.0.1", 1);
        c.hosts = ports
            .iter()
            .enumerate()
            .map(|(i, p)| HostSpec {
                alias: format!("h{}", i + 1),
                host: "127.0.0.1".into(),
                port: *p,
            })
            .collect();
        c.max_attempts = ports.len();
        c.connect_timeout = Duration::from_secs(5);
        c.request_timeout = Duration::from_secs(5);
        c
    }

    fn stats(c: &RpcClient, i: usize) -> HostStats {
        c.host_stats()[i].1.clone()
    }

    #[tokio::test]
    async fn default_client_splits_batches_and_reconnects_after_a_restart() {
        let mut s = Server::start().await;
        let counters = Arc::new(SinkCounters::default());
        let mut c =
            RpcClient::new(config(ClientType::Default, &[s.port])).with_counters(counters.clone());
        assert_eq!(c.batch_size(), 100);
        assert!(c.current_host().is_none());
        c.append_batch(&events(250)).await.unwrap();
        assert_eq!(s.seen.calls(), 3, "250 events at batch-size 100 = 3 calls");
        assert_eq!(s.seen.count(), 250);
        c.append(&Event::new("one")).await.unwrap();
        assert_eq!(s.seen.appends.load(Ordering::SeqCst), 1);
        assert_eq!(c.current_host().map(|h| h.port), Some(s.port));
        c.append_batch(&[]).await.unwrap();
        assert_eq!(s.seen.calls(), 4, "an empty batch sends nothing");

        // FAILED fails the call and drops the connection; the next call reconnects.
        s.seen.refuse.store(true, Ordering::SeqCst);
        let err = c.append_batch(&events(2)).await.unwrap_err();
        assert!(err.to_string().contains("h1 (127.0.0.1:"), "{err}");
        assert!(matches!(
            err,
            RpcError::Host(HostError {
                failure: HostFailure::Avro(avro::ClientError::Status(Status::Failed)),
                ..
            })
        ));
        s.seen.refuse.store(false, Ordering::SeqCst);
        c.append_batch(&events(2)).await.unwrap();
        assert_eq!(counters.connection_created.get(), 2);
        assert_eq!(counters.connection_closed.get(), 1);

        // The server restarts: one call fails on the dead connection, then it reconnects.
        s.restart().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.append_batch(&events(1)).await.is_err() {
            assert!(Instant::now() < deadline, "never reconnected");
        }
        assert_eq!(counters.connection_created.get(), 3);
        // Server gone: connection refused is an error naming the host, counted as failed.
        s.stop().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let err = c.append(&Event::new("x")).await.unwrap_err();
            if counters.connection_failed.get() > 0 {
                assert!(err.to_string().contains("cannot connect"), "{err}");
                break;
            }
            assert!(Instant::now() < deadline);
        }
        c.close().await;
    }

    #[tokio::test]
    async fn no_hosts_is_an_error_not_a_panic() {
        for t in [
            ClientType::Default,
            ClientType::DefaultFailover,
            ClientType::DefaultLoadBalance,
            ClientType::Thrift,
        ] {
            let mut c = RpcClient::new(config(t, &[]));
            let err = c.append(&Event::new("x")).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "no host took the events: no host available"
            );
            assert!(c.connect().await.is_err());
        }
    }

    #[tokio::test]
    async fn single_host_types_use_only_the_first_host() {
        let a = Server::start().await;
        let b = Server::start().await;
        let mut c = RpcClient::new(config(ClientType::Default, &[a.port, b.port]));
        c.append_batch(&events(3)).await.unwrap();
        c.append_batch(&events(3)).await.unwrap();
        assert_eq!((a.seen.count(), b.seen.count()), (6, 0));
        assert_eq!(c.host_stats().len(), 1);
        assert!(c.connection_age().is_some());
        c.close().await;
        assert!(c.connection_age().is_none());
    }

    #[tokio::test]
    async fn failover_moves_to_the_next_host_and_sticks_to_it() {
        let dead = Server::dead_port().await;
        let mut b = Server::start().await;
        let c3 = Server::start().await;
        let mut c = RpcClient::new(config(
            ClientType::DefaultFailover,
            &[dead, b.port, c3.port],
        ));
        c.append_batch(&events(150)).await.unwrap();
        assert_eq!(
            b.seen.count(),
            150,
            "first host down: the second gets everything"
        );
        assert_eq!(c.current_host().map(|h| h.alias.as_str()), Some("h2"));
        // The first host comes back: the client stays on the second.
        let a = Server::start_on(dead).await;
        for _ in 0..5 {
            c.append(&Event::new("x")).await.unwrap();
        }
        assert_eq!((a.seen.calls(), b.seen.count()), (0, 155));
        // The second fails: the next in the list (not the first) takes over.
        b.seen.refuse.store(true, Ordering::SeqCst);
        c.append_batch(&events(4)).await.unwrap();
        assert_eq!((a.seen.calls(), c3.seen.count()), (0, 4));
        assert_eq!(c.current_host().map(|h| h.alias.as_str()), Some("h3"));
        b.stop().await;
        // All down but the first: after the third fails the list wraps around to it.
        c3.seen.refuse.store(true, Ordering::SeqCst);
        c.append(&Event::new("y")).await.unwrap();
        assert_eq!(a.seen.count(), 1);
        assert_eq!(stats(&c, 0).connect_failures, 1);
    }

    #[tokio::test]
    async fn failover_honours_max_attempts_and_names_every_failure() {
        let a = Server::start().await;
        let b = Server::start().await;
        let c3 = Server::start().await;
        a.seen.refuse.store(true, Ordering::SeqCst);
        b.seen.refuse.store(true, Ordering::SeqCst);
        let mut cfg = config(ClientType::DefaultFailover, &[a.port, b.port, c3.port]);
        cfg.max_attempts = 2;
        let mut c = RpcClient::new(cfg.clone());
        let err = c.append_batch(&events(1)).await.unwrap_err();
        let RpcError::AllHosts(list) = &err else {
            panic!("{err}")
        };
        assert_eq!(list.len(), 2, "{err}");
        assert!(err.to_string().contains("h1 (") && err.to_string().contains("h2 ("));
        assert_eq!((a.seen.calls(), b.seen.calls(), c3.seen.calls()), (1, 1, 0));
        // Default max-attempts = the host count: the third host is reached.
        cfg.max_attempts = 0;
        let mut c = RpcClient::new(cfg);
        c.append_batch(&events(1)).await.unwrap();
        assert_eq!(c3.seen.count(), 1);
    }

    #[tokio::test]
    async fn load_balance_round_robin_alternates_and_survives_a_dead_host() {
        let mut a = Server::start().await;
        let b = Server::start().await;
        let mut c = RpcClient::new(config(ClientType::DefaultLoadBalance, &[a.port, b.port]));
        let mut order = Vec::new();
        for _ in 0..6 {
            c.append(&Event::new("x")).await.unwrap();
            order.push(c.current_host().unwrap().alias.clone());
        }
        assert_eq!(order, ["h1", "h2", "h1", "h2", "h1", "h2"]);
        assert_eq!((a.seen.count(), b.seen.count()), (3, 3));
        a.stop().await;
        for _ in 0..6 {
            c.append_batch(&events(2)).await.unwrap();
        }
        assert_eq!(b.seen.count(), 15, "one down: all to the other, no error");
        // Without back-off the dead host is tried on every call that starts with it.
        assert!(stats(&c, 0).connect_failures >= 2, "{:?}", c.host_stats());
    }

    #[tokio::test]
    async fn load_balance_random_covers_both_hosts() {
        let a = Server::start().await;
        let b = Server::start().await;
        let mut cfg = config(ClientType::DefaultLoadBalance, &[a.port, b.port]);
        cfg.host_selector = HostSelector::Random;
        let mut c = RpcClient::new(cfg);
        for _ in 0..60 {
            c.append(&Event::new("x")).await.unwrap();
        }
        assert_eq!(a.seen.count() + b.seen.count(), 60);
        assert!(a.seen.count() > 5 && b.seen.count() > 5);
    }

    #[tokio::test]
    async fn load_balance_backoff_skips_a_dead_host_then_retries_it() {
        let dead = Server::dead_port().await;
        let b = Server::start().await;
        let run = |backoff: bool, max: u64| {
            let mut cfg = config(ClientType::DefaultLoadBalance, &[dead, b.port]);
            cfg.backoff = backoff;
            cfg.max_backoff = Duration::from_millis(max);
            cfg
        };
        // Without back-off: every other call (round robin) starts with the dead host.
        let mut c = RpcClient::new(run(false, 30_000));
        for _ in 0..20 {
            c.append(&Event::new("x")).await.unwrap();
        }
        assert_eq!(stats(&c, 0).connect_attempts, 10);
        // With back-off (2 s after the first failure): skipped, not dialled.
        let mut c = RpcClient::new(run(true, 30_000));
        for _ in 0..20 {
            c.append(&Event::new("x")).await.unwrap();
        }
        let s = stats(&c, 0);
        assert!(s.connect_attempts <= 2, "{s:?}");
        assert!(s.skipped >= 17, "{s:?}");
        assert!(s.consecutive_failures >= 1);
        assert_eq!(b.seen.count(), 40);
        // A short maxBackoff: the dead host is dialled again once it expires.
        let mut c = RpcClient::new(run(true, 50));
        c.append(&Event::new("x")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats(&c, 0).connect_attempts < 2 {
            assert!(Instant::now() < deadline, "never retried");
            tokio::time::sleep(Duration::from_millis(10)).await;
            c.append(&Event::new("x")).await.unwrap();
        }
        assert_eq!(stats(&c, 0).consecutive_failures, 2);
    }

    #[tokio::test]
    async fn load_balance_all_down_is_an_error_naming_each_host() {
        let (p1, p2) = (Server::dead_port().await, Server::dead_port().await);
        let mut cfg = config(ClientType::DefaultLoadBalance, &[p1, p2]);
        cfg.backoff = true;
        let mut c = RpcClient::new(cfg);
        let err = c.append(&Event::new("x")).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("h1 (") && msg.contains("h2 ("), "{msg}");
        assert!(msg.contains("cannot connect"), "{msg}");
        // Both backing off now: an error without dialling, saying so.
        let err = c.append(&Event::new("x")).await.unwrap_err();
        assert!(err.to_string().contains("skipped for another"), "{err}");
        assert_eq!(stats(&c, 0).connect_attempts, 1);
        assert!(c.connect().await.is_err());
    }

    /// A real Thrift server on loopback answering `status` to every call.
    async fn thrift_server(
        protocol: thrift::Protocol,
        status: Arc<Mutex<thrift::Status>>,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        thrift_server_tls(protocol, status, None).await
    }

    /// [`thrift_server`], over TLS when `tls` is set.
    async fn thrift_server_tls(
        protocol: thrift::Protocol,
        status: Arc<Mutex<thrift::Status>>,
        tls: Option<crate::tls::TlsAcceptor>,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (g, status, tls) = (g.clone(), status.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = thrift::server::serve_accepted(
                        s,
                        tls.as_ref(),
                        protocol,
                        1 << 20,
                        CancellationToken::new(),
                        move |call| {
                            let st = *status.lock().unwrap();
                            if st == thrift::Status::Ok {
                                let mut g = g.lock().unwrap();
                                match call {
                                    thrift::Call::Append(e) => {
                                        g.push(String::from_utf8_lossy(&e.body).into_owned());
                                    }
                                    thrift::Call::AppendBatch(v) => g
                                        .extend(v.iter().map(|e| {
                                            String::from_utf8_lossy(&e.body).into_owned()
                                        })),
                                    thrift::Call::Unknown => {}
                                }
                            }
                            async move { st }
                        },
                    )
                    .await;
                });
            }
        });
        (port, got)
    }

    #[tokio::test]
    async fn thrift_client_type_against_the_thrift_server() {
        for (key, protocol) in [
            ("compact", thrift::Protocol::Compact),
            ("binary", thrift::Protocol::Binary),
        ] {
            let status = Arc::new(Mutex::new(thrift::Status::Ok));
            let (port, got) = thrift_server(protocol, status.clone()).await;
            let props: BTreeMap<String, String> = [
                ("client.type", "THRIFT".to_string()),
                ("hosts", "t1".into()),
                ("hosts.t1", format!("127.0.0.1:{port}")),
                ("protocol", key.into()),
                ("batch-size", "10".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let (cfg, warnings) = RpcClientConfig::from_properties(&props).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            let counters = Arc::new(SinkCounters::default());
            let mut c = RpcClient::new(cfg).with_counters(counters.clone());
            c.append_batch(&events(25)).await.unwrap();
            c.append(&Event::new("single")).await.unwrap();
            assert_eq!(got.lock().unwrap().len(), 26, "{key}");
            assert_eq!(got.lock().unwrap()[25], "single");
            *status.lock().unwrap() = thrift::Status::Failed;
            let err = c.append(&Event::new("no")).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    RpcError::Host(HostError {
                        failure: HostFailure::ThriftStatus(thrift::Status::Failed),
                        ..
                    })
                ),
                "{err}"
            );
            *status.lock().unwrap() = thrift::Status::Ok;
            c.append(&Event::new("again")).await.unwrap();
            assert_eq!(counters.connection_created.get(), 2, "{key}");
            assert_eq!(counters.connection_closed.get(), 1, "{key}");
            assert_eq!(c.current_host().map(|h| h.alias.as_str()), Some("t1"));
        }
    }

    #[tokio::test]
    async fn thrift_client_type_over_tls_with_a_pem_truststore() {
        let Some(certs) = crate::tls::test_certs::make() else {
            return;
        };
        let versions = crate::tls::versions(&[], &[]).unwrap();
        let acceptor = crate::tls::TlsAcceptor::from(
            crate::tls::server_config(&certs.keystore, &versions).unwrap(),
        );
        for (key, protocol) in [
            ("compact", thrift::Protocol::Compact),
            ("binary", thrift::Protocol::Binary),
        ] {
            let status = Arc::new(Mutex::new(thrift::Status::Ok));
            let (port, got) = thrift_server_tls(protocol, status, Some(acceptor.clone())).await;
            let props = |truststore: &std::path::Path| -> BTreeMap<String, String> {
                [
                    ("client.type", "thrift".to_string()),
                    ("hosts", "t1".into()),
                    ("hosts.t1", format!("127.0.0.1:{port}")),
                    ("protocol", key.into()),
                    ("ssl", "true".into()),
                    ("truststore", truststore.display().to_string()),
                    ("connect-timeout", "5000".into()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            };
            let (cfg, _) = RpcClientConfig::from_properties(&props(&certs.ca)).unwrap();
            let mut c = RpcClient::new(cfg);
            c.append_batch(&events(3)).await.unwrap();
            assert_eq!(*got.lock().unwrap(), ["e0", "e1", "e2"], "{key}");
            // A trust store without the issuing CA: the handshake fails, nothing is sent.
            let (cfg, _) = RpcClientConfig::from_properties(&props(&certs.leaf)).unwrap();
            let err = RpcClient::new(cfg)
                .append(&Event::new("x"))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("t1 (127.0.0.1:"), "{err}");
            assert_eq!(got.lock().unwrap().len(), 3, "{key}");
        }
    }
}
