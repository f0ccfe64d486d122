//! The control messages `tickcast-load` sends the floor server on its
//! standard input: per publish request, the frames to write and to whom.
//!
//! The generator works out recipients and encodes frames (as it works out
//! tickcast's expected deliveries), so the floor server does nothing but
//! the writes; what it spends is the floor. Little-endian:
//!
//! ```text
//! message := groups:u32 group*
//! group   := frame_len:u32 frame[frame_len] conns:u32 conn:u32*
//! ```
//!
//! `frame` is a complete WebSocket frame (header included); `conn` the
//! number a connection gave in its handshake. End of input ends the run.

use std::io::{self, ErrorKind, Read};

use bytes::Bytes;

/// Largest frame a message may carry.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Most recipients of one group.
pub const MAX_CONNS: usize = 1 << 24;
/// Most groups in one message.
pub const MAX_GROUPS: usize = 1 << 20;

/// One frame and the connections it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The WebSocket frame, as written.
    pub frame: Bytes,
    /// Connection numbers.
    pub conns: Vec<u32>,
}

/// Builds one message.
#[derive(Debug, Default)]
pub struct MessageWriter {
    buf: Vec<u8>,
    groups: u32,
}

impl MessageWriter {
    /// An empty message.
    pub fn new() -> Self {
        Self {
            buf: vec![0; 4],
            groups: 0,
        }
    }

    /// Adds `frame`, to be written to each of `conns`.
    pub fn push(&mut self, frame: &[u8], conns: &[u32]) {
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(frame);
        self.buf
            .extend_from_slice(&(conns.len() as u32).to_le_bytes());
        for conn in conns {
            self.buf.extend_from_slice(&conn.to_le_bytes());
        }
        self.groups += 1;
    }

    /// Groups pushed so far.
    pub fn groups(&self) -> u32 {
        self.groups
    }

    /// The encoded message.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[..4].copy_from_slice(&self.groups.to_le_bytes());
        self.buf
    }
}

/// Reads the next message; `None` at the end of input (between messages).
pub fn read_message(input: &mut impl Read) -> io::Result<Option<Vec<Group>>> {
    let mut first = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut first[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let groups = bounded(u32::from_le_bytes(first), MAX_GROUPS, "groups")?;
    let mut out = Vec::with_capacity(groups);
    for _ in 0..groups {
        let len = bounded(read_u32(input)?, MAX_FRAME_BYTES, "frame bytes")?;
        let mut frame = vec![0; len];
        input.read_exact(&mut frame)?;
        let count = bounded(read_u32(input)?, MAX_CONNS, "connections")?;
        let mut raw = vec![0; count * 4];
        input.read_exact(&mut raw)?;
        let conns = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Group {
            frame: frame.into(),
            conns,
        });
    }
    Ok(Some(out))
}

fn read_u32(input: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn bounded(value: u32, max: usize, what: &str) -> io::Result<usize> {
    let value = value as usize;
    if value > max {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("{value} {what} in a control message, at most {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_end_cleanly() {
        let mut one = MessageWriter::new();
        one.push(b"abc", &[1, 2, 70_000]);
        one.push(b"", &[]);
        assert_eq!(one.groups(), 2);
        let empty = MessageWriter::new();
        let mut input = Vec::new();
        input.extend(one.finish());
        input.extend(empty.finish());
        let mut cursor = io::Cursor::new(input);
        let first = read_message(&mut cursor).unwrap().unwrap();
        assert_eq!(
            first,
            vec![
                Group {
                    frame: Bytes::from_static(b"abc"),
                    conns: vec![1, 2, 70_000]
                },
                Group {
                    frame: Bytes::new(),
                    conns: vec![]
                }
            ]
        );
        assert_eq!(read_message(&mut cursor).unwrap(), Some(vec![]));
        assert_eq!(read_message(&mut cursor).unwrap(), None);
    }

    #[test]
    fn truncated_or_oversized_input_is_an_error() {
        let mut one = MessageWriter::new();
        one.push(b"abc", &[1]);
        let bytes = one.finish();
        let cut = &bytes[..bytes.len() - 2];
        assert!(read_message(&mut io::Cursor::new(cut)).is_err());
        assert!(read_message(&mut io::Cursor::new(&bytes[..2])).is_err());
        let huge = [u32::MAX.to_le_bytes(), 0u32.to_le_bytes()].concat();
        let err = read_message(&mut io::Cursor::new(huge)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }
}
