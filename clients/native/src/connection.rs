//! The QUIC control connection to a host: TLS that either pins the host's certificate
//! (paired) or, only while pairing, accepts any and remembers which one it saw (SPAKE2 then
//! proves it is the host's). What is said on the control stream is core's state machine.

use crate::identity::{Identity, sha256};
use anyhow::Context;
use parking_lot::Mutex;
use punktfunk_core::control::ALPN;
use punktfunk_core::control::client::{ClientControl, ClientEvent};
use punktfunk_net::monotonic_us;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug)]
struct HostCertificate {
    /// The paired host's fingerprint; `None` while pairing.
    pinned: Option<[u8; 32]>,
    seen: Mutex<Option<[u8; 32]>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for HostCertificate {
    fn verify_server_cert(
        &self,
        cert: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = sha256(cert.as_ref());
        *self.seen.lock() = Some(fp);
        match self.pinned {
            Some(p) if p != fp => Err(rustls::Error::General(
                "the host's certificate is not the one paired with: pair again if the host was reinstalled".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The quinn side of a control connection; what is said is core's [`ClientControl`].
pub struct Connection {
    /// Kept open for the connection's lifetime.
    _endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    pub control: ClientControl,
    /// The host certificate's fingerprint, as seen in the handshake.
    pub host_fp: [u8; 32],
    pub paired: bool,
    pub host_name: String,
}

impl Connection {
    /// Connects and says hello. `pinned` is the paired host's fingerprint (`None` to pair).
    pub async fn open(addr: SocketAddr, identity: &Identity, pinned: Option<[u8; 32]>, name: &str) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(HostCertificate { pinned, seen: Mutex::new(None), algorithms: provider.signature_verification_algorithms });
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone()));
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_client_auth_cert(vec![CertificateDer::from(identity.cert_der.clone())], key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(std::time::Duration::from_secs(10).try_into()?))
            .keep_alive_interval(Some(std::time::Duration::from_secs(2)));
        config.transport_config(Arc::new(transport));
        let bind: SocketAddr = if addr.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
        let mut endpoint = quinn::Endpoint::client(bind)?;
        endpoint.set_default_client_config(config);
        let conn = endpoint.connect(addr, "punktfunk-host")?.await.with_context(|| format!("connecting to {addr}"))?;
        let host_fp = verifier.seen.lock().context("the host showed no certificate")?;
        let (send, recv) = conn.open_bi().await?;
        let control = ClientControl::new(name);
        let mut c = Self { _endpoint: endpoint, conn, send, recv, control, host_fp, paired: false, host_name: String::new() };
        c.flush().await?;
        match c.next().await? {
            Some(ClientEvent::Welcome { paired, name }) => (c.paired, c.host_name) = (paired, name),
            Some(ClientEvent::Refused { reason }) => anyhow::bail!("the host refused: {reason}"),
            other => anyhow::bail!("unexpected answer to hello: {other:?}"),
        }
        Ok(c)
    }

    /// Sends what the control state machine queued. Cancel-safe: bytes leave the queue only
    /// once written.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        while !self.control.output().is_empty() {
            let n = self.send.write(self.control.output()).await?;
            self.control.consume_output(n);
        }
        Ok(())
    }

    /// The next thing the host said; `None` when it closed the stream. Cancel-safe.
    pub async fn next(&mut self) -> anyhow::Result<Option<ClientEvent>> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(e) = self.control.poll_event() {
                return Ok(Some(e));
            }
            match self.recv.read(&mut buf).await? {
                Some(n) => self.control.push(&buf[..n], monotonic_us())?,
                None => return Ok(None),
            }
            // Answers the state machine gives by itself (a pairing confirmation).
            self.flush().await?;
        }
    }

    pub async fn close(mut self) {
        let _ = self.send.finish();
        self.conn.close(0u32.into(), b"bye");
        self._endpoint.wait_idle().await;
    }
}
