//! Connections as the front doors see them: plain TCP or TLS on either side, or a UNIX socket to
//! a back end on the same machine; read line by line before login and as bytes after it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A TCP connection, plain or wrapped in TLS as a server (towards clients) or as a client
/// (towards the back end), or a UNIX socket to the back end.
#[derive(Debug)]
pub enum Stream {
    /// Plain text.
    Plain(TcpStream),
    /// A back end's UNIX socket (plain text that never leaves the machine).
    Local(UnixStream),
    /// TLS accepted from a client.
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS opened to a back end.
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// True once TLS protects the connection.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_) | Self::Local(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            Self::Local(stream) => Pin::new(stream).poll_read(context, buffer),
            Self::Server(stream) => Pin::new(stream).poll_read(context, buffer),
            Self::Client(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(context, data),
            Self::Local(stream) => Pin::new(stream).poll_write(context, data),
            Self::Server(stream) => Pin::new(stream).poll_write(context, data),
            Self::Client(stream) => Pin::new(stream).poll_write(context, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(context),
            Self::Local(stream) => Pin::new(stream).poll_flush(context),
            Self::Server(stream) => Pin::new(stream).poll_flush(context),
            Self::Client(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Self::Local(stream) => Pin::new(stream).poll_shutdown(context),
            Self::Server(stream) => Pin::new(stream).poll_shutdown(context),
            Self::Client(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The peer closed the connection or it failed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The peer sent nothing for too long.
    #[error("timed out")]
    Timeout,
    /// The line is longer than allowed; the connection cannot be resynchronised.
    #[error("line too long")]
    TooLong,
}

/// A stream with a read buffer, for the line-based part of a session.
#[derive(Debug)]
pub struct LineStream {
    stream: Stream,
    buffer: Vec<u8>,
}

impl LineStream {
    /// Wraps a stream.
    pub fn new(stream: Stream) -> Self {
        Self { stream, buffer: Vec::new() }
    }

    /// Reads one line of at most `max` bytes, without its CRLF (a bare LF is accepted too).
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, LineError> {
        tokio::time::timeout(timeout, self.read_line_untimed(max))
            .await
            .map_err(|_| LineError::Timeout)?
    }

    async fn read_line_untimed(&mut self, max: usize) -> Result<Vec<u8>, LineError> {
        let mut searched = 0;
        loop {
            if let Some(end) = self.buffer[searched..].iter().position(|&byte| byte == b'\n') {
                let end = searched + end;
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            searched = self.buffer.len();
            if self.buffer.len() > max {
                return Err(LineError::TooLong);
            }
            self.fill().await?;
        }
    }

    /// Reads exactly `count` bytes (an IMAP literal).
    pub async fn read_exact(
        &mut self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, LineError> {
        tokio::time::timeout(timeout, async {
            while self.buffer.len() < count {
                self.fill().await?;
            }
            Ok(self.buffer.drain(..count).collect())
        })
        .await
        .map_err(|_| LineError::Timeout)?
    }

    async fn fill(&mut self) -> Result<(), LineError> {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(LineError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    /// Writes and flushes.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await?;
        self.stream.flush().await
    }

    /// True once TLS protects the connection.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The stream for a STARTTLS upgrade. Bytes the peer sent after the STARTTLS command are
    /// dropped: they came in plain text and must not be taken as if protected (the command
    /// injection of CVE-2011-0411).
    pub fn into_stream_for_tls(self) -> Stream {
        self.stream
    }

    /// The stream and the bytes already read but not consumed (pipelined commands to pass on).
    pub fn into_parts(self) -> (Stream, Vec<u8>) {
        (self.stream, self.buffer)
    }
}
