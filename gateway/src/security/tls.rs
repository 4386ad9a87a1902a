//! The TLS listener: rustls (ring provider) configured from PEM files, and
//! the stream a connection uses whether or not it is encrypted.
//!
//! A plain connection keeps tokio's lock-free `TcpStream::into_split`; a
//! TLS one goes through `tokio::io::split`. [`SecureRead`] and
//! [`SecureWrite`] hide the difference from the framing code.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Where the TLS listener's certificate, key and client CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate
    /// signed by one of them (Kafka's `ssl.client.auth=required`).
    pub client_ca: Option<std::path::PathBuf>,
}

/// Builds the acceptor, or says which file is wrong.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert)?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| format!("{}: no usable private key: {error}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|error| format!("{}: {error}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| format!("{}: {error}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|error| format!("{}: {error}", files.cert.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client connector that trusts the CA certificates in `ca` (PEM): the
/// admin tools' side of an SSL or SASL_SSL listener.
pub fn connector(ca: &Path) -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let certs = read_certs(ca)?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", ca.display()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|error| format!("{}: {error}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// A connection's transport.
#[derive(Debug)]
pub enum SecureStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl SecureStream {
    /// Splits into halves the reader and the writer task own.
    pub fn into_split(self) -> (SecureRead, SecureWrite) {
        match self {
            SecureStream::Plain(stream) => {
                let (read, write) = stream.into_split();
                (SecureRead::Plain(read), SecureWrite::Plain(write))
            }
            SecureStream::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (SecureRead::Tls(read), SecureWrite::Tls(write))
            }
        }
    }

    /// The Kafka principal of a verified client certificate: `User:` and
    /// the subject's distinguished name in RFC 2253 form, as Kafka's
    /// default principal builder makes it. `None` without one.
    pub fn certificate_principal(&self) -> Option<String> {
        let SecureStream::Tls(stream) = self else {
            return None;
        };
        let (_, connection) = stream.get_ref();
        let leaf = connection.peer_certificates()?.first()?;
        subject_dn(leaf.as_ref()).map(|dn| format!("User:{dn}"))
    }
}

/// The read half of a [`SecureStream`].
#[derive(Debug)]
pub enum SecureRead {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS.
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// The write half of a [`SecureStream`].
#[derive(Debug)]
pub enum SecureWrite {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS.
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl AsyncRead for SecureRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SecureRead::Plain(inner) => Pin::new(inner).poll_read(cx, buf),
            SecureRead::Tls(inner) => Pin::new(inner).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SecureWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SecureWrite::Plain(inner) => Pin::new(inner).poll_write(cx, buf),
            SecureWrite::Tls(inner) => Pin::new(inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SecureWrite::Plain(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
            SecureWrite::Tls(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            SecureWrite::Plain(inner) => inner.is_write_vectored(),
            SecureWrite::Tls(inner) => inner.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SecureWrite::Plain(inner) => Pin::new(inner).poll_flush(cx),
            SecureWrite::Tls(inner) => Pin::new(inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SecureWrite::Plain(inner) => Pin::new(inner).poll_shutdown(cx),
            SecureWrite::Tls(inner) => Pin::new(inner).poll_shutdown(cx),
        }
    }
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject of an X.509 certificate as an RFC 2253 string
/// (`CN=client,O=Example,C=US`: last RDN first).
fn subject_dn(certificate: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = der(certificate)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version (optional), serial, signature, issuer, validity, subject.
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (SEQUENCE, mut rdns, _) = der(rest)? else {
        return None;
    };
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, set, next) = der(rdns)?;
        rdns = next;
        let mut attributes = set;
        let mut rdn = Vec::new();
        while !attributes.is_empty() {
            let (_, attribute, next) = der(attributes)?;
            attributes = next;
            let (0x06, oid, value) = der(attribute)? else {
                return None;
            };
            let (_, value, _) = der(value)?;
            let value = String::from_utf8_lossy(value);
            rdn.push(format!(
                "{}={}",
                attribute_name(oid),
                escape_dn_value(&value)
            ));
        }
        parts.push(rdn.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        _ => dotted_oid(oid),
    }
}

fn dotted_oid(oid: &[u8]) -> String {
    let Some((&first, rest)) = oid.split_first() else {
        return String::new();
    };
    let mut arcs = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut value = 0u64;
    for &byte in rest {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i + 1 == value.len() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of a length-prefixed element.
    fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn rdn(oid: &[u8], value: &str) -> Vec<u8> {
        let attribute = [element(0x06, oid), element(0x0c, value.as_bytes())].concat();
        element(0x31, &element(0x30, &attribute))
    }

    #[test]
    fn the_subject_reads_as_kafka_names_principals() {
        let subject = element(
            0x30,
            &[
                rdn(&[0x55, 0x04, 0x06], "US"),
                rdn(&[0x55, 0x04, 0x0a], "Acme, Inc"),
                rdn(&[0x55, 0x04, 0x03], "client"),
            ]
            .concat(),
        );
        let tbs = element(
            0x30,
            &[
                element(0xa0, &element(0x02, &[2])),
                element(0x02, &[1]),
                element(0x30, &[]),
                element(0x30, &[]),
                element(0x30, &[]),
                subject,
            ]
            .concat(),
        );
        let certificate = element(0x30, &[tbs, element(0x30, &[])].concat());
        assert_eq!(
            subject_dn(&certificate).as_deref(),
            Some("CN=client,O=Acme\\, Inc,C=US")
        );
        assert_eq!(subject_dn(&certificate[..10]), None);
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }
}
