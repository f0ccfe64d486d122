//! The floor itself: blocking sockets, and for each delivery one `write`
//! of the frame to the recipient's socket, in a plain loop. Nothing is
//! queued per connection, nobody is woken per delivery; what is left is the
//! system call and the kernel's loopback TCP path.
//!
//! One loop per core (`threads`), each writing to its share of the
//! connections (`conn % threads`), so that the floor may use the cores
//! tickcast may use; each loop gets every message and skips the others'
//! recipients.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::control::{self, Group};
use super::handshake::accept_loop;
use super::Tally;

/// What a writer loop is given, in order.
enum Work {
    /// A connection of its share (before its handshake is answered).
    Accepted(u32, Arc<TcpStream>),
    /// A message: write each group's frame to its recipients of the share.
    Groups(Arc<Vec<Group>>),
    /// The input ended.
    Stop,
}

/// Serves the connections of `listener` with the messages of `input`,
/// with `threads` writer loops, until `input` ends.
pub fn serve(listener: TcpListener, input: impl Read, threads: usize) -> io::Result<Tally> {
    let threads = threads.max(1);
    let mut senders: Vec<Sender<Work>> = Vec::with_capacity(threads);
    let mut loops: Vec<JoinHandle<Tally>> = Vec::with_capacity(threads);
    for share in 0..threads {
        let (tx, rx) = mpsc::channel();
        senders.push(tx);
        loops.push(
            std::thread::Builder::new()
                .name(format!("floor-write-{share}"))
                .spawn(move || write_loop(share, threads, rx))?,
        );
    }
    let accept_senders = senders.clone();
    std::thread::Builder::new()
        .name("floor-accept".into())
        .spawn(move || {
            accept_loop(listener, |conn, stream, response| {
                let stream = Arc::new(stream);
                let share = &accept_senders[conn as usize % threads];
                // Queued before the answer: the writer knows the socket
                // before any message that could name it.
                if share.send(Work::Accepted(conn, stream.clone())).is_ok() {
                    // A failed answer shows as the client's failure.
                    let _ = (&*stream).write_all(&response);
                }
            })
        })?;
    let mut input = BufReader::with_capacity(1 << 20, input);
    let read = read_into(&mut input, &senders);
    for tx in &senders {
        let _ = tx.send(Work::Stop);
    }
    let mut tally = Tally::default();
    for handle in loops {
        let share = handle
            .join()
            .map_err(|_| io::Error::other("a writer loop panicked"))?;
        tally.writes += share.writes;
        tally.errors += share.errors;
        tally.skipped += share.skipped;
    }
    read.map(|()| tally)
}

/// Hands every message of `input` to every writer loop.
fn read_into(input: &mut impl Read, senders: &[Sender<Work>]) -> io::Result<()> {
    while let Some(groups) = control::read_message(input)? {
        let groups = Arc::new(groups);
        for tx in senders {
            if tx.send(Work::Groups(groups.clone())).is_err() {
                return Err(io::Error::other("a writer loop ended early"));
            }
        }
    }
    Ok(())
}

/// One writer loop: connections `conn % threads == share`, stored at
/// `conn / threads`.
fn write_loop(share: usize, threads: usize, work: Receiver<Work>) -> Tally {
    let mut sockets: Vec<Option<Arc<TcpStream>>> = Vec::new();
    let mut tally = Tally::default();
    for item in work {
        match item {
            Work::Accepted(conn, stream) => {
                let at = conn as usize / threads;
                if sockets.len() <= at {
                    sockets.resize(at + 1, None);
                }
                sockets[at] = Some(stream);
            }
            Work::Groups(groups) => write_groups(&groups, share, threads, &mut sockets, &mut tally),
            Work::Stop => break,
        }
    }
    tally
}

/// One `write_all` per recipient of the share: one system call while the
/// socket has room, which it has when clients keep reading.
fn write_groups(
    groups: &[Group],
    share: usize,
    threads: usize,
    sockets: &mut [Option<Arc<TcpStream>>],
    tally: &mut Tally,
) {
    for group in groups {
        for &conn in &group.conns {
            let conn = conn as usize;
            if conn % threads != share {
                continue;
            }
            let Some(slot) = sockets.get_mut(conn / threads) else {
                tally.skipped += 1;
                continue;
            };
            let Some(stream) = slot else {
                tally.skipped += 1;
                continue;
            };
            match (&**stream).write_all(&group.frame) {
                Ok(()) => tally.writes += 1,
                Err(_) => {
                    tally.errors += 1;
                    *slot = None;
                }
            }
        }
    }
}
