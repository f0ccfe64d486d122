//! The "plain tokio fan-out" reference: a tokio server accepting with
//! tokio, one writer task per connection, each woken once per delivery
//! through an unbounded channel and writing that one frame; the fan-out is
//! a task sending a shared `Bytes` to every recipient's channel. What
//! tickcast does around each write, minus everything but the wakeup.

use std::io::{self, BufReader, Read};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::control::{self, Group};
use super::handshake::{read_upgrade_async, IO_TIMEOUT};
use super::Tally;

/// What a connection task did: frames written, and whether a write failed.
type WriterTally = (u64, u64);

/// A connection's channel, announced to the fan-out.
type Registration = (u32, UnboundedSender<Bytes>);

/// The connection tasks, to collect their tallies at the end.
type Writers = Arc<Mutex<Vec<JoinHandle<WriterTally>>>>;

/// Serves the connections of `listener` with the messages of `input`,
/// on a runtime of `threads` workers, until `input` ends.
pub fn serve(
    listener: TcpListener,
    input: impl Read + Send + 'static,
    threads: usize,
) -> io::Result<Tally> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    let (messages_tx, mut messages) = mpsc::unbounded_channel::<Vec<Group>>();
    let reader = std::thread::Builder::new()
        .name("floor-input".into())
        .spawn(move || -> io::Result<()> {
            let mut input = BufReader::with_capacity(1 << 20, input);
            while let Some(groups) = control::read_message(&mut input)? {
                if messages_tx.send(groups).is_err() {
                    break;
                }
            }
            Ok(())
        })?;
    let tally = runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (register_tx, mut registered) = mpsc::unbounded_channel::<Registration>();
        let writers: Writers = Arc::default();
        let acceptor = tokio::spawn(accept(listener, register_tx, writers.clone()));
        let mut senders: Vec<Option<UnboundedSender<Bytes>>> = Vec::new();
        let mut tally = Tally::default();
        while let Some(groups) = messages.recv().await {
            while let Ok((conn, tx)) = registered.try_recv() {
                let conn = conn as usize;
                if senders.len() <= conn {
                    senders.resize(conn + 1, None);
                }
                senders[conn] = Some(tx);
            }
            fan_out(&groups, &mut senders, &mut tally);
        }
        // Closing every channel ends every writer once it has written
        // what it was sent.
        acceptor.abort();
        drop(senders);
        registered.close();
        while registered.recv().await.is_some() {}
        let writers = std::mem::take(&mut *writers.lock());
        for writer in writers {
            let (writes, errors) = writer.await.unwrap_or((0, 1));
            tally.writes += writes;
            tally.errors += errors;
        }
        Ok::<_, io::Error>(tally)
    })?;
    match reader.join() {
        Ok(result) => result?,
        Err(_) => return Err(io::Error::other("the input thread panicked")),
    }
    runtime.shutdown_background();
    Ok(tally)
}

/// Accepts for ever, one task per connection.
async fn accept(
    listener: tokio::net::TcpListener,
    register: UnboundedSender<Registration>,
    writers: Writers,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let task = tokio::spawn(connection(stream, register.clone()));
                writers.lock().push(task);
            }
            // EMFILE and the like: wait rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// One connection: the handshake, its channel announced to the fan-out
/// before the answer goes out, then one write per frame.
async fn connection(mut stream: TcpStream, register: UnboundedSender<Registration>) -> WriterTally {
    let _ = stream.set_nodelay(true);
    let upgrade = match tokio::time::timeout(IO_TIMEOUT, read_upgrade_async(&mut stream)).await {
        Ok(Ok(upgrade)) => upgrade,
        // The generator's reachability probe, a stranger, a stall.
        _ => return (0, 0),
    };
    let (tx, frames) = mpsc::unbounded_channel();
    if register.send((upgrade.conn, tx)).is_err() {
        return (0, 0);
    }
    writer(stream, upgrade.response, frames).await
}

/// Sends each group's frame to each of its recipients' writers.
fn fan_out(groups: &[Group], senders: &mut [Option<UnboundedSender<Bytes>>], tally: &mut Tally) {
    for group in groups {
        for &conn in &group.conns {
            let Some(slot) = senders.get_mut(conn as usize) else {
                tally.skipped += 1;
                continue;
            };
            let Some(tx) = slot else {
                tally.skipped += 1;
                continue;
            };
            if tx.send(group.frame.clone()).is_err() {
                // The writer ended on a failed write; it counted it.
                *slot = None;
                tally.skipped += 1;
            }
        }
    }
}

/// The handshake's answer, then one write per frame.
async fn writer(
    mut stream: TcpStream,
    response: Vec<u8>,
    mut frames: UnboundedReceiver<Bytes>,
) -> WriterTally {
    if stream.write_all(&response).await.is_err() {
        return (0, 1);
    }
    let mut writes = 0;
    while let Some(frame) = frames.recv().await {
        if stream.write_all(&frame).await.is_err() {
            return (writes, 1);
        }
        writes += 1;
    }
    (writes, 0)
}
