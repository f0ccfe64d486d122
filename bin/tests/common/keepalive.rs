//! HTTP/1.1 requests to nodes that may be gone: every failure is an
//! answer (`Err`), never a panic, and a producer can keep its connection.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Longest wait for one HTTP exchange with a node.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request on a new connection: the status and the body as
/// JSON (`Value::Null` when it is not JSON), or why there was no answer (a
/// node that is gone, a timeout). Never panics: callers decide.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&Value>,
) -> Result<(u16, Value), String> {
    KeepAlive::new(addr).request(method, path, json).await
}

/// HTTP/1.1 requests to one node over one kept-alive connection, opened
/// again after a failure. Producers use it: a new connection per request
/// would take a new ephemeral port each time, and a port a private broker
/// is about to bind (testkit picks it free, then the broker binds it,
/// seconds later for RabbitMQ) can be taken meanwhile.
pub struct KeepAlive {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl KeepAlive {
    /// Not connected yet: the first request connects.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// As [`http`]; the connection is dropped after any failure.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let answer = tokio::time::timeout(HTTP_TIMEOUT, self.exchange(method, path, json))
            .await
            .unwrap_or_else(|_| Err(format!("{method} {path}: no answer in {HTTP_TIMEOUT:?}")));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let addr = self.addr;
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(connection);
                self.sender.insert(sender)
            }
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let body = json.map(Value::to_string).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}
