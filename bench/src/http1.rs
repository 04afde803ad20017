//! A keep-alive HTTP/1.1 GET client that costs little CPU per request.
//!
//! On a two-core machine the load generator shares the CPU with the target:
//! reqwest spent 66-89 µs of CPU per request here, a third of what the gateway
//! itself spends, so the faster targets were measured with part of their CPU
//! taken away (the reviewer used wrk). This client keeps one connection, writes
//! one small request and reads one response: two syscalls per request.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head accepted; anything longer is not a test target's.
const MAX_HEAD: usize = 64 * 1024;

/// One client connection, reopened when the server closes it (gunicorn's sync
/// workers close after every response).
pub struct Connection {
    stream: Option<TcpStream>,
    /// Bytes read past the end of the last response.
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection { stream: None, buf: Vec::with_capacity(4096), request: Vec::with_capacity(512) }
    }
}

/// How the body of a response ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Connection {
    /// GETs `url` (`http://host:port/path?query`) and returns the status code
    /// once the whole response has been read.
    pub async fn get(&mut self, url: &str) -> io::Result<u16> {
        let (authority, path) = split_url(url)?;
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(authority.as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        let reused = self.stream.is_some();
        match self.exchange(authority).await {
            // A kept-alive connection the server closed while idle: one retry
            // on a new connection, as any HTTP client does.
            Err(e) if reused && self.buf.is_empty() && is_closed(&e) => self.exchange(authority).await,
            other => other,
        }
    }

    async fn exchange(&mut self, authority: &str) -> io::Result<u16> {
        let result = self.exchange_once(authority).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange_once(&mut self, authority: &str) -> io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(authority).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.request).await?;
        let (status, head_len, framing, close) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "response head too long"));
            }
            read_more(stream, &mut self.buf).await?;
        };
        self.buf.drain(..head_len);
        match framing {
            Framing::Length(n) => {
                while self.buf.len() < n {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf.drain(..n);
            }
            Framing::Chunked => skip_chunked(stream, &mut self.buf).await?,
            Framing::UntilClose => {
                while read_more(stream, &mut self.buf).await.is_ok() {
                    self.buf.clear();
                }
                self.stream = None;
            }
        }
        if close {
            self.stream = None;
            self.buf.clear();
        }
        Ok(status)
    }
}

/// What a write to, or read from, a connection the peer closed fails with.
fn is_closed(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

/// `http://host:port/path` into `host:port` and `/path`.
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not an http:// URL: {url}")))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// Reads whatever is available, appending it; end of stream is an error
/// because every caller still expects bytes.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Status, head length, body framing and whether the server closes after
/// this response; `None` while the head is incomplete.
fn parse_head(buf: &[u8]) -> io::Result<Option<(u16, usize, Framing, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    let mut close = response.version == Some(0);
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    // Responses that never have a body.
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some((status, head_len, framing, close)))
}

/// Consumes a chunked body, trailers included.
async fn skip_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            read_more(stream, buf).await?;
        };
        let size_text = std::str::from_utf8(&buf[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let end = loop {
                    if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    read_more(stream, buf).await?;
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(());
                }
            }
        }
        while buf.len() < size + 2 {
            read_more(stream, buf).await?;
        }
        buf.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `responses` one after another on one accepted connection per
    /// entry in `connections`, then closes.
    async fn serve(connections: Vec<Vec<&'static str>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for responses in connections {
                let (mut socket, _) = listener.accept().await.unwrap();
                for response in responses {
                    let mut request = Vec::new();
                    while !request.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        if socket.read(&mut byte).await.unwrap() == 0 {
                            return;
                        }
                        request.push(byte[0]);
                    }
                    socket.write_all(response.as_bytes()).await.unwrap();
                }
            }
        });
        format!("http://{addr}/x?y=1")
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let url = serve(vec![vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        ]])
        .await;
        let mut c = Connection::default();
        assert_eq!(c.get(&url).await.unwrap(), 200);
        assert_eq!(c.get(&url).await.unwrap(), 202);
        assert_eq!(c.get(&url).await.unwrap(), 400);
        assert!(c.buf.is_empty());
    }

    #[tokio::test]
    async fn reconnects_after_the_server_closes() {
        let url = serve(vec![
            vec!["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
            // Then closes this kept-alive connection without answering the next request,
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            // which is retried here.
            vec!["HTTP/1.0 200 OK\r\n\r\nuntil close"],
        ])
        .await;
        let mut c = Connection::default();
        assert_eq!(c.get(&url).await.unwrap(), 200);
        assert!(c.stream.is_none(), "closed as the server said");
        assert_eq!(c.get(&url).await.unwrap(), 200);
        assert_eq!(c.get(&url).await.unwrap(), 200, "retried once on a new connection");
        assert!(c.get(&url).await.is_err(), "nothing listens any more");
    }
}
