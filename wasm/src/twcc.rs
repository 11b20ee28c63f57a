//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01):
//! every packet we send carries a transport-wide sequence number in an RTP header extension; the
//! viewer reports which of them arrived and when. This file keeps what was sent under each number
//! and turns the viewer's reports into per-packet results for the estimator ([`crate::gcc`]).

use rtc_rtcp::transport_feedbacks::transport_layer_cc::{PacketStatusChunk, SymbolTypeTcc, TransportLayerCc};
use std::time::Instant;

/// The header extension's URI in SDP (`a=extmap:<id> <uri>`).
pub const EXTENSION_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Packets remembered (a power of two): about 8 s of 2.5 Mbit/s video.
const HISTORY: usize = 2048;

/// One packet as it left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sent {
    /// Unwrapped transport-wide sequence number.
    pub seq: i64,
    /// When it left the pacer.
    pub at: Instant,
    /// Bytes on the wire (the SRTP datagram).
    pub size: usize,
    /// The probe cluster it belongs to (0: none).
    pub probe: u32,
}

/// What the viewer said of one packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacketResult {
    pub sent: Sent,
    /// Arrival time on the viewer's clock, µs (None: reported lost).
    pub arrival_us: Option<i64>,
}

/// What the viewer already said of a packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reported {
    Not,
    Lost,
    Received,
}

/// The transport-wide sequence numbers sent, and their fate.
pub struct TwccHistory {
    slots: Vec<Option<Sent>>,
    /// Per slot: what the viewer reported of it so far. A receiver reports packets again when a
    /// late one (a retransmission keeps its number) moves its feedback window back (libwebrtc's
    /// RemoteEstimatorProxy restarts the window at the lowest number that arrived); each packet
    /// counts once as lost and once as received at most, or the acknowledged rate doubles.
    reported: Vec<Reported>,
    /// Highest unwrapped number sent (-1: none yet).
    highest: i64,
    /// Feedback packets read, and those ignored (out of range or out of order).
    pub feedbacks: u64,
    pub feedbacks_ignored: u64,
    /// Statuses skipped because the packet was already reported so.
    pub duplicates: u64,
    /// The last feedback packet count seen (duplicates are ignored).
    last_fb_count: Option<u8>,
    /// When the newest packet reported received left (a packet that left later is not lost).
    newest_received: Option<Instant>,
}

impl Default for TwccHistory {
    fn default() -> Self {
        TwccHistory {
            slots: vec![None; HISTORY],
            reported: vec![Reported::Not; HISTORY],
            highest: -1,
            feedbacks: 0,
            feedbacks_ignored: 0,
            duplicates: 0,
            last_fb_count: None,
            newest_received: None,
        }
    }
}

/// The unwrapped number closest to `reference` whose low 16 bits are `seq`.
fn unwrap(seq: u16, reference: i64) -> i64 {
    let base = reference & !0xffff;
    let candidates = [base - 0x10000 + seq as i64, base + seq as i64, base + 0x10000 + seq as i64];
    *candidates.iter().min_by_key(|c| (*c - reference).abs()).unwrap()
}

impl TwccHistory {
    /// Remember that the packet numbered `seq` left at `at` with `size` bytes (again, for a
    /// retransmission: its time is then the resend's).
    pub fn on_sent(&mut self, seq: u16, at: Instant, size: usize, probe: u32) {
        let seq = if self.highest < 0 { seq as i64 } else { unwrap(seq, self.highest) };
        self.highest = self.highest.max(seq);
        let slot = seq as usize & (HISTORY - 1);
        if self.slots[slot].is_none_or(|s| s.seq != seq) {
            self.reported[slot] = Reported::Not;
        }
        self.slots[slot] = Some(Sent { seq, at, size, probe });
    }

    /// The packets a feedback report covers that are still remembered, with their arrival times,
    /// in sequence order. Reports naming numbers never sent, far in the past, or repeated are
    /// read only as far as they name packets we remember (a hostile report costs at most
    /// [`HISTORY`] steps).
    pub fn on_feedback(&mut self, fb: &TransportLayerCc) -> Vec<PacketResult> {
        let mut results = Vec::new();
        if self.highest < 0 {
            self.feedbacks_ignored += 1;
            return results;
        }
        if self.last_fb_count == Some(fb.fb_pkt_count) {
            self.feedbacks_ignored += 1;
            return results;
        }
        self.last_fb_count = Some(fb.fb_pkt_count);
        self.feedbacks += 1;
        let duplicates_before = self.duplicates;
        let base = unwrap(fb.base_sequence_number, self.highest);
        let count = (fb.packet_status_count as i64).min(HISTORY as i64);
        // Statuses, in order, as far as `count`.
        let mut statuses: Vec<SymbolTypeTcc> = Vec::with_capacity(count as usize);
        'chunks: for chunk in &fb.packet_chunks {
            match chunk {
                PacketStatusChunk::RunLengthChunk(r) => {
                    for _ in 0..r.run_length {
                        if statuses.len() as i64 >= count {
                            break 'chunks;
                        }
                        statuses.push(r.packet_status_symbol);
                    }
                }
                PacketStatusChunk::StatusVectorChunk(v) => {
                    for s in &v.symbol_list {
                        if statuses.len() as i64 >= count {
                            break 'chunks;
                        }
                        statuses.push(*s);
                    }
                }
            }
        }
        // The reference time counts 64 ms units (24 bits, signed on the wire; kept as sent).
        let mut arrival = (fb.reference_time as i64) * 64_000;
        let mut deltas = fb.recv_deltas.iter();
        let mut named: Vec<(usize, Sent, Option<i64>)> = Vec::with_capacity(statuses.len());
        for (i, status) in statuses.iter().enumerate() {
            let seq = base + i as i64;
            let received = matches!(status, SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta);
            let at = if received {
                match deltas.next() {
                    Some(d) => {
                        arrival += d.delta;
                        Some(arrival)
                    }
                    None => break,
                }
            } else {
                None
            };
            if seq > self.highest || seq <= self.highest - HISTORY as i64 {
                continue;
            }
            let slot = seq as usize & (HISTORY - 1);
            let Some(sent) = self.slots[slot].filter(|s| s.seq == seq) else { continue };
            named.push((slot, sent, at));
        }
        // Numbers are given when packets are made, and the pacer lets audio (and resends) out
        // ahead of video made before it: a packet that left after the newest one reported
        // received may not have arrived yet when the viewer wrote its report. Not lost (that
        // would read as loss on a path that loses nothing): a later report says.
        let newest = named.iter().filter(|n| n.2.is_some()).map(|n| n.1.at).max();
        if newest.is_some_and(|t| self.newest_received.is_none_or(|n| t > n)) {
            self.newest_received = newest;
        }
        for (slot, sent, at) in named {
            if at.is_none() && self.newest_received.is_none_or(|t| sent.at > t) {
                continue;
            }
            let now = if at.is_some() { Reported::Received } else { Reported::Lost };
            match (self.reported[slot], now) {
                (Reported::Received, _) | (Reported::Lost, Reported::Lost) => {
                    self.duplicates += 1;
                    continue;
                }
                _ => self.reported[slot] = now,
            }
            results.push(PacketResult { sent, arrival_us: at });
        }
        if results.is_empty() && self.duplicates == duplicates_before {
            self.feedbacks_ignored += 1;
        }
        results
    }
}

/// The transport-wide sequence number in an RTP packet's header, if it carries ours first (as
/// [`crate::sender::write_extensions`] puts it).
pub fn read_extension(packet: &[u8], id: u8) -> Option<u16> {
    if packet.len() < 20 || packet[0] & 0x10 == 0 {
        return None;
    }
    let at = 12 + 4 * (packet[0] & 0x0f) as usize;
    let block = packet.get(at..at + 8)?;
    (block[0] == 0xbe && block[1] == 0xde && block[4] == (id << 4) | 1).then(|| u16::from_be_bytes([block[5], block[6]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::{RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc};
    use rtc_shared::marshal::{Marshal, Unmarshal};
    use std::time::Duration;

    fn feedback(base: u16, statuses: Vec<SymbolTypeTcc>, deltas_us: Vec<i64>, count: u8) -> TransportLayerCc {
        let fb = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: base,
            packet_status_count: statuses.len() as u16,
            reference_time: 10,
            fb_pkt_count: count,
            packet_chunks: vec![PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: statuses.clone(),
            })],
            recv_deltas: deltas_us
                .iter()
                .map(|d| RecvDelta {
                    type_tcc_packet: if *d >= 0 && *d < 64_000 {
                        SymbolTypeTcc::PacketReceivedSmallDelta
                    } else {
                        SymbolTypeTcc::PacketReceivedLargeDelta
                    },
                    delta: *d,
                })
                .collect(),
        };
        // Through the wire format, as a viewer's report arrives.
        let bytes = fb.marshal().unwrap();
        TransportLayerCc::unmarshal(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn a_packet_that_left_after_the_newest_received_is_not_lost_yet() {
        use SymbolTypeTcc::*;
        let mut h = TwccHistory::default();
        let t0 = Instant::now();
        // Video 10 and 11 made first, audio 12 made later but let out first; 11 leaves after
        // the viewer wrote a report naming 10 and 12.
        h.on_sent(10, t0, 1200, 0);
        h.on_sent(12, t0 + Duration::from_millis(1), 100, 0);
        h.on_sent(11, t0 + Duration::from_millis(3), 1200, 0);
        let r = h.on_feedback(&feedback(10, vec![PacketReceivedSmallDelta, PacketNotReceived, PacketReceivedSmallDelta], vec![1000, 1000], 1));
        let seen: Vec<(i64, bool)> = r.iter().map(|x| (x.sent.seq, x.arrival_us.is_some())).collect();
        assert_eq!(seen, vec![(10, true), (12, true)], "11 is not judged");
        // The next report has it: received, once.
        let r = h.on_feedback(&feedback(11, vec![PacketReceivedSmallDelta], vec![3000], 2));
        assert_eq!(r.len(), 1);
        assert!(r[0].arrival_us.is_some());
        // One that left before a packet reported received, and is reported missing, is lost.
        h.on_sent(13, t0 + Duration::from_millis(4), 1200, 0);
        h.on_sent(14, t0 + Duration::from_millis(5), 1200, 0);
        let r = h.on_feedback(&feedback(13, vec![PacketNotReceived, PacketReceivedSmallDelta], vec![5000], 3));
        let seen: Vec<(i64, bool)> = r.iter().map(|x| (x.sent.seq, x.arrival_us.is_some())).collect();
        assert_eq!(seen, vec![(13, false), (14, true)]);
    }

    #[test]
    fn extension_round_trips_and_unwraps_across_zero() {
        let mut p = vec![0x80 | 0x10, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        crate::sender::write_extensions(&mut p, Some((3, 0xfffe)), None);
        p.extend_from_slice(&[1, 2, 3]);
        assert_eq!(read_extension(&p, 3), Some(0xfffe));
        assert_eq!(read_extension(&p, 4), None);
        assert_eq!(unwrap(2, 0xfffe), 0x10002);
        assert_eq!(unwrap(0xfffe, 0x10002), 0xfffe);
    }

    #[test]
    fn reports_become_per_packet_results_and_hostile_ones_cost_little() {
        use SymbolTypeTcc::*;
        let mut h = TwccHistory::default();
        let t0 = Instant::now();
        for i in 0..6u16 {
            h.on_sent(65533u16.wrapping_add(i), t0 + Duration::from_millis(i as u64), 1000 + i as usize, 0);
        }
        let fb = feedback(
            65533,
            vec![PacketReceivedSmallDelta, PacketNotReceived, PacketReceivedSmallDelta, PacketReceivedLargeDelta, PacketReceivedSmallDelta, PacketNotReceived],
            vec![1000, 2000, 70_000, 250],
            1,
        );
        let r = h.on_feedback(&fb);
        // The last, not received and sent after every packet received, may be in flight: not
        // judged yet.
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].arrival_us, Some(640_000 + 1000));
        assert_eq!(r[1].arrival_us, None);
        assert_eq!(r[2].arrival_us, Some(640_000 + 3000));
        assert_eq!(r[3].arrival_us, Some(640_000 + 73_000));
        assert_eq!(r[4].sent.size, 1004);
        assert_eq!(r[4].sent.seq, 65537, "unwrapped past 65535");
        // The same report again is ignored; one for numbers never sent gives nothing.
        assert!(h.on_feedback(&fb).is_empty());
        let far = feedback(30_000, vec![PacketReceivedSmallDelta; 7], vec![10; 7], 2);
        assert!(h.on_feedback(&far).is_empty());
        // A run-length chunk claiming the most packets a report can name is read only as far as
        // the history.
        let huge = TransportLayerCc {
            base_sequence_number: 0,
            packet_status_count: u16::MAX,
            fb_pkt_count: 3,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: PacketNotReceived,
                run_length: 8191,
            }); 8],
            ..Default::default()
        };
        assert!(h.on_feedback(&huge).len() <= 6);
    }

    #[test]
    fn a_packet_reported_again_counts_once() {
        use SymbolTypeTcc::*;
        let mut h = TwccHistory::default();
        let t0 = Instant::now();
        for i in 0..4u16 {
            h.on_sent(i, t0 + Duration::from_millis(i as u64), 1000, 0);
        }
        let first = h.on_feedback(&feedback(0, vec![PacketReceivedSmallDelta, PacketNotReceived, PacketReceivedSmallDelta], vec![1000, 1000], 1));
        assert_eq!(first.len(), 3);
        // Packet 1 is resent under its number; the receiver's next report starts again at it
        // (the window moved back), naming 2 again: 1 now arrived, 2 is not counted twice.
        h.on_sent(1, t0 + Duration::from_millis(50), 1000, 0);
        let again = h.on_feedback(&feedback(1, vec![PacketReceivedSmallDelta, PacketReceivedSmallDelta, PacketReceivedSmallDelta], vec![60_000, 1000, 1000], 2));
        let seqs: Vec<(i64, bool)> = again.iter().map(|r| (r.sent.seq, r.arrival_us.is_some())).collect();
        assert_eq!(seqs, vec![(1, true), (3, true)]);
        assert_eq!(again[0].sent.at, t0 + Duration::from_millis(50), "the resend's time");
        // Reported lost twice: once.
        h.on_sent(4, t0, 1000, 0);
        assert_eq!(h.on_feedback(&feedback(4, vec![PacketNotReceived], vec![], 3)).len(), 1);
        assert_eq!(h.on_feedback(&feedback(4, vec![PacketNotReceived], vec![], 4)).len(), 0);
        assert_eq!(h.duplicates, 2);
    }
}
