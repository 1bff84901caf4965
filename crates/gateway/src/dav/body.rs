//! Request bodies of unknown length (chunked, or HTTP/2 without `content-length`).
//!
//! WSGI servers such as Radicale cannot read a chunked body, so the door passes every body on
//! with its length, and must first have it all. Small bodies are held in memory, from a budget
//! the whole door shares ([`MEMORY_FOR_BODIES`], at most [`MEMORY_PER_BODY`] each); a larger
//! body, or any body while the budget is spent, goes to an unlinked temporary file in
//! `spool_directory`, within `max_spool_bytes` for all files together. Beyond that budget a
//! request is answered 503 with `Retry-After`, never held in memory. So twenty clients
//! uploading 60 MiB each cost the door its memory budget and 1.2 GB of disk, not 1.2 GB of RAM.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncSeekExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Body, BoxError};

/// Request bodies held in memory by one door, all requests together.
pub(super) const MEMORY_FOR_BODIES: usize = 32 * 1024 * 1024;
/// The largest body held in memory; larger ones are spooled.
pub(super) const MEMORY_PER_BODY: usize = 1024 * 1024;
/// Each spool file counts as at least this much of `max_spool_bytes`, which so also bounds the
/// number of open spool files.
const SPOOL_MINIMUM: usize = MEMORY_PER_BODY;
/// Blocks read back from a spool file.
const SPOOL_BLOCK: usize = 64 * 1024;

/// Why a body could not be gathered.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Over the limit: 413.
    TooLarge,
    /// The memory or spool budget is spent: 503 with `Retry-After`.
    Busy,
    /// The client stopped sending for the read timeout: 408.
    Stalled,
    /// The client broke the body off: 400.
    BrokeOff,
    /// The spool file failed: 500.
    Spool(std::io::Error),
}

/// The budgets one door's bodies share.
#[derive(Debug)]
pub(super) struct Budget {
    memory: Arc<Semaphore>,
    spool: Arc<Semaphore>,
    directory: PathBuf,
    /// How long the client may pause while sending.
    stall: Duration,
}

impl Budget {
    /// Budgets for spool files in `directory` of `spool_bytes` in all.
    pub(super) fn new(directory: PathBuf, spool_bytes: u64, stall: Duration) -> Self {
        let spool_bytes =
            usize::try_from(spool_bytes).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Self {
            memory: Arc::new(Semaphore::new(MEMORY_FOR_BODIES)),
            spool: Arc::new(Semaphore::new(spool_bytes)),
            directory,
            stall,
        }
    }

    /// Gathers `body` (at most `limit` bytes) in memory, or spooled when `spool` allows it.
    pub(super) async fn gather<B>(
        &self,
        mut body: B,
        limit: u64,
        spool: bool,
    ) -> Result<Gathered, BodyError>
    where
        B: HttpBody<Data = Bytes> + Unpin,
    {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut spooled: Option<Spool> = None;
        let mut length: u64 = 0;
        loop {
            let frame = match tokio::time::timeout(self.stall, body.frame()).await {
                Err(_) => return Err(BodyError::Stalled),
                Ok(None) => break,
                Ok(Some(Err(_))) => return Err(BodyError::BrokeOff),
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers are not passed on (the back end gets a body of known length).
            let Ok(data) = frame.into_data() else { continue };
            length += data.len() as u64;
            if length > limit {
                return Err(BodyError::TooLarge);
            }
            if let Some(spool) = spooled.as_mut() {
                spool.write(&self.spool, &data).await?;
                continue;
            }
            let fits = usize::try_from(length).is_ok_and(|length| length <= MEMORY_PER_BODY);
            let permit = u32::try_from(data.len())
                .ok()
                .filter(|_| fits)
                .and_then(|size| self.memory.clone().try_acquire_many_owned(size).ok());
            match (permit, spool) {
                (Some(permit), _) => {
                    match held.as_mut() {
                        Some(held) => held.merge(permit),
                        None => held = Some(permit),
                    }
                    chunks.push(data);
                }
                (None, false) => {
                    return Err(if fits { BodyError::Busy } else { BodyError::TooLarge });
                }
                (None, true) => {
                    let mut spool = Spool::open(&self.directory, &self.spool).await?;
                    for chunk in chunks.drain(..) {
                        spool.write(&self.spool, &chunk).await?;
                    }
                    spool.write(&self.spool, &data).await?;
                    held = None;
                    spooled = Some(spool);
                }
            }
        }
        match spooled {
            Some(spool) => spool.finish(length).await,
            None => Ok(Gathered::Memory { chunks, length, _permit: held }),
        }
    }
}

/// A body gathered whole.
#[derive(Debug)]
pub(super) enum Gathered {
    /// In memory, holding its share of the budget.
    Memory { chunks: Vec<Bytes>, length: u64, _permit: Option<OwnedSemaphorePermit> },
    /// In an unlinked temporary file, holding its share of the spool budget.
    Spooled { file: tokio::fs::File, length: u64, permit: OwnedSemaphorePermit },
}

impl Gathered {
    /// The body's length.
    pub(super) fn len(&self) -> u64 {
        match self {
            Self::Memory { length, .. } | Self::Spooled { length, .. } => *length,
        }
    }

    /// The bytes of a body held in memory (for reading what it asks), or `None` when spooled.
    pub(super) fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Self::Memory { chunks, .. } => Some(chunks.concat()),
            Self::Spooled { .. } => None,
        }
    }

    /// The body to send on, releasing its budget when sent or dropped.
    pub(super) fn into_body(self) -> Body {
        match self {
            Self::Memory { chunks, _permit, .. } => {
                Replay { chunks: chunks.into(), _permit }.boxed()
            }
            Self::Spooled { file, length, permit } => {
                Unspool { file, remaining: length, buffer: vec![0; SPOOL_BLOCK], _permit: permit }
                    .boxed()
            }
        }
    }
}

/// A spool file being written, with the share of the budget it holds.
struct Spool {
    file: tokio::fs::File,
    permit: OwnedSemaphorePermit,
    written: usize,
}

impl Spool {
    async fn open(directory: &std::path::Path, budget: &Arc<Semaphore>) -> Result<Self, BodyError> {
        let permit = budget
            .clone()
            .try_acquire_many_owned(u32::try_from(SPOOL_MINIMUM).unwrap_or(u32::MAX))
            .map_err(|_| BodyError::Busy)?;
        let directory = directory.to_owned();
        // Unlinked at once (O_TMPFILE where the file system has it): nothing is left behind,
        // even when the process is killed.
        let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(directory))
            .await
            .map_err(|error| BodyError::Spool(std::io::Error::other(error)))?
            .map_err(BodyError::Spool)?;
        let mut file = tokio::fs::File::from_std(file);
        // tokio's file buffers up to 2 MiB per write by default; each spooled body keeps less.
        file.set_max_buf_size(SPOOL_BLOCK);
        Ok(Self { file, permit, written: 0 })
    }

    async fn write(&mut self, budget: &Arc<Semaphore>, data: &[u8]) -> Result<(), BodyError> {
        let charged = self.permit.num_permits();
        let needed = (self.written + data.len()).saturating_sub(charged);
        if needed > 0 {
            let more = u32::try_from(needed).map_err(|_| BodyError::Busy)?;
            let permit =
                budget.clone().try_acquire_many_owned(more).map_err(|_| BodyError::Busy)?;
            self.permit.merge(permit);
        }
        self.file.write_all(data).await.map_err(BodyError::Spool)?;
        self.written += data.len();
        Ok(())
    }

    async fn finish(mut self, length: u64) -> Result<Gathered, BodyError> {
        self.file.flush().await.map_err(BodyError::Spool)?;
        self.file.rewind().await.map_err(BodyError::Spool)?;
        Ok(Gathered::Spooled { file: self.file, length, permit: self.permit })
    }
}

/// A body held in memory, sent chunk by chunk.
struct Replay {
    chunks: std::collections::VecDeque<Bytes>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.chunks.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.chunks.iter().map(|chunk| chunk.len() as u64).sum())
    }
}

/// A spooled body, read back block by block.
struct Unspool {
    file: tokio::fs::File,
    remaining: u64,
    buffer: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for Unspool {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).unwrap_or(usize::MAX).min(this.buffer.len());
        let mut buffer = ReadBuf::new(&mut this.buffer[..want]);
        match Pin::new(&mut this.file).poll_read(context, &mut buffer) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(Ok(())) if buffer.filled().is_empty() => Poll::Ready(Some(Err(Box::new(
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            )))),
            Poll::Ready(Ok(())) => {
                let block = Bytes::copy_from_slice(buffer.filled());
                this.remaining -= block.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(block))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    fn budget(directory: &std::path::Path, spool_bytes: u64) -> Budget {
        Budget::new(directory.to_owned(), spool_bytes, Duration::from_secs(5))
    }

    /// A body of `count` chunks of `size` bytes, of unknown length.
    fn chunked(count: usize, size: usize) -> Replay {
        let chunks = (0..count).map(|index| Bytes::from(vec![(index % 251) as u8; size]));
        Replay { chunks: chunks.collect(), _permit: None }
    }

    async fn read_back(gathered: Gathered) -> Vec<u8> {
        gathered.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_within_the_budget() {
        let directory = tempfile::tempdir().unwrap();
        let budget = budget(directory.path(), 64 << 20);
        let small = budget.gather(Full::new(Bytes::from_static(b"hello")), 1 << 20, true).await;
        let small = small.unwrap();
        assert!(matches!(small, Gathered::Memory { length: 5, .. }));
        assert_eq!(small.bytes().unwrap(), b"hello");
        assert_eq!(budget.memory.available_permits(), MEMORY_FOR_BODIES - 5);
        assert_eq!(read_back(small).await, b"hello");
        assert_eq!(budget.memory.available_permits(), MEMORY_FOR_BODIES);
    }

    #[tokio::test]
    async fn large_bodies_are_spooled_whole_and_leave_nothing_behind() {
        let directory = tempfile::tempdir().unwrap();
        let budget = budget(directory.path(), 64 << 20);
        let gathered = budget.gather(chunked(300, 16 * 1024), 64 << 20, true).await.unwrap();
        assert!(matches!(gathered, Gathered::Spooled { .. }));
        assert_eq!(gathered.len(), 300 * 16 * 1024);
        // Spooling gave the memory back.
        assert_eq!(budget.memory.available_permits(), MEMORY_FOR_BODIES);
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0, "unlinked at once");
        let expected: Vec<u8> =
            (0..300).flat_map(|index| vec![(index % 251) as u8; 16 * 1024]).collect();
        assert_eq!(read_back(gathered).await, expected);
        assert_eq!(budget.spool.available_permits(), 64 << 20);
    }

    #[tokio::test]
    async fn limits_and_budgets_are_kept() {
        let directory = tempfile::tempdir().unwrap();
        let budget = budget(directory.path(), 4 << 20);
        let over = budget.gather(chunked(10, 1024), 9 * 1024, true).await;
        assert!(matches!(over, Err(BodyError::TooLarge)));
        // The spool budget is shared: a second large body finds it spent.
        let first = budget.gather(chunked(3, 1 << 20), 64 << 20, true).await.unwrap();
        let second = budget.gather(chunked(3, 1 << 20), 64 << 20, true).await;
        assert!(matches!(second, Err(BodyError::Busy)), "{second:?}");
        drop(first);
        assert!(budget.gather(chunked(3, 1 << 20), 64 << 20, true).await.is_ok());
        // Without spooling, a body larger than one body's share of memory is too large.
        let unspooled = budget.gather(chunked(2, MEMORY_PER_BODY), 64 << 20, false).await;
        assert!(matches!(unspooled, Err(BodyError::TooLarge)));
    }
}
