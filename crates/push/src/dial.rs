//! Opening an HTTP/2 connection to an `https://` (TLS, ALPN `h2`) or
//! `http://` (h2c) base URL: shared by the APNs client and a device's link.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use hyper::body::Body;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use crate::client::ClientError;
use crate::tls::ALPN_H2;

#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `scheme://host:port`, prefixed to each request's path.
    pub(crate) prefix: String,
}

impl Origin {
    pub(crate) fn parse(url: &str) -> Result<Origin, ClientError> {
        let bad = |detail| ClientError::BadBaseUrl {
            url: url.to_owned(),
            detail,
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be https or http")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority.host().trim_matches(['[', ']']).to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let scheme = if https { "https" } else { "http" };
        Ok(Origin {
            https,
            prefix: format!("{scheme}://{}", authority.as_str()),
            host,
            port,
        })
    }

    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Connects to `origin` (parsed from `base_url`) within `timeout` per step,
/// and hands the connection to a task that ends with it. `keep_alive`
/// sends HTTP/2 PINGs at that interval and drops a connection that stops
/// answering them.
pub(crate) async fn dial<B>(
    origin: &Origin,
    base_url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
    keep_alive: Option<Duration>,
) -> Result<SendRequest<B>, ClientError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let authority = origin.authority();
    let tcp = tokio::time::timeout(
        timeout,
        TcpStream::connect((origin.host.as_str(), origin.port)),
    )
    .await
    .map_err(|_| ClientError::Timeout(timeout))?
    .map_err(|source| ClientError::Connect {
        authority: authority.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    match (tls, origin.https) {
        (Some(tls), true) => {
            let name =
                ServerName::try_from(origin.host.clone()).map_err(|_| ClientError::BadBaseUrl {
                    url: base_url.to_owned(),
                    detail: "the host is not a DNS name or IP address",
                })?;
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| ClientError::Timeout(timeout))?
                .map_err(|source| ClientError::Tls {
                    authority: authority.clone(),
                    source,
                })?;
            if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
                return Err(ClientError::NoHttp2 { authority });
            }
            handshake(TokioIo::new(stream), timeout, keep_alive).await
        }
        (None, true) => Err(ClientError::NoTrustAnchors {
            url: base_url.to_owned(),
        }),
        (_, false) => handshake(TokioIo::new(tcp), timeout, keep_alive).await,
    }
}

async fn handshake<I, B>(
    io: I,
    timeout: Duration,
    keep_alive: Option<Duration>,
) -> Result<SendRequest<B>, ClientError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    if let Some(interval) = keep_alive {
        builder
            .keep_alive_interval(interval)
            .keep_alive_timeout(interval)
            .keep_alive_while_idle(true);
    }
    let (sender, connection) = tokio::time::timeout(timeout, builder.handshake(io))
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    tokio::spawn(async move {
        // Ends on GOAWAY or a lost connection; the sender then reports
        // closed and the next push (or the device's link) reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}
