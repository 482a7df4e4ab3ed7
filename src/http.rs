//! The one HTTP client factory. Every upstream call (STS, token endpoints, metadata servers,
//! the Pinniped Concierge) gets its client here, so TLS rules and connection pooling are the
//! same everywhere: one pooled client per distinct TLS setup, built once and reused.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::system_clock;
use crate::error::AuthError;

/// Default bound on every upstream call, per the design (`timeoutMs` overrides it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct TLS setups kept (one connection pool each). Clusters share setups in practice.
const MAX_CLIENTS: usize = 64;

/// How to trust an upstream, with Backstage's precedence: `caFile` wins over `caData`; with
/// neither, the system roots. `skip_tls_verify` only when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Base64 of a PEM bundle (`clusterDetails.caData`).
    pub ca_data: Option<String>,
    /// Path of a PEM bundle (`clusterDetails.caFile`).
    pub ca_file: Option<String>,
    pub skip_tls_verify: bool,
}

pub struct HttpClientFactory {
    clients: ExpiringCache<TlsSettings, Upstream>,
}

/// A pooled client and the bound on its requests in flight. hyper races a new connection
/// against the pool for every request that finds no idle one, and lets the loser finish in
/// the background: with no bound, a burst of requests to a server slow to accept (Pinniped's
/// 50,000-user test: 200 callers, the Concierge in the same busy process) left ~12,000
/// connections half-open and the process out of file descriptors. With at most
/// `MAX_IN_FLIGHT` requests and as many idle connections kept, a request nearly always finds
/// an idle one; the others wait for a slot within their own timeout.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: reqwest::Client,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Deref for Upstream {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Default for HttpClientFactory {
    fn default() -> Self {
        HttpClientFactory {
            clients: ExpiringCache::new(CacheConfig {
                capacity: MAX_CLIENTS,
                fetch_timeout: DEFAULT_TIMEOUT,
                owner: "http",
                what: "client",
                clock: system_clock(),
            }),
        }
    }
}

/// The process-wide factory: strategies share connection pools to the same upstream.
pub fn shared_factory() -> &'static HttpClientFactory {
    static FACTORY: OnceLock<HttpClientFactory> = OnceLock::new();
    FACTORY.get_or_init(HttpClientFactory::default)
}

impl HttpClientFactory {
    /// A pooled client for `tls`. `owner` names the caller in errors. Per-request time limits
    /// are set by the caller with `RequestBuilder::timeout`; the client bounds connecting.
    pub fn client(&self, owner: &'static str, tls: &TlsSettings) -> Result<Upstream, AuthError> {
        self.clients.get_or_try_insert(tls.clone(), || {
            build_client(owner, tls).map(|client| Expiring {
                value: Upstream {
                    client,
                    in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
                },
                refresh_at_ms: u64::MAX,
                expires_at_ms: u64::MAX,
            })
        })
    }
}

/// The body of `response`, refused past `max` bytes so a hostile or broken upstream cannot
/// make us buffer without bound. The request's own timeout covers reading the body.
async fn read_body_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(format!("the response is larger than {max} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("reading the response failed: {}", error_chain(&e))),
        }
    }
}

impl Upstream {
    /// Sends `request` with `timeout` and reads at most `max` bytes of the answer: the status
    /// and the body, or the reason to put after the caller's name for the endpoint (the same
    /// words for every upstream: `no answer within ... ms`, `HTTP 502: the response is larger
    /// than ...`).
    pub async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        max: usize,
    ) -> Result<(u16, Vec<u8>), String> {
        self.exchange_checked(request, timeout, max, |_| Ok(()))
            .await
    }

    /// [`Upstream::exchange`], refusing an answer whose status and headers fail `check`
    /// before its body is read.
    pub async fn exchange_checked(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        max: usize,
        check: impl FnOnce(&reqwest::Response) -> Result<(), String>,
    ) -> Result<(u16, Vec<u8>), String> {
        // The slot is held until the body is read, when the connection goes back to the pool.
        let (_slot, response) = self.send(request, timeout).await?;
        check(&response)?;
        let status = response.status().as_u16();
        let body = read_body_limited(response, max)
            .await
            .map_err(|reason| format!("HTTP {status}: {reason}"))?;
        Ok((status, body))
    }

    /// Whether anything answers `request` within `timeout`: the status, without the body.
    pub async fn probe(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<u16, String> {
        let (_slot, response) = self.send(request, timeout).await?;
        Ok(response.status().as_u16())
    }

    /// Sends `request` in a slot, all within `timeout`: the slot and the answer's head.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(tokio::sync::SemaphorePermit<'_>, reqwest::Response), String> {
        let started = Instant::now();
        let slot = self.slot(timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let again = request.try_clone();
        let response = match request.timeout(left).send().await {
            Ok(response) => response,
            // A connection that broke after it was made and before any answer (a server
            // closing an idle keep-alive connection as we reuse it): sent once more, in the
            // time left. Our requests ask for a token and change nothing upstream, so a repeat
            // is harmless.
            Err(e) if !e.is_timeout() && !e.is_connect() && again.is_some() => {
                let left = timeout.saturating_sub(started.elapsed());
                match again {
                    Some(again) if !left.is_zero() => again.timeout(left).send().await,
                    _ => Err(e),
                }
                .map_err(|e| upstream_reason(&e, timeout))?
            }
            Err(e) => return Err(upstream_reason(&e, timeout)),
        };
        Ok((slot, response))
    }

    async fn slot(&self, timeout: Duration) -> Result<tokio::sync::SemaphorePermit<'_>, String> {
        match tokio::time::timeout(timeout, self.in_flight.acquire()).await {
            Ok(Ok(slot)) => Ok(slot),
            // `acquire` fails only on a closed semaphore; ours is never closed.
            Ok(Err(_)) | Err(_) => Err(format!(
                "no answer within {} ms ({MAX_IN_FLIGHT} requests to it were already in flight)",
                timeout.as_millis()
            )),
        }
    }
}

/// What went wrong with a request, in words, without the URL's query (the caller names the
/// endpoint): a timeout, or the chain of causes (e.g. the TLS verifier's reason).
pub fn upstream_reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let kind = if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error_chain(e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Requests in flight per pooled client; the others wait (see [`Upstream`]). Also in the
/// README and the reliability suite's socket check.
const MAX_IN_FLIGHT: usize = 16;
/// As many as the requests in flight, so a steady load does not close and reopen connections.
const POOL_MAX_IDLE_PER_HOST: usize = MAX_IN_FLIGHT;

fn build_client(owner: &'static str, tls: &TlsSettings) -> Result<reqwest::Client, AuthError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(DEFAULT_TIMEOUT)
        // Below the shortest common server keep-alive (Node's 5 s): a connection the server
        // is closing must not be picked for the next request. Our upstream calls are minutes
        // apart (token refreshes), so little reuse is lost.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // Idle connections kept per host: without a cap, connections opened in a burst (or
        // when a request races a connection going back to the pool) stay open until they
        // time out.
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        // An upstream that redirects a credential request elsewhere is not followed.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(pem) = ca_bundle(owner, tls)? {
        builder = builder.tls_certs_only(parse_ca_bundle(owner, &ca_source(tls), &pem)?);
    }
    if tls.skip_tls_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| AuthError::Config(format!("{owner}: cannot build an HTTP client: {e}")))
}

/// The certificates of a PEM bundle (untrusted bytes: `caData` or a `caFile`), or an error
/// naming `owner` and `source`. Public so the parser fuzzers (fuzz/) can feed it any bytes.
pub fn parse_ca_bundle(
    owner: &str,
    source: &str,
    pem: &[u8],
) -> Result<Vec<reqwest::Certificate>, AuthError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
        AuthError::Config(format!(
            "{owner}: {source} is not a PEM certificate bundle: {e}"
        ))
    })?;
    if certs.is_empty() {
        return Err(AuthError::Config(format!(
            "{owner}: {source} holds no PEM certificate"
        )));
    }
    Ok(certs)
}

fn ca_source(tls: &TlsSettings) -> String {
    match &tls.ca_file {
        Some(path) => format!("caFile {path}"),
        None => "caData".to_string(),
    }
}

/// The CA bundle bytes, `caFile` first, as Backstage's `bufferFromFileOrString` does.
fn ca_bundle(owner: &'static str, tls: &TlsSettings) -> Result<Option<Vec<u8>>, AuthError> {
    if let Some(path) = tls.ca_file.as_deref().filter(|p| !p.is_empty()) {
        return std::fs::read(path).map(Some).map_err(|e| AuthError::Io {
            strategy: owner,
            what: "caFile",
            path: path.to_string(),
            reason: e.to_string(),
        });
    }
    match tls.ca_data.as_deref().filter(|d| !d.is_empty()) {
        Some(data) => Ok(Some(decode_base64_lenient(data))),
        None => Ok(None),
    }
}

/// Node's `Buffer.from(s, 'base64')`: whitespace and characters outside the alphabet are
/// skipped, the URL-safe alphabet is accepted, decoding stops at the first `=`.
pub fn decode_base64_lenient(input: &str) -> Vec<u8> {
    let cleaned: String = input
        .chars()
        .take_while(|c| *c != '=')
        .filter_map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '+' | '/' => Some(c),
            '-' => Some('+'),
            '_' => Some('/'),
            _ => None,
        })
        .collect();
    // A dangling single character carries no whole byte; Node drops it too.
    let usable = if cleaned.len() % 4 == 1 {
        &cleaned[..cleaned.len() - 1]
    } else {
        &cleaned[..]
    };
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    )
    .decode(usable)
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_matches_node() {
        assert_eq!(decode_base64_lenient("aGVsbG8="), b"hello");
        assert_eq!(decode_base64_lenient("aGVs\nbG8"), b"hello");
        assert_eq!(decode_base64_lenient("  aGVsbG8 ==junk"), b"hello");
        assert_eq!(decode_base64_lenient("-_-_"), vec![0xfb, 0xff, 0xbf]);
        assert_eq!(decode_base64_lenient("!!!"), Vec::<u8>::new());
    }

    #[tokio::test]
    async fn same_tls_settings_share_one_client_and_bad_ca_is_a_clear_error() {
        let factory = HttpClientFactory::default();
        let tls = TlsSettings::default();
        factory.client("test", &tls).unwrap();
        factory.client("test", &tls).unwrap();
        assert_eq!(factory.clients.len(), 1);
        let bad = TlsSettings {
            ca_data: Some("bm90IGEgY2VydA==".into()),
            ..Default::default()
        };
        let err = factory.client("test", &bad).unwrap_err().to_string();
        assert!(err.contains("caData holds no PEM certificate"), "{err}");
        let missing = TlsSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ca_data: Some("ignored".into()),
            ..Default::default()
        };
        let err = factory.client("test", &missing).unwrap_err().to_string();
        assert!(
            err.contains("cannot read caFile /nonexistent/ca.pem"),
            "{err}"
        );
    }

    /// A burst of 200 requests: at most `MAX_IN_FLIGHT` reach the server at once, and the
    /// connections opened stay near that, not one per request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_in_flight_and_connections_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (a, p, c) = (active.clone(), peak.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                c.fetch_add(1, SeqCst);
                let (a, p) = (a.clone(), p.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        p.fetch_max(a.fetch_add(1, SeqCst) + 1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        a.fetch_sub(1, SeqCst);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let upstream = HttpClientFactory::default()
            .client("test", &TlsSettings::default())
            .unwrap();
        let calls = (0..200).map(|_| {
            let upstream = upstream.clone();
            let url = url.clone();
            tokio::spawn(async move {
                upstream
                    .exchange(upstream.get(&url), Duration::from_secs(10), 16)
                    .await
            })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.unwrap(), Ok((200, b"ok".to_vec())));
        }
        let peak = peak.load(SeqCst);
        assert!(
            (1..=MAX_IN_FLIGHT).contains(&peak),
            "{peak} requests at once"
        );
        let opened = connections.load(SeqCst);
        assert!(
            opened <= 2 * MAX_IN_FLIGHT,
            "{opened} connections for 200 requests"
        );
    }

    /// A request that cannot get a slot before its timeout fails like one without an answer.
    #[tokio::test]
    async fn waiting_for_a_slot_counts_against_the_timeout() {
        let upstream = HttpClientFactory::default()
            .client("test", &TlsSettings::default())
            .unwrap();
        let _all = upstream
            .in_flight
            .acquire_many(MAX_IN_FLIGHT as u32)
            .await
            .unwrap();
        let started = Instant::now();
        let err = upstream
            .exchange(
                upstream.get("http://127.0.0.1:9/"),
                Duration::from_millis(50),
                16,
            )
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            err,
            "no answer within 50 ms (16 requests to it were already in flight)"
        );
    }
}
