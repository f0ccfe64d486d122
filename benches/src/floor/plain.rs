//! The floor itself: one thread, blocking sockets, and for each delivery
//! one `write` of the frame to the recipient's socket, in a plain loop.
//! Nothing is queued, nobody is woken; what is left is the system call and
//! the kernel's loopback TCP path.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;

use super::control::{self, Group};
use super::handshake::accept_loop;
use super::Tally;

/// Serves the connections of `listener` with the messages of `input`
/// until it ends.
pub fn serve(listener: TcpListener, input: impl Read) -> io::Result<Tally> {
    let (accepted_tx, accepted) = mpsc::channel::<(u32, Arc<TcpStream>)>();
    std::thread::Builder::new()
        .name("floor-accept".into())
        .spawn(move || {
            accept_loop(listener, |conn, stream, response| {
                let stream = Arc::new(stream);
                if accepted_tx.send((conn, stream.clone())).is_ok() {
                    // A failed answer shows as the client's failure.
                    let _ = (&*stream).write_all(&response);
                }
            })
        })?;
    let mut input = BufReader::with_capacity(1 << 20, input);
    let mut sockets: Vec<Option<Arc<TcpStream>>> = Vec::new();
    let mut tally = Tally::default();
    while let Some(groups) = control::read_message(&mut input)? {
        for (conn, stream) in accepted.try_iter() {
            let conn = conn as usize;
            if sockets.len() <= conn {
                sockets.resize(conn + 1, None);
            }
            sockets[conn] = Some(stream);
        }
        write_groups(&groups, &mut sockets, &mut tally);
    }
    Ok(tally)
}

/// One `write_all` per recipient: one system call while the socket has
/// room, which it has when clients keep reading.
fn write_groups(groups: &[Group], sockets: &mut [Option<Arc<TcpStream>>], tally: &mut Tally) {
    for group in groups {
        for &conn in &group.conns {
            let Some(slot) = sockets.get_mut(conn as usize) else {
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
