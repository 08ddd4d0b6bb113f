//! tough's [`Transport`] over HTTP(S) with reqwest, and `file://` through tough's own.
//!
//! Only metadata and the manifest come through here (the payload has its own resuming download,
//! `crate::payload`), so a body is read whole, up to [`MAX_BODY`], and handed to tough as one
//! chunk; tough then checks its length and digest. 404, 403 and 410 mean "not there" (tough asks
//! for `N+1.root.json` until there is none; S3 answers 403 for a missing key). Nothing waits
//! forever: connecting is bounded by [`CONNECT_TIMEOUT`], each wait for data by
//! [`READ_TIMEOUT`], the whole request by [`TOTAL_TIMEOUT`]. A failure is not retried here: the
//! next check is the retry.

use std::time::Duration;

use bytes::Bytes;
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// The largest body accepted (tough's own limit for targets metadata is 10 MiB).
pub const MAX_BODY: usize = 16 << 20;
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request may wait for the next bytes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take in all.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// The updater's transport for tough (see the module doc).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport with the timeouts above.
    pub fn new() -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent(concat!("keel-updater/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpTransport { client })
    }

    async fn get(&self, url: &Url) -> Result<Bytes, TransportError> {
        let other =
            |why: String| TransportError::new_with_cause(TransportErrorKind::Other, url, why);
        let mut resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, url, e))?;
        let status = resp.status();
        if matches!(status.as_u16(), 403 | 404 | 410) {
            return Err(TransportError::new(TransportErrorKind::FileNotFound, url));
        }
        if !status.is_success() {
            return Err(other(format!("server answered {status}")));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(other(format!("the body is larger than {MAX_BODY} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, url, e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(other(format!("the body is larger than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

#[tough::async_trait]
impl Transport for HttpTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        match url.scheme() {
            "file" => FilesystemTransport.fetch(url).await,
            "http" | "https" => {
                let body = self.get(&url).await?;
                Ok(Box::pin(futures::stream::iter([Ok(body)])))
            }
            _ => Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url,
            )),
        }
    }
}
