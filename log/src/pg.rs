//! Connecting to PostgreSQL: the connection settings and the TLS connector travel together,
//! so that every connection (the pools, the LISTEN connections, the relay's) is made the
//! same way, encrypted and verified when the configuration says so.

use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};

/// The TLS connector: rustls, on ring.
pub use tokio_postgres_rustls::MakeRustlsConnect as Tls;

/// The stream of a connection made with [`Tls`].
pub type TlsStream = <Tls as MakeTlsConnect<Socket>>::Stream;

/// Where to connect, and how.
#[derive(Clone)]
pub struct PgConnect {
    pub config: Config,
    pub tls: Tls,
}

impl PgConnect {
    /// Without TLS (`sslmode=disable`).
    pub fn plain(mut config: Config) -> Self {
        config.ssl_mode(SslMode::Disable);
        Self {
            config,
            tls: Tls::new(client_config(rustls::RootCertStore::empty())),
        }
    }

    pub async fn connect(
        &self,
    ) -> Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
        self.config.connect(self.tls.clone()).await
    }
}

/// rustls' ring provider. rustls 0.23.48 deprecates it because ring has no post-quantum key
/// exchange; its other choice, aws-lc-rs, is a large C build this deployment avoids, and the
/// link it protects (service to database, inside one network) is not one whose traffic must
/// stay secret for decades. Revisit when ring gains ML-KEM or aws-lc-rs is wanted anyway.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration on ring trusting `roots`, without a client certificate.
pub fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
