//! TLS for Avro RPC (`ssl = true`, `flume-rpc.md` A.9): rustls configurations built from PEM
//! files, with Flume's client behaviour — the server certificate chain is checked against the
//! trust store (or not at all with `trust-all-certs`), the host name is never checked, and the
//! server does not ask for client certificates.
//!
//! Java keystores (JKS, PKCS12) are not read; convert them once to PEM:
//! `keytool -importkeystore -srckeystore ks.jks -destkeystore ks.p12 -deststoretype PKCS12`
//! then `openssl pkcs12 -in ks.p12 -nodes -out keystore.pem` (certificate chain + key), and
//! for a trust store `keytool -exportcert -rfc -keystore ts.jks -alias <ca> -file ca.pem`.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where Debian and most Linux distributions keep the system CA bundle, used when the client
/// has no trust store (Flume falls back to the JVM's CAs).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS protocol versions from Flume's `include-protocols` / `exclude-protocols` lists
/// (`TLSv1.2`, `TLSv1.3`; older versions are never offered).
///
/// # Errors
/// Nothing left to offer.
pub fn versions(
    include: &[String],
    exclude: &[String],
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let all = [
        ("TLSv1.2", &rustls::version::TLS12),
        ("TLSv1.3", &rustls::version::TLS13),
    ];
    let v: Vec<_> = all
        .iter()
        .filter(|(n, _)| include.is_empty() || include.iter().any(|i| i == n))
        .filter(|(n, _)| !exclude.iter().any(|e| e == n))
        .map(|(_, v)| *v)
        .collect();
    if v.is_empty() {
        return Err(TlsError(
            "no TLS protocol version left to offer (flumen supports TLSv1.2 and TLSv1.3)".into(),
        ));
    }
    Ok(v)
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    let data = std::fs::read(path)
        .map_err(|e| TlsError(format!("cannot read {what} {}: {e}", path.display())))?;
    if !data.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(TlsError(format!(
            "{what} {} is not a PEM file; convert a Java keystore with keytool and openssl \
             (see the avro source documentation)",
            path.display()
        )));
    }
    Ok(data)
}

/// A server configuration from a PEM file holding the certificate chain and the private key.
///
/// # Errors
/// Unreadable or unusable PEM.
pub fn server_config(
    keystore: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, TlsError> {
    let pem = read_pem(keystore, "keystore")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("bad certificate in {}: {e}", keystore.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "no certificate in keystore {}",
            keystore.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError(format!(
            "no usable private key in keystore {}: {e}",
            keystore.display()
        ))
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("keystore {}: {e}", keystore.display())))?;
    Ok(Arc::new(config))
}

/// A client configuration: trust the CAs of `truststore` (PEM), or the system CA bundle when
/// `None`, or anything with `trust_all`. The host name is never verified, as in Flume.
///
/// # Errors
/// Unreadable or unusable PEM.
pub fn client_config(
    truststore: Option<&Path>,
    trust_all: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = if trust_all {
        Arc::new(TrustAll(algorithms))
    } else {
        let path = truststore.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
        let pem = read_pem(path, "truststore")?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| TlsError(format!("bad certificate in {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| TlsError(format!("truststore {}: {e}", path.display())))?;
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsError(format!("truststore {}: {e}", path.display())))?;
        Arc::new(NoHostName(inner))
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name given to rustls for SNI: the host as configured (rustls needs one; it is not
/// verified).
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::from(std::net::IpAddr::from([127, 0, 0, 1])))
}

/// Chain verification without the host-name check (Flume's client does none).
#[derive(Debug)]
struct NoHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `trust-all-certs = true`: any certificate; handshake signatures are still checked.
#[derive(Debug)]
struct TrustAll(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
