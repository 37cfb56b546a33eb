//! The client-side TLS keys of the RPC sinks (avro, thrift; `flume-rpc.md` A.9, B.3), one
//! struct both include with `#[serde(rename = "*")]` (flumen-config's same-keys field): `ssl`,
//! `truststore` (a PEM CA file; the system CAs without it), `trust-all-certs`,
//! `include-protocols` / `exclude-protocols`. `truststore-password`, `truststore-type` and the
//! cipher-suite lists are accepted and ignored with a warning. As in Flume, the server's host
//! name is not checked.

use std::path::Path;

use flumen_config::{Diagnostic, Props};
use flumen_rpc::tls::{self, TlsConnector};
use serde::Deserialize;

use crate::components::sources::avro::list;

/// The TLS keys of an RPC sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TlsClientKeys {
    /// Connect with TLS. Flume key: `ssl`. Default: false.
    pub ssl: bool,
    /// Accept any server certificate. Flume key: `trust-all-certs` (the avro sink's; flumen
    /// also takes it on the thrift sink). Default: false.
    #[serde(rename = "trust-all-certs")]
    pub trust_all_certs: bool,
    /// PEM file of trusted CA certificates; without it the system CA bundle is used. Flume key:
    /// `truststore`.
    pub truststore: Option<String>,
    /// Flume key: `truststore-password`. Ignored with a warning: PEM needs none.
    #[serde(rename = "truststore-password")]
    pub truststore_password: Option<String>,
    /// Flume key: `truststore-type` (JKS). Ignored with a warning: the file must be PEM.
    #[serde(rename = "truststore-type")]
    pub truststore_type: Option<String>,
    /// TLS versions not to offer. Flume key: `exclude-protocols`.
    #[serde(rename = "exclude-protocols")]
    pub exclude_protocols: Option<String>,
    /// TLS versions to offer (default TLSv1.2 and TLSv1.3). Flume key: `include-protocols`.
    #[serde(rename = "include-protocols")]
    pub include_protocols: Option<String>,
    /// Flume key: `exclude-cipher-suites`. Ignored with a warning.
    #[serde(rename = "exclude-cipher-suites")]
    pub exclude_cipher_suites: Option<String>,
    /// Flume key: `include-cipher-suites`. Ignored with a warning.
    #[serde(rename = "include-cipher-suites")]
    pub include_cipher_suites: Option<String>,
}

impl TlsClientKeys {
    /// The connector for `ssl = true` (`None` without TLS); an unreadable trust store or no
    /// protocol version left is a located error.
    pub fn connector(&self, props: &Props) -> Result<Option<TlsConnector>, Vec<Diagnostic>> {
        if !self.ssl {
            return Ok(None);
        }
        let versions = tls::versions(
            &list(&self.include_protocols),
            &list(&self.exclude_protocols),
        )
        .map_err(|e| vec![props.error("include-protocols", e.to_string())])?;
        let config = tls::client_config(
            self.truststore.as_deref().map(Path::new),
            self.trust_all_certs,
            &versions,
        )
        .map_err(|e| vec![props.error("truststore", e.to_string())])?;
        Ok(Some(TlsConnector::from(config)))
    }

    /// Warnings for the Flume TLS keys flumen accepts but does not use.
    pub fn warnings(props: &Props) -> Vec<Diagnostic> {
        [
            "truststore-password",
            "truststore-type",
            "include-cipher-suites",
            "exclude-cipher-suites",
        ]
        .iter()
        .filter(|key| props.get(key).is_some())
        .map(|key| {
            props.warning(
                key,
                format!(
                    "`{key}` is ignored: flumen reads PEM trust stores and offers rustls' \
                     default cipher suites"
                ),
            )
        })
        .collect()
    }
}
