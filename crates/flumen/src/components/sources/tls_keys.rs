//! The server-side TLS keys of the network sources (avro, thrift, syslogtcp,
//! multiport_syslogtcp; `flume-rpc.md` A.9, B.3; `flume-components.md` §2), one struct each
//! source includes with `#[serde(rename = "*")]` (flumen-config's same-keys field): `ssl`,
//! `keystore` (PEM: certificate chain + unencrypted key), `include-protocols` /
//! `exclude-protocols`. The other Flume keys — `keystore-password`, `keystore-type`,
//! `include-cipher-suites`, `exclude-cipher-suites` — are accepted and ignored with a warning.

use std::path::Path;

use flumen_config::{Diagnostic, Props};
use flumen_rpc::tls::{self, TlsAcceptor};
use serde::Deserialize;

use super::avro::list;

/// The TLS keys of a network source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TlsServerKeys {
    /// Serve TLS. Flume key: `ssl`. Default: false.
    pub ssl: bool,
    /// PEM file with the certificate chain and the (unencrypted) private key; Java keystores
    /// must be converted (see `flumen_rpc::tls`). Flume key: `keystore`. Required with
    /// `ssl = true`.
    pub keystore: Option<String>,
    /// Flume key: `keystore-password`. Ignored with a warning: PEM keys are read unencrypted.
    #[serde(rename = "keystore-password")]
    pub keystore_password: Option<String>,
    /// Flume key: `keystore-type` (JKS). Ignored with a warning: the file must be PEM.
    #[serde(rename = "keystore-type")]
    pub keystore_type: Option<String>,
    /// TLS versions not to offer (`TLSv1.2`, `TLSv1.3`). Flume key: `exclude-protocols`.
    #[serde(rename = "exclude-protocols")]
    pub exclude_protocols: Option<String>,
    /// TLS versions to offer (default both). Flume key: `include-protocols`.
    #[serde(rename = "include-protocols")]
    pub include_protocols: Option<String>,
    /// Flume key: `exclude-cipher-suites`. Ignored with a warning.
    #[serde(rename = "exclude-cipher-suites")]
    pub exclude_cipher_suites: Option<String>,
    /// Flume key: `include-cipher-suites`. Ignored with a warning.
    #[serde(rename = "include-cipher-suites")]
    pub include_cipher_suites: Option<String>,
}

impl TlsServerKeys {
    /// Configuration errors: `ssl = true` without a keystore; no protocol version left.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if !self.ssl {
            return errors;
        }
        if self.keystore.as_deref().is_none_or(|k| k.trim().is_empty()) {
            errors.push(props.error(
                "keystore",
                "`ssl = true` needs `keystore` (a PEM file with the certificate chain and the private key)",
            ));
        }
        if let Err(e) = tls::versions(
            &list(&self.include_protocols),
            &list(&self.exclude_protocols),
        ) {
            let key = if self.include_protocols.is_some() {
                "include-protocols"
            } else {
                "exclude-protocols"
            };
            errors.push(props.error(key, e.to_string()));
        }
        errors
    }

    /// The acceptor for `ssl = true` (`None` without TLS); reads the keystore, so a JKS or an
    /// unreadable file is a located error with the conversion hint.
    pub fn acceptor(&self, props: &Props) -> Result<Option<TlsAcceptor>, Vec<Diagnostic>> {
        let Some(keystore) = self.keystore.as_deref().filter(|_| self.ssl) else {
            return Ok(None);
        };
        let versions = tls::versions(
            &list(&self.include_protocols),
            &list(&self.exclude_protocols),
        )
        .map_err(|e| vec![props.error("include-protocols", e.to_string())])?;
        let config = tls::server_config(Path::new(keystore.trim()), &versions)
            .map_err(|e| vec![props.error("keystore", e.to_string())])?;
        Ok(Some(TlsAcceptor::from(config)))
    }

    /// Warnings for the Flume TLS keys flumen accepts but does not use.
    pub fn warnings(props: &Props) -> Vec<Diagnostic> {
        let ignored = [
            (
                "keystore-password",
                "the PEM keystore's private key must be unencrypted",
            ),
            ("keystore-type", "the keystore is always read as PEM"),
            (
                "include-cipher-suites",
                "flumen offers rustls' default cipher suites",
            ),
            (
                "exclude-cipher-suites",
                "flumen offers rustls' default cipher suites",
            ),
        ];
        ignored
            .iter()
            .filter(|(key, _)| props.get(key).is_some())
            .map(|(key, why)| props.warning(key, format!("`{key}` is ignored: {why}")))
            .collect()
    }
}
