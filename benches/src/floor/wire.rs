//! Server WebSocket frames: what the floor writes, byte for byte what a
//! WebSocket server puts on the wire for a text message (RFC 6455 5.2: FIN
//! set, opcode text, unmasked, length in 7, 16 or 64 bits).

/// The opcode byte of a final text frame.
const FIN_TEXT: u8 = 0x81;

/// Encodes `payload` as one unmasked, final text frame.
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    frame_header(&mut out, FIN_TEXT, false, payload.len());
    out.extend_from_slice(payload);
    out
}

/// Appends a frame header: the first byte (FIN, opcode), then the mask
/// bit (`masked`, a client's frame: the caller appends the key) and the
/// payload length `len` in 7, 16 or 64 bits.
pub fn frame_header(out: &mut Vec<u8>, first: u8, masked: bool, len: usize) {
    let mask = if masked { 0x80 } else { 0 };
    out.push(first);
    if len < 126 {
        out.push(mask | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(mask | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(mask | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    /// A WebSocket client reads each length class back as the same text.
    #[test]
    fn clients_read_every_length_class_back() {
        for len in [0, 1, 125, 126, 300, 65_535, 65_536, 70_000] {
            let text: String = "x".repeat(len);
            let frame = text_frame(text.as_bytes());
            let header = frame.len() - len;
            assert_eq!(
                header,
                match len {
                    0..=125 => 2,
                    126..=65_535 => 4,
                    _ => 10,
                },
                "{len}"
            );
            let mut client = WebSocket::from_raw_socket(Cursor::new(frame), Role::Client, None);
            match client.read() {
                Ok(Message::Text(read)) => assert_eq!(read.as_str(), text, "{len}"),
                other => panic!("{len}: {other:?}"),
            }
        }
    }
}
