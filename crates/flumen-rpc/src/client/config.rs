//! [`RpcClientConfig`]: the settings of an [`super::RpcClient`], built in code
//! ([`RpcClientConfig::single`]) or from Flume's `RpcClientFactory` properties
//! ([`RpcClientConfig::from_properties`], `flume-rpc.md` C.2).
//!
//! Invariants of a config built from properties: at least one host (two for
//! `default_loadbalance`), every port in 1..=65535, `batch_size >= 1`, timeouts of at least one
//! second, `max_attempts >= 1`. Values Flume replaces by a default (batch size below 1,
//! timeouts below 1000 ms, `maxBackoff` of 0, `max-attempts` below 1) are replaced here too,
//! with a warning except for `maxBackoff`. Errors name the key: a missing `hosts` or
//! `hosts.<alias>` (Flume's failover and load-balancing clients skip such an alias silently),
//! a bad port, an unknown client type or selector, and — unlike Flume, which logs and falls
//! back to a default — a value that is not a number or a boolean.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::avro;
use crate::thrift;
use crate::thrift::Protocol;
use crate::tls::{self, TlsConnector};

/// Flume's default batch size for RPC clients.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Flume's default connect and request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20_000);
/// Flume's default `maxBackoff` of the load-balancing client.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(30_000);

/// Which client `client.type` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientType {
    /// `default`: one Avro connection (Flume's `NettyAvroRpcClient`).
    #[default]
    Default,
    /// `default_failover`: Avro, hosts in order, sticking to the one that works.
    DefaultFailover,
    /// `default_loadbalance`: Avro, spreading calls over the hosts.
    DefaultLoadBalance,
    /// `thrift`: one Thrift connection (Flume's `ThriftRpcClient`).
    Thrift,
}

impl ClientType {
    /// Parses Flume's `client.type` value: the names case-insensitively, or the class names of
    /// Flume's four clients.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let by_name = [
            ("default", Self::Default),
            ("default_failover", Self::DefaultFailover),
            ("default_loadbalance", Self::DefaultLoadBalance),
            ("thrift", Self::Thrift),
        ];
        let by_class = [
            ("org.apache.flume.api.NettyAvroRpcClient", Self::Default),
            (
                "org.apache.flume.api.FailoverRpcClient",
                Self::DefaultFailover,
            ),
            (
                "org.apache.flume.api.LoadBalancingRpcClient",
                Self::DefaultLoadBalance,
            ),
            ("org.apache.flume.api.ThriftRpcClient", Self::Thrift),
        ];
        by_name
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .or_else(|| by_class.iter().find(|(n, _)| *n == s))
            .map(|(_, t)| *t)
    }

    /// Whether this client uses every listed host (failover, load balance) or only the first.
    pub fn multi_host(self) -> bool {
        matches!(self, Self::DefaultFailover | Self::DefaultLoadBalance)
    }
}

/// The load-balancing client's host order (`host-selector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostSelector {
    /// `round_robin`: each call starts one host further than the previous one.
    #[default]
    RoundRobin,
    /// `random`: each call tries the hosts in a fresh random order.
    Random,
}

impl HostSelector {
    /// Parses `round_robin` / `random`, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("round_robin") {
            Some(Self::RoundRobin)
        } else if s.eq_ignore_ascii_case("random") {
            Some(Self::Random)
        } else {
            None
        }
    }
}

/// One destination: `hosts.<alias> = host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The alias from `hosts` (e.g. `h1`).
    pub alias: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{})", self.alias, self.host, self.port)
    }
}

/// A property that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ConfigError {
    /// The offending property.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Everything an [`super::RpcClient`] needs.
#[derive(Debug, Clone)]
pub struct RpcClientConfig {
    /// `client.type`.
    pub client_type: ClientType,
    /// `hosts` / `hosts.<alias>`, in listed order. Single-host clients use the first.
    pub hosts: Vec<HostSpec>,
    /// `batch-size`: most events per call; longer batches are split. Default 100.
    pub batch_size: usize,
    /// `connect-timeout`: TCP connect plus (Avro) handshake. Default 20 s. Copied into the
    /// Avro and Thrift options by the client.
    pub connect_timeout: Duration,
    /// `request-timeout`: one call, send to reply. Default 20 s. Copied like `connect_timeout`.
    pub request_timeout: Duration,
    /// Avro connection options (`compression-type`/`-level`, TLS).
    pub avro: avro::ClientOptions,
    /// Thrift connection options (`protocol`, TLS).
    pub thrift: thrift::ClientConfig,
    /// `host-selector` of `default_loadbalance`. Default round robin.
    pub host_selector: HostSelector,
    /// `backoff` of `default_loadbalance`: skip failed hosts for a while. Default false.
    pub backoff: bool,
    /// `maxBackoff`: the longest skip. Default 30 s.
    pub max_backoff: Duration,
    /// `max-attempts` of `default_failover`: calls tried per `append`/`append_batch`, each on
    /// the next host. Default (and 0): the host count.
    pub max_attempts: usize,
}

impl RpcClientConfig {
    /// A single-host client of `client_type` with every other setting at Flume's default.
    pub fn single(client_type: ClientType, host: &str, port: u16) -> Self {
        Self {
            client_type,
            hosts: vec![HostSpec {
                alias: "h1".into(),
                host: host.to_string(),
                port,
            }],
            batch_size: DEFAULT_BATCH_SIZE,
            connect_timeout: DEFAULT_TIMEOUT,
            request_timeout: DEFAULT_TIMEOUT,
            avro: avro::ClientOptions::default(),
            thrift: thrift::ClientConfig::default(),
            host_selector: HostSelector::RoundRobin,
            backoff: false,
            max_backoff: DEFAULT_MAX_BACKOFF,
            // The host count, whatever hosts the caller sets afterwards.
            max_attempts: 0,
        }
    }

    /// Reads Flume's `RpcClientFactory` properties (`flume-rpc.md` C.2): `client.type`,
    /// `hosts`, `hosts.<alias>`, `batch-size`, `connect-timeout`, `request-timeout`,
    /// `compression-type`, `compression-level`, `ssl`, `trust-all-certs`, `truststore`
    /// (`truststore-password` and `truststore-type` are ignored with a warning: the trust
    /// store is a PEM file), `include-protocols`, `exclude-protocols`, cipher-suite lists
    /// (ignored with a warning), `protocol` (thrift), `host-selector`, `backoff`,
    /// `maxBackoff`, `max-attempts`, `maxIoWorkers` (ignored with a warning, as in Flume 1.11).
    ///
    /// Returns the config and the warnings. Other keys are ignored silently, as Flume does
    /// (sinks pass all their keys through).
    ///
    /// # Errors
    /// The first unusable property, named in the error.
    pub fn from_properties(
        p: &BTreeMap<String, String>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let client_type = match get("client.type") {
            None => ClientType::Default,
            Some(v) => ClientType::parse(v).ok_or_else(|| {
                ConfigError::new(
                    "client.type",
                    format!(
                        "unknown client type `{v}` (expected default, default_failover, \
                         default_loadbalance or thrift)"
                    ),
                )
            })?,
        };

        let aliases: Vec<&str> = get("hosts")
            .ok_or_else(|| ConfigError::new("hosts", "missing required property `hosts`"))?
            .split_whitespace()
            .collect();
        let used = if client_type.multi_host() {
            &aliases[..]
        } else {
            if aliases.len() > 1 {
                warnings.push(format!(
                    "`hosts`: the {} client uses only the first host `{}`; the others are ignored",
                    type_name(client_type),
                    aliases[0]
                ));
            }
            &aliases[..1]
        };
        let mut hosts = Vec::with_capacity(used.len());
        for alias in used {
            let key = format!("hosts.{alias}");
            let value = get(&key).ok_or_else(|| {
                ConfigError::new(&key, format!("missing `{key}` for host alias `{alias}`"))
            })?;
            let (host, port) = parse_host_port(value).map_err(|m| ConfigError::new(&key, m))?;
            hosts.push(HostSpec {
                alias: (*alias).to_string(),
                host,
                port,
            });
        }
        if client_type == ClientType::DefaultLoadBalance && hosts.len() < 2 {
            return Err(ConfigError::new(
                "hosts",
                "the default_loadbalance client needs at least two hosts",
            ));
        }

        let batch_size = match number::<i64>(p, "batch-size")? {
            None => DEFAULT_BATCH_SIZE,
            Some(n) if n < 1 => {
                warnings.push(format!(
                    "`batch-size` = {n} is below 1; using {DEFAULT_BATCH_SIZE} as Flume does"
                ));
                DEFAULT_BATCH_SIZE
            }
            Some(n) => usize::try_from(n).unwrap_or(DEFAULT_BATCH_SIZE),
        };
        let connect_timeout = timeout(p, "connect-timeout", &mut warnings)?;
        let request_timeout = timeout(p, "request-timeout", &mut warnings)?;

        let deflate = match get("compression-type") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("deflate") => true,
            Some(v) if v.eq_ignore_ascii_case("none") => false,
            Some(v) => {
                warnings.push(format!(
                    "`compression-type` = `{v}` is unknown; no compression (as Flume does)"
                ));
                false
            }
        };
        let level = number::<u32>(p, "compression-level")?.unwrap_or(6);
        if level > 9 {
            return Err(ConfigError::new(
                "compression-level",
                format!("must be 0 to 9, not {level}"),
            ));
        }

        let ssl = boolean(p, "ssl")?.unwrap_or(false);
        let trust_all = boolean(p, "trust-all-certs")?.unwrap_or(false);
        for key in [
            "truststore-password",
            "truststore-type",
            "include-cipher-suites",
            "exclude-cipher-suites",
        ] {
            if p.contains_key(key) {
                warnings.push(format!(
                    "`{key}` is ignored: flumen reads PEM trust stores and offers rustls' \
                     default cipher suites"
                ));
            }
        }
        if p.contains_key("maxIoWorkers") {
            warnings.push("`maxIoWorkers` is ignored (as in Flume 1.11)".to_string());
        }
        let tls = if ssl {
            let versions =
                tls::versions(&list(p, "include-protocols"), &list(p, "exclude-protocols"))
                    .map_err(|e| ConfigError::new("include-protocols", e.to_string()))?;
            let config = tls::client_config(get("truststore").map(Path::new), trust_all, &versions)
                .map_err(|e| ConfigError::new("truststore", e.to_string()))?;
            Some(TlsConnector::from(config))
        } else {
            None
        };

        let protocol = match get("protocol") {
            None => Protocol::Compact,
            Some("binary") => Protocol::Binary,
            Some(v) => {
                if !v.eq_ignore_ascii_case("compact") {
                    warnings.push(format!(
                        "`protocol` = `{v}`: only `binary` and `compact` exist (Flume matches \
                         `binary` exactly); using compact"
                    ));
                }
                Protocol::Compact
            }
        };

        let host_selector = match get("host-selector") {
            None => HostSelector::RoundRobin,
            Some(v) => HostSelector::parse(v).ok_or_else(|| {
                ConfigError::new(
                    "host-selector",
                    format!("unknown host selector `{v}` (expected round_robin or random)"),
                )
            })?,
        };
        let backoff = boolean(p, "backoff")?.unwrap_or(false);
        let max_backoff = match number::<u64>(p, "maxBackoff")? {
            None => DEFAULT_MAX_BACKOFF,
            // Flume's selectors keep their default for 0.
            Some(0) => DEFAULT_MAX_BACKOFF,
            Some(ms) => Duration::from_millis(ms),
        };
        let max_attempts = match number::<i64>(p, "max-attempts")? {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(hosts.len()),
            Some(n) => {
                warnings.push(format!(
                    "`max-attempts` = {n} is below 1; using the number of hosts ({})",
                    hosts.len()
                ));
                hosts.len()
            }
            None => hosts.len(),
        };

        let config = Self {
            client_type,
            hosts,
            batch_size,
            connect_timeout,
            request_timeout,
            avro: avro::ClientOptions {
                tls: tls.clone(),
                connect_timeout,
                request_timeout,
                deflate_level: deflate.then_some(level),
                ..Default::default()
            },
            thrift: thrift::ClientConfig {
                protocol,
                connect_timeout,
                request_timeout,
                tls,
                ..Default::default()
            },
            host_selector,
            backoff,
            max_backoff,
            max_attempts,
        };
        Ok((config, warnings))
    }
}

fn type_name(t: ClientType) -> &'static str {
    match t {
        ClientType::Default => "default",
        ClientType::DefaultFailover => "default_failover",
        ClientType::DefaultLoadBalance => "default_loadbalance",
        ClientType::Thrift => "thrift",
    }
}

/// `host:port`; the host may be a bracketed IPv6 address.
fn parse_host_port(v: &str) -> Result<(String, u16), String> {
    let Some((host, port)) = v.rsplit_once(':') else {
        return Err(format!("`{v}` is not host:port"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').trim();
    if host.is_empty() {
        return Err(format!("`{v}` has no host name"));
    }
    match port.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("`{port}` is not a port number (1 to 65535)")),
    }
}

fn number<T: std::str::FromStr>(
    p: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>, ConfigError> {
    match p.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new(key, format!("`{v}` is not a valid number"))),
    }
}

fn boolean(p: &BTreeMap<String, String>, key: &str) -> Result<Option<bool>, ConfigError> {
    match p.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(ConfigError::new(
            key,
            format!("`{v}` is not a boolean (true or false)"),
        )),
    }
}

/// Flume replaces timeouts below one second by the default.
fn timeout(
    p: &BTreeMap<String, String>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<Duration, ConfigError> {
    Ok(match number::<u64>(p, key)? {
        None => DEFAULT_TIMEOUT,
        Some(ms) if ms < 1000 => {
            warnings.push(format!(
                "`{key}` = {ms} ms is below 1000 ms; using {} ms as Flume does",
                DEFAULT_TIMEOUT.as_millis()
            ));
            DEFAULT_TIMEOUT
        }
        Some(ms) => Duration::from_millis(ms),
    })
}

fn list(p: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    p.get(key)
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<(RpcClientConfig, Vec<String>), ConfigError> {
        RpcClientConfig::from_properties(&props(pairs))
    }

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        match parse(pairs) {
            Ok((c, _)) => panic!("accepted {pairs:?}: {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults() {
        let (c, w) = parse(&[("hosts", "h1"), ("hosts.h1", "example.com:4141")]).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.client_type, ClientType::Default);
        assert_eq!(
            c.hosts,
            [HostSpec {
                alias: "h1".into(),
                host: "example.com".into(),
                port: 4141
            }]
        );
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.connect_timeout, Duration::from_secs(20));
        assert_eq!(c.request_timeout, Duration::from_secs(20));
        assert_eq!(c.avro.deflate_level, None);
        assert!(c.avro.tls.is_none());
        assert_eq!(c.thrift.protocol, Protocol::Compact);
        assert_eq!(c.host_selector, HostSelector::RoundRobin);
        assert!(!c.backoff);
        assert_eq!(c.max_backoff, Duration::from_secs(30));
        assert_eq!(c.max_attempts, 1);
        let s = RpcClientConfig::single(ClientType::Thrift, "h", 9);
        assert_eq!((s.hosts[0].host.as_str(), s.hosts[0].port), ("h", 9));
        assert_eq!((s.batch_size, s.connect_timeout), (100, DEFAULT_TIMEOUT));
    }

    #[test]
    fn every_key() {
        let (c, w) = parse(&[
            ("client.type", "Default_LoadBalance"),
            ("hosts", "a b  c"),
            ("hosts.a", "10.0.0.1:1"),
            ("hosts.b", "[::1]:2"),
            ("hosts.c", "host-c:65535"),
            ("batch-size", "7"),
            ("connect-timeout", "1500"),
            ("request-timeout", "2500"),
            ("compression-type", "DEFLATE"),
            ("compression-level", "9"),
            ("ssl", "true"),
            ("trust-all-certs", "true"),
            ("include-protocols", "TLSv1.2 TLSv1.3"),
            ("exclude-protocols", "TLSv1.3"),
            ("truststore-password", "x"),
            ("truststore-type", "JKS"),
            ("include-cipher-suites", "X"),
            ("exclude-cipher-suites", "Y"),
            ("protocol", "binary"),
            ("host-selector", "RANDOM"),
            ("backoff", "TRUE"),
            ("maxBackoff", "5000"),
            ("max-attempts", "2"),
            ("maxIoWorkers", "4"),
            ("type", "avro"), // a sink key passed through: ignored
        ])
        .unwrap();
        assert_eq!(c.client_type, ClientType::DefaultLoadBalance);
        let hosts: Vec<_> = c
            .hosts
            .iter()
            .map(|h| format!("{}={}:{}", h.alias, h.host, h.port))
            .collect();
        assert_eq!(hosts, ["a=10.0.0.1:1", "b=::1:2", "c=host-c:65535"]);
        assert_eq!(c.batch_size, 7);
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.request_timeout, Duration::from_millis(2500));
        assert_eq!(c.avro.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.thrift.request_timeout, Duration::from_millis(2500));
        assert_eq!(c.avro.deflate_level, Some(9));
        assert!(c.avro.tls.is_some() && c.thrift.tls.is_some());
        assert_eq!(c.thrift.protocol, Protocol::Binary);
        assert_eq!(c.host_selector, HostSelector::Random);
        assert!(c.backoff);
        assert_eq!(c.max_backoff, Duration::from_millis(5000));
        assert_eq!(c.max_attempts, 2);
        assert_eq!(w.len(), 5, "{w:?}");
        for key in [
            "truststore-password",
            "truststore-type",
            "include-cipher-suites",
            "exclude-cipher-suites",
            "maxIoWorkers",
        ] {
            assert!(w.iter().any(|m| m.contains(key)), "{key}: {w:?}");
        }
        // Class names work too; failover defaults max-attempts to the host count.
        let (c, _) = parse(&[
            ("client.type", "org.apache.flume.api.FailoverRpcClient"),
            ("hosts", "a b"),
            ("hosts.a", "x:1"),
            ("hosts.b", "y:2"),
        ])
        .unwrap();
        assert_eq!(
            (c.client_type, c.max_attempts),
            (ClientType::DefaultFailover, 2)
        );
    }

    #[test]
    fn replaced_values_warn() {
        let (c, w) = parse(&[
            ("client.type", "thrift"),
            ("hosts", "a b"),
            ("hosts.a", "x:1"),
            ("batch-size", "0"),
            ("connect-timeout", "999"),
            ("request-timeout", "10"),
            ("protocol", "Binary"),
            ("compression-type", "gzip"),
            ("maxBackoff", "0"),
        ])
        .unwrap();
        assert_eq!(
            c.hosts.len(),
            1,
            "single-host type: hosts.b is not even needed"
        );
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.connect_timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.request_timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            c.thrift.protocol,
            Protocol::Compact,
            "Flume matches `binary` exactly"
        );
        assert_eq!(c.max_backoff, DEFAULT_MAX_BACKOFF);
        let joined = w.join("\n");
        for needle in [
            "`hosts`: the thrift client uses only the first host `a`",
            "`batch-size` = 0",
            "`connect-timeout` = 999 ms",
            "`request-timeout` = 10 ms",
            "`protocol` = `Binary`",
            "`compression-type` = `gzip`",
        ] {
            assert!(joined.contains(needle), "{needle}: {joined}");
        }
        let (c, w) = parse(&[
            ("client.type", "default_failover"),
            ("hosts", "a b"),
            ("hosts.a", "x:1"),
            ("hosts.b", "x:2"),
            ("max-attempts", "-1"),
        ])
        .unwrap();
        assert_eq!(c.max_attempts, 2);
        assert!(w[0].contains("`max-attempts` = -1"), "{w:?}");
    }

    #[test]
    fn errors_name_the_key() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[], "hosts", "missing required property `hosts`"),
            (&[("hosts", "a")], "hosts.a", "missing `hosts.a`"),
            (
                &[("hosts", "a"), ("hosts.a", "x")],
                "hosts.a",
                "not host:port",
            ),
            (
                &[("hosts", "a"), ("hosts.a", "x:0")],
                "hosts.a",
                "not a port",
            ),
            (
                &[("hosts", "a"), ("hosts.a", "x:70000")],
                "hosts.a",
                "not a port",
            ),
            (&[("hosts", "a"), ("hosts.a", ":1")], "hosts.a", "no host"),
            (
                &[
                    ("client.type", "default_loadbalance"),
                    ("hosts", "a"),
                    ("hosts.a", "x:1"),
                ],
                "hosts",
                "at least two hosts",
            ),
            (
                &[("client.type", "avro"), ("hosts", "a"), ("hosts.a", "x:1")],
                "client.type",
                "unknown client type `avro`",
            ),
            (
                &[
                    ("client.type", "default_loadbalance"),
                    ("hosts", "a b"),
                    ("hosts.a", "x:1"),
                    ("hosts.b", "x:2"),
                    ("host-selector", "least_used"),
                ],
                "host-selector",
                "unknown host selector `least_used`",
            ),
            (
                &[("hosts", "a"), ("hosts.a", "x:1"), ("batch-size", "many")],
                "batch-size",
                "not a valid number",
            ),
            (
                &[("hosts", "a"), ("hosts.a", "x:1"), ("backoff", "yes")],
                "backoff",
                "not a boolean",
            ),
            (
                &[
                    ("hosts", "a"),
                    ("hosts.a", "x:1"),
                    ("compression-level", "10"),
                ],
                "compression-level",
                "0 to 9",
            ),
            (
                &[
                    ("hosts", "a"),
                    ("hosts.a", "x:1"),
                    ("ssl", "true"),
                    ("truststore", "/nonexistent/ca.pem"),
                ],
                "truststore",
                "cannot read truststore",
            ),
            (
                &[
                    ("hosts", "a"),
                    ("hosts.a", "x:1"),
                    ("ssl", "true"),
                    ("trust-all-certs", "true"),
                    ("exclude-protocols", "TLSv1.2 TLSv1.3"),
                ],
                "include-protocols",
                "no TLS protocol version",
            ),
        ];
        for (pairs, key, message) in cases {
            let e = err(pairs);
            assert_eq!(e.key, *key, "{pairs:?}: {e}");
            assert!(e.message.contains(message), "{pairs:?}: {e}");
            assert!(e.to_string().starts_with(&format!("`{key}`: ")), "{e}");
        }
    }
}
