//! Configuration of the `http` source: Flume's keys (`flume-components.md` §3.13, §11, §2),
//! the deprecated spellings, Jetty's pass-through prefixes, and flumen's `maxRequestSize`.

use std::collections::BTreeMap;
use std::time::Duration;

use flumen_config::{Diagnostic, Props};
use serde::Deserialize;

use super::blob;
use crate::components::sources::tls_keys::TlsServerKeys;

/// Default `maxRequestSize`: 64 MiB, after decompression.
pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 64 * 1024 * 1024;
/// Default `handler.maxBlobLength` of the morphline `BlobHandler`.
pub const DEFAULT_MAX_BLOB_LENGTH: u64 = 100_000_000;
/// Jetty's default `ServerConnector.idleTimeout` (ms).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;

/// The Jetty bean prefixes Flume passes through (`HTTPSource.start`).
pub const JETTY_PREFIXES: [&str; 4] = [
    "QueuedThreadPool",
    "HttpConfiguration",
    "SslContextFactory",
    "ServerConnector",
];

/// Which handler turns requests into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerKind {
    /// `org.apache.flume.source.http.JSONHandler` (default): a JSON array of events, or
    /// newline-delimited JSON with `Content-Type: application/x-ndjson`.
    Json,
    /// `org.apache.flume.sink.solr.morphline.BlobHandler`: body = one event, cut at
    /// `max_blob_length`.
    MorphlineBlob {
        /// `handler.maxBlobLength`.
        max_blob_length: usize,
    },
    /// `org.apache.flume.source.http.BLOBHandler`: body = one event, query parameters as
    /// headers, `mandatory` parameters required.
    CoreBlob {
        /// `handler.mandatoryParameters`, split on commas.
        mandatory: Vec<String>,
    },
}

/// The `handler` values flumen knows: Flume's class names, their simple names, and short
/// aliases (any case for the short forms).
pub(crate) fn handler_named(name: &str) -> Option<&'static str> {
    let n = name.trim();
    match n {
        "org.apache.flume.source.http.JSONHandler" => return Some("json"),
        "org.apache.flume.sink.solr.morphline.BlobHandler" => return Some("morphline-blob"),
        "org.apache.flume.source.http.BLOBHandler" => return Some("blob"),
        _ => {}
    }
    match n.to_ascii_lowercase().as_str() {
        "json" | "jsonhandler" => Some("json"),
        "blobhandler" => {
            // Case decides between the two simple names, as the classes differ only in case.
            if n == "BLOBHandler" {
                Some("blob")
            } else {
                Some("morphline-blob")
            }
        }
        "blob" => Some("morphline-blob"),
        _ => None,
    }
}

/// Configuration of the `http` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HttpSourceConfig {
    /// Address to listen on. Flume key: `bind`. Default: `0.0.0.0`.
    pub bind: String,
    /// TCP port. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Handler class. Flume key: `handler`. Default:
    /// `org.apache.flume.source.http.JSONHandler`; also
    /// `org.apache.flume.sink.solr.morphline.BlobHandler`, `org.apache.flume.source.http.BLOBHandler`
    /// (or `json` / `blob`).
    pub handler: String,
    /// Morphline `BlobHandler`: longest body kept. Flume key: `handler.maxBlobLength`.
    /// Default: 100000000.
    #[serde(rename = "handler.maxBlobLength")]
    pub max_blob_length: Option<u64>,
    /// Core `BLOBHandler`: required query parameters, comma-separated. Flume key:
    /// `handler.mandatoryParameters`. Default: none.
    #[serde(rename = "handler.mandatoryParameters")]
    pub mandatory_parameters: Option<String>,
    /// Largest request body accepted, in bytes, counted after gzip decompression; larger
    /// requests get HTTP 413. flumen key: `maxRequestSize`. Default: 67108864 (64 MiB).
    #[serde(rename = "maxRequestSize")]
    pub max_request_size: u64,
    /// Serve HTTPS. Flume key: `ssl` (deprecated: `enableSSL`). Default: false.
    pub ssl: Option<bool>,
    /// Deprecated spelling of `ssl`.
    #[serde(rename = "enableSSL")]
    pub enable_ssl: Option<bool>,
    /// PEM file with the certificate chain and the unencrypted private key. Flume key:
    /// `keystore`. Required with `ssl = true`.
    pub keystore: Option<String>,
    /// Flume key: `keystore-password` (deprecated: `keystorePassword`). Ignored with a warning.
    #[serde(rename = "keystore-password")]
    pub keystore_password: Option<String>,
    /// Deprecated spelling of `keystore-password`.
    #[serde(rename = "keystorePassword")]
    pub keystore_password_old: Option<String>,
    /// Flume key: `keystore-type`. Ignored with a warning (always PEM).
    #[serde(rename = "keystore-type")]
    pub keystore_type: Option<String>,
    /// TLS versions not to offer. Flume key: `exclude-protocols` (deprecated:
    /// `excludeProtocols`). Default: SSLv3 (never offered anyway).
    #[serde(rename = "exclude-protocols")]
    pub exclude_protocols: Option<String>,
    /// Deprecated spelling of `exclude-protocols`.
    #[serde(rename = "excludeProtocols")]
    pub exclude_protocols_old: Option<String>,
    /// TLS versions to offer. Flume key: `include-protocols`. Default: TLSv1.2 and TLSv1.3.
    #[serde(rename = "include-protocols")]
    pub include_protocols: Option<String>,
    /// Flume key: `exclude-cipher-suites`. Ignored with a warning.
    #[serde(rename = "exclude-cipher-suites")]
    pub exclude_cipher_suites: Option<String>,
    /// Flume key: `include-cipher-suites`. Ignored with a warning.
    #[serde(rename = "include-cipher-suites")]
    pub include_cipher_suites: Option<String>,
    /// Jetty's thread pool size, mapped to the most requests handled at once. Flume key:
    /// `QueuedThreadPool.maxThreads`. Default: unlimited.
    #[serde(rename = "QueuedThreadPool.maxThreads")]
    pub max_threads: Option<usize>,
    /// Jetty's connector idle timeout in ms: a connection with no request in progress is
    /// closed after it. Flume key: `ServerConnector.idleTimeout`. Default: 30000.
    #[serde(rename = "ServerConnector.idleTimeout")]
    pub idle_timeout: Option<u64>,
    /// Other `QueuedThreadPool.*` keys: accepted, no effect (warned).
    #[serde(rename = "QueuedThreadPool")]
    pub jetty_thread_pool: BTreeMap<String, String>,
    /// `HttpConfiguration.*`: accepted, no effect (warned).
    #[serde(rename = "HttpConfiguration")]
    pub jetty_http: BTreeMap<String, String>,
    /// `SslContextFactory.*`: accepted, no effect (warned).
    #[serde(rename = "SslContextFactory")]
    pub jetty_ssl: BTreeMap<String, String>,
    /// Other `ServerConnector.*` keys: accepted, no effect (warned).
    #[serde(rename = "ServerConnector")]
    pub jetty_connector: BTreeMap<String, String>,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0".into(),
            port: None,
            handler: "org.apache.flume.source.http.JSONHandler".into(),
            max_blob_length: None,
            mandatory_parameters: None,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            ssl: None,
            enable_ssl: None,
            keystore: None,
            keystore_password: None,
            keystore_password_old: None,
            keystore_type: None,
            exclude_protocols: None,
            exclude_protocols_old: None,
            include_protocols: None,
            exclude_cipher_suites: None,
            include_cipher_suites: None,
            max_threads: None,
            idle_timeout: None,
            jetty_thread_pool: BTreeMap::new(),
            jetty_http: BTreeMap::new(),
            jetty_ssl: BTreeMap::new(),
            jetty_connector: BTreeMap::new(),
        }
    }
}

impl HttpSourceConfig {
    /// `ssl`, or the deprecated `enableSSL` when `ssl` is absent (Flume's precedence).
    pub fn ssl_enabled(&self) -> bool {
        self.ssl.or(self.enable_ssl).unwrap_or(false)
    }

    fn exclude(&self) -> &Option<String> {
        if self.exclude_protocols.is_some() {
            &self.exclude_protocols
        } else {
            &self.exclude_protocols_old
        }
    }

    /// The TLS keys in the shape the other network sources share (the deprecated spellings
    /// resolved), for its checks and acceptor.
    pub(crate) fn tls_keys(&self) -> TlsServerKeys {
        TlsServerKeys {
            ssl: self.ssl_enabled(),
            keystore: self.keystore.clone(),
            include_protocols: self.include_protocols.clone(),
            exclude_protocols: self.exclude().clone(),
            ..TlsServerKeys::default()
        }
    }

    /// The handler, once validated.
    pub fn handler_kind(&self) -> Option<HandlerKind> {
        Some(match handler_named(&self.handler)? {
            "json" => HandlerKind::Json,
            "blob" => HandlerKind::CoreBlob {
                mandatory: blob::mandatory_list(self.mandatory_parameters.as_deref().unwrap_or("")),
            },
            _ => HandlerKind::MorphlineBlob {
                max_blob_length: usize::try_from(
                    self.max_blob_length.unwrap_or(DEFAULT_MAX_BLOB_LENGTH),
                )
                .unwrap_or(usize::MAX),
            },
        })
    }

    /// `ServerConnector.idleTimeout` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS))
    }

    /// Required keys, ranges, the handler and its keys, TLS; every problem found.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if self.bind.trim().is_empty() {
            errors.push(props.error("bind", "`bind` is empty"));
        }
        if self.max_request_size == 0 {
            errors.push(props.error("maxRequestSize", "`maxRequestSize` must be at least 1"));
        }
        if self.max_threads == Some(0) {
            errors.push(props.error(
                "QueuedThreadPool.maxThreads",
                "`QueuedThreadPool.maxThreads` must be at least 1",
            ));
        }
        if self.idle_timeout == Some(0) {
            errors.push(props.error(
                "ServerConnector.idleTimeout",
                "`ServerConnector.idleTimeout` must be at least 1 ms",
            ));
        }
        match handler_named(&self.handler) {
            None => errors.push(props.error(
                "handler",
                format!(
                    "unknown handler `{}`; flumen has org.apache.flume.source.http.JSONHandler, \
                     org.apache.flume.sink.solr.morphline.BlobHandler and \
                     org.apache.flume.source.http.BLOBHandler (custom Java handlers cannot be loaded)",
                    self.handler.trim()
                ),
            )),
            Some(kind) => {
                if self.max_blob_length == Some(0) {
                    errors.push(props.error(
                        "handler.maxBlobLength",
                        "`handler.maxBlobLength` must be greater than zero",
                    ));
                }
                // Handler keys that the chosen handler does not read are typos or leftovers.
                if kind != "morphline-blob" && self.max_blob_length.is_some() {
                    errors.push(props.error(
                        "handler.maxBlobLength",
                        "`handler.maxBlobLength` applies to org.apache.flume.sink.solr.morphline.BlobHandler only",
                    ));
                }
                if kind != "blob" && self.mandatory_parameters.is_some() {
                    errors.push(props.error(
                        "handler.mandatoryParameters",
                        "`handler.mandatoryParameters` applies to org.apache.flume.source.http.BLOBHandler only",
                    ));
                }
            }
        }
        errors.extend(self.tls_keys().validate(props));
        errors
    }

    /// Warnings: deprecated spellings, ignored TLS keys, Jetty keys without effect.
    pub fn warnings(&self, props: &Props) -> Vec<Diagnostic> {
        let mut w = TlsServerKeys::warnings(props);
        for (old, new) in [
            ("enableSSL", "ssl"),
            ("excludeProtocols", "exclude-protocols"),
            ("keystorePassword", "keystore-password"),
        ] {
            if props.get(old).is_some() {
                let extra = if props.get(new).is_some() {
                    format!("; `{new}` is set too and wins")
                } else {
                    String::new()
                };
                w.push(props.warning(old, format!("`{old}` is deprecated, use `{new}`{extra}")));
            }
        }
        if self.keystore_password_old.is_some() {
            w.push(props.warning(
                "keystorePassword",
                "`keystorePassword` is ignored: the PEM keystore's private key must be unencrypted",
            ));
        }
        // `handler` has a value of its own, so the deserializer hands `handler.*` keys to it
        // and says nothing about typos there; name them here.
        for (key, _, _) in props.iter() {
            let rest = key.strip_prefix("handler.");
            if rest.is_some_and(|r| !["maxBlobLength", "mandatoryParameters"].contains(&r)) {
                w.push(props.warning(
                    key,
                    format!(
                        "unknown property `{key}`; the handlers read `handler.maxBlobLength` \
                         (BlobHandler) and `handler.mandatoryParameters` (BLOBHandler)"
                    ),
                ));
            }
        }
        for (prefix, map) in [
            ("QueuedThreadPool", &self.jetty_thread_pool),
            ("HttpConfiguration", &self.jetty_http),
            ("SslContextFactory", &self.jetty_ssl),
            ("ServerConnector", &self.jetty_connector),
        ] {
            for key in map.keys() {
                let full = format!("{prefix}.{key}");
                w.push(props.warning(
                    &full,
                    format!("`{full}` is a Jetty setting and has no effect in flumen"),
                ));
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names() {
        assert_eq!(
            handler_named("org.apache.flume.source.http.JSONHandler"),
            Some("json")
        );
        assert_eq!(
            handler_named(" org.apache.flume.sink.solr.morphline.BlobHandler "),
            Some("morphline-blob")
        );
        assert_eq!(
            handler_named("org.apache.flume.source.http.BLOBHandler"),
            Some("blob")
        );
        assert_eq!(handler_named("JSON"), Some("json"));
        assert_eq!(handler_named("BlobHandler"), Some("morphline-blob"));
        assert_eq!(handler_named("BLOBHandler"), Some("blob"));
        assert_eq!(handler_named("com.example.MyHandler"), None);
    }
}
