//! [`Segment`]: an Ethernet link between two VMs, over UDP datagrams on 127.0.0.1.
//!
//! Each end is a `-netdev socket,udp=127.0.0.1:PEER,localaddr=127.0.0.1:MINE`: QEMU sends every
//! frame to the peer's port and receives on its own. Unlike a TCP listen/connect pair the ends
//! can start in any order, and a power cut of one VM does not break the link for the other: when
//! it boots again, frames flow again, like a cable to a switch. Nothing leaves the loopback
//! interface (no multicast).

use std::net::{Ipv4Addr, UdpSocket};

/// Allocating ports for a segment failed.
#[derive(Debug, thiserror::Error)]
#[error("segment: finding a free UDP port on 127.0.0.1")]
pub struct SegmentError(#[source] pub std::io::Error);

/// A point-to-point L2 segment with two ends, [`Segment::a`] and [`Segment::b`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    ports: [u16; 2],
}

/// One end of a [`Segment`]: give it to one VM with [`crate::VmBuilder::nic_on`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEnd {
    /// The UDP port this end receives on.
    pub local_port: u16,
    /// The UDP port of the other end.
    pub peer_port: u16,
}

impl Segment {
    /// A new segment on two free UDP ports of 127.0.0.1.
    pub fn new() -> Result<Segment, SegmentError> {
        // Hold both sockets until both ports are known, so they differ.
        let first = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SegmentError)?;
        let second = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SegmentError)?;
        let ports = [
            first.local_addr().map_err(SegmentError)?.port(),
            second.local_addr().map_err(SegmentError)?.port(),
        ];
        Ok(Segment { ports })
    }

    /// The first end.
    pub fn a(&self) -> SegmentEnd {
        SegmentEnd {
            local_port: self.ports[0],
            peer_port: self.ports[1],
        }
    }

    /// The second end.
    pub fn b(&self) -> SegmentEnd {
        SegmentEnd {
            local_port: self.ports[1],
            peer_port: self.ports[0],
        }
    }
}

impl SegmentEnd {
    /// The `-netdev` value for this end.
    pub(crate) fn netdev(&self, id: &str) -> String {
        format!(
            "socket,id={id},udp=127.0.0.1:{},localaddr=127.0.0.1:{}",
            self.peer_port, self.local_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_point_at_each_other() {
        let seg = Segment::new().unwrap();
        let (a, b) = (seg.a(), seg.b());
        assert_ne!(a.local_port, b.local_port);
        assert_eq!(a.peer_port, b.local_port);
        assert_eq!(b.peer_port, a.local_port);
        assert_eq!(
            a.netdev("n1"),
            format!(
                "socket,id=n1,udp=127.0.0.1:{},localaddr=127.0.0.1:{}",
                b.local_port, a.local_port
            )
        );
    }
}
