//! The session's output buffer: every datagram is written once, as its final record, in the
//! order the session produced it; the host reads the whole buffer after each call.
//!
//! A datagram record is a fixed 28-byte header and the bytes:
//! `u8 1 | u32 via | u8 family (4 or 6) | 16 address bytes (IPv4 in the first 4) | u16 port |
//! u32 length | datagram` (integers little-endian, the address in network order). The host
//! appends nothing: events and the next timeout are added by the ABI layer after the datagrams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Tag of a datagram record.
pub const DATAGRAM: u8 = 1;
/// Bytes of a datagram record before its length field.
pub const PREFIX: usize = 24;
/// Bytes of a datagram record before its datagram.
pub const HEADER: usize = PREFIX + 4;

/// The record header of a datagram for host transport `via` to `to`, up to its length field.
pub fn prefix(via: u32, to: SocketAddr) -> [u8; PREFIX] {
    let mut p = [0u8; PREFIX];
    p[0] = DATAGRAM;
    p[1..5].copy_from_slice(&via.to_le_bytes());
    match to.ip() {
        IpAddr::V4(a) => {
            p[5] = 4;
            p[6..10].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            p[5] = 6;
            p[6..22].copy_from_slice(&a.octets());
        }
    }
    p[22..24].copy_from_slice(&to.port().to_le_bytes());
    p
}

/// Records written in order, read from the front.
#[derive(Default)]
pub struct Output {
    /// The records (after [`Output::start`] bytes of room the ABI layer uses).
    pub buf: Vec<u8>,
    /// Where the records start.
    start: usize,
    /// Read position of [`Output::pop_datagram`].
    read: usize,
}

impl Output {
    /// An empty output whose records start after `room` bytes (for a length the ABI fills in).
    pub fn with_room(room: usize) -> Output {
        Output { buf: vec![0; room], start: room, read: room }
    }

    /// Forget everything written (capacity is kept).
    pub fn clear(&mut self) {
        self.buf.truncate(self.start);
        self.read = self.start;
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.read >= self.buf.len()
    }

    /// Append a datagram record.
    pub fn push(&mut self, via: u32, to: SocketAddr, data: &[u8]) {
        self.buf.extend_from_slice(&prefix(via, to));
        self.buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    /// Take the oldest datagram record not read yet (tests and fuzzing; the host reads the
    /// buffer itself).
    pub fn pop_datagram(&mut self) -> Option<(u32, SocketAddr, Vec<u8>)> {
        let b = &self.buf[self.read..];
        if b.len() < HEADER || b[0] != DATAGRAM {
            return None;
        }
        let via = u32::from_le_bytes(b[1..5].try_into().unwrap());
        let ip = if b[5] == 4 {
            IpAddr::V4(Ipv4Addr::new(b[6], b[7], b[8], b[9]))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[6..22]).unwrap()))
        };
        let port = u16::from_le_bytes([b[22], b[23]]);
        let len = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        let data = b[HEADER..HEADER + len].to_vec();
        self.read += HEADER + len;
        if self.read >= self.buf.len() {
            self.clear();
        }
        Some((via, SocketAddr::new(ip, port), data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_order_for_both_families() {
        let mut o = Output::with_room(4);
        let a: SocketAddr = "192.0.2.7:5004".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        o.push(0, a, &[1, 2, 3]);
        o.push(3, b, &[]);
        assert_eq!(&o.buf[4..4 + PREFIX], &prefix(0, a));
        assert_eq!(o.pop_datagram(), Some((0, a, vec![1, 2, 3])));
        assert_eq!(o.pop_datagram(), Some((3, b, vec![])));
        assert_eq!(o.pop_datagram(), None);
        assert!(o.is_empty());
        assert_eq!(o.buf.len(), 4, "the room stays");
    }
}
