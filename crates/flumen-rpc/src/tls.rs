//! TLS for Flume's RPC (`ssl = true`; `flume-rpc.md` A.9 for Avro, B.3 for Thrift): rustls
//! configurations built from PEM files, with Flume's client behaviour — the server certificate
//! chain is checked against the trust store (or not at all with `trust-all-certs`), the host
//! name is never checked, and the server does not ask for client certificates. Protocol
//! neutral: the Avro client and server put Netty frames inside (under a zlib layer with
//! deflate, see [`crate::zlib`]), the Thrift ones put `TFramedTransport` frames inside. TLS
//! starts with the first byte of the connection (no STARTTLS).
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

/// Longest a server waits for a client's TLS handshake before dropping the connection.
pub const SERVER_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

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
             (keytool -importkeystore -srckeystore ks.jks -destkeystore ks.p12 \
             -deststoretype PKCS12, then openssl pkcs12 -in ks.p12 -nodes -out {what}.pem)",
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

/// The server side of a TLS handshake on a fresh connection, bounded by
/// [`SERVER_HANDSHAKE_TIMEOUT`] and abandoned on `shutdown` (`Ok(None)`).
///
/// # Errors
/// A failed handshake (e.g. a plain-text client, an untrusting client) or the timeout.
pub async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    shutdown: &tokio_util::sync::CancellationToken,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<S>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::select! {
        () = shutdown.cancelled() => Ok(None),
        r = tokio::time::timeout(SERVER_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match r {
            Ok(Ok(tls)) => Ok(Some(tls)),
            Ok(Err(e)) => Err(std::io::Error::new(e.kind(), format!("TLS handshake failed: {e}"))),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")),
        },
    }
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

/// Test certificates made with the `openssl` CLI (no certificate crate in the tree).
#[cfg(test)]
pub(crate) mod test_certs {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory removed on drop (flumen-rpc has no `tempfile`).
    pub(crate) struct Scratch(pub PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Paths of a CA and a server certificate it signed, for the name `flumen.test` (so a
    /// host-name check on 127.0.0.1 would fail).
    pub(crate) struct Certs {
        /// Keeps the files alive.
        pub _dir: Scratch,
        /// PEM: leaf certificate, then its key.
        pub keystore: PathBuf,
        /// PEM: the CA certificate.
        pub ca: PathBuf,
        /// PEM: the leaf certificate alone (a wrong trust store: it is no CA).
        pub leaf: PathBuf,
    }

    fn args(v: &[String]) -> Vec<&str> {
        v.iter()
            .map(String::as_str)
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// `None` (with a note on stderr) when the `openssl` CLI is missing.
    pub(crate) fn make() -> Option<Certs> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flumen-rpc-certs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).ok()?;
        let dir = Scratch(dir);
        let run = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let cmd = |s: String| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
        let ca = cmd(format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=flumen-test-CA"
        ));
        let csr = cmd(format!(
            "req {ec} -keyout leaf.key -out leaf.csr -subj /CN=flumen.test"
        ));
        let sign = cmd(
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                        -out leaf.pem -days 2 -extfile leaf.ext"
                .replace("  ", " "),
        );
        std::fs::write(
            dir.0.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:flumen.test\n",
        )
        .ok()?;
        if !(run(&args(&ca)) && run(&args(&csr)) && run(&args(&sign))) {
            eprintln!("SKIPPED: openssl CLI unavailable; TLS not tested");
            return None;
        }
        let path = |n: &str| dir.0.join(n);
        let mut keystore = std::fs::read(path("leaf.pem")).ok()?;
        keystore.extend(std::fs::read(path("leaf.key")).ok()?);
        std::fs::write(path("keystore.pem"), keystore).ok()?;
        Some(Certs {
            keystore: path("keystore.pem"),
            ca: path("ca.pem"),
            leaf: path("leaf.pem"),
            _dir: dir,
        })
    }

    /// A connector trusting `trust` (PEM).
    pub(crate) fn connector(trust: &Path) -> super::TlsConnector {
        let v = super::versions(&[], &[]).unwrap();
        super::TlsConnector::from(super::client_config(Some(trust), false, &v).unwrap())
    }

    /// An acceptor serving the keystore.
    pub(crate) fn acceptor(keystore: &Path) -> super::TlsAcceptor {
        let v = super::versions(&[], &[]).unwrap();
        super::TlsAcceptor::from(super::server_config(keystore, &v).unwrap())
    }
}
