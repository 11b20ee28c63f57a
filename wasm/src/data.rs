//! WebRTC data channels (RFC 8831) and their establishment protocol (DCEP, RFC 8832), sans-IO:
//! SCTP packets in (each one DTLS application-data record, decrypted), SCTP packets out (each
//! to be written as one DTLS record), time in, events out.
//!
//! SCTP itself — the handshake, congestion control, retransmission, fragmentation and
//! reassembly, partial reliability (RFC 3758) and stream reset (RFC 6525) — is `rtc-sctp`. Here:
//! DCEP, the channel table, and the bounds that keep a viewer from growing our memory or CPU
//! without limit. Every packet from the viewer is checked before `rtc-sctp` reads it (its
//! CRC32c, ports and chunk lengths), and each DATA chunk is passed on in an SCTP packet of its
//! own so what it holds in memory is what it carries:
//!
//! - DATA may reach at most [`TSN_WINDOW`] TSNs past the viewer's cumulative TSN (as our latest
//!   SACK acknowledged it), and received data held here (out of order, or a message still
//!   incomplete) may cost at most [`INBOUND_BUDGET`], each chunk charged its payload plus
//!   [`CHUNK_OVERHEAD`] (the chunk the cumulative TSN waits for may use [`INBOUND_RESERVE`]
//!   more). A chunk past either bound is not passed on: to the viewer it is lost, and sent again
//!   later.
//! - A message sent in order whose fragments add up to more than [`MAX_MESSAGE_SIZE`] (our
//!   `a=max-message-size`) ends the association; a complete one over it (reassembled out of
//!   order) is dropped with an [`DataEvent::Error`].
//! - New streams only from a DCEP `DATA_CHANNEL_OPEN`, on the viewer's stream ids (even for
//!   the DTLS client, odd for the server: RFC 8832 §6), at most [`MAX_STREAMS`] at once; at most [`MAX_CHANNELS`] channels, an
//!   open past that refused by resetting its stream.
//! - FORWARD TSN within [`TSN_WINDOW`] (`rtc-sctp` walks every TSN it skips); at most
//!   [`MAX_WAITING_RESETS`] stream reset requests waiting for data still to come; a viewer that
//!   leaves more than [`MAX_UNANSWERED_RESETS`] of our stream resets unanswered loses the
//!   association.
//! - One association: an INIT repeated while the handshake is under way gets our INIT ACK again
//!   (the same one), an INIT once it is established is dropped (no restart).
//!
//! Packets that fail a check are counted in [`DataChannels::ignored`], never fatal.
//!
//! As the DTLS client ([`DataChannels::new_client`], the role browsers' `actpass` offers give
//! the master) we send the SCTP INIT and open even stream ids; a viewer's own INIT is not passed
//! on (browsers send one whatever their role, and answer ours with an INIT ACK as RFC 4960
//! §5.2.1 says). As the DTLS server ([`DataChannels::new`]) we answer the viewer's INIT and open
//! odd stream ids.

use bytes::Bytes;
use rtc_sctp::{
    Association, AssociationError, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig,
    EndpointEvent, Event, Payload, PayloadProtocolIdentifier as Ppid, ReliabilityType, ServerConfig, StreamEvent,
    TransportConfig,
};
use rtc_shared::TransportProtocol;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The largest message we accept: our `a=max-message-size`.
pub const MAX_MESSAGE_SIZE: usize = 262_144;
/// The viewer's limit when its offer has no `a=max-message-size` (RFC 8841 §6.1).
pub const DEFAULT_REMOTE_MAX_MESSAGE: usize = 65_536;
/// The SCTP port WebRTC uses (`a=sctp-port`).
pub const SCTP_PORT: u16 = 5000;
/// Channels open at once, opened by either side.
pub const MAX_CHANNELS: usize = 64;
/// Bytes sent and not yet acknowledged (or abandoned) across all channels; past this
/// [`DataChannels::send`] refuses.
pub const MAX_BUFFERED: usize = 1 << 20;
/// The receive window we advertise (a_rwnd).
pub const RECEIVE_WINDOW: u32 = 1 << 20;
/// What the viewer's DATA may cost us while held (out of order, or part of a message not yet
/// complete): each chunk its payload plus [`CHUNK_OVERHEAD`].
pub const INBOUND_BUDGET: usize = 4 << 20;
/// Past [`INBOUND_BUDGET`], what the DATA chunk the viewer's cumulative TSN waits for may still
/// use: it lets held data be delivered (and its charge go). A message of our largest size, in
/// chunks.
pub const INBOUND_RESERVE: usize = MAX_MESSAGE_SIZE + 256 * CHUNK_OVERHEAD;
/// What one held DATA chunk costs beyond its payload: the packet it is passed on in and the
/// bookkeeping `rtc-sctp` keeps for it.
pub const CHUNK_OVERHEAD: usize = 512;
/// How far (in TSNs) DATA or a FORWARD TSN may reach past the viewer's cumulative TSN.
pub const TSN_WINDOW: u32 = 16_384;
/// SCTP streams that may exist at once (channels, plus streams being reset).
pub const MAX_STREAMS: usize = 2 * MAX_CHANNELS;
/// The viewer's stream reset requests that wait for DATA it has not sent yet.
pub const MAX_WAITING_RESETS: usize = 8;
/// Our stream reset requests the viewer may leave unanswered (RFC 6525 wants an answer).
pub const MAX_UNANSWERED_RESETS: usize = 64;
/// The largest SCTP packet read (a DTLS record carries at most 16 KB).
const MAX_PACKET: usize = 1 << 16;

/// The viewer as `rtc-sctp`'s endpoint sees it (there is one peer; a reserved class-E address).
const PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(240, 0, 0, 2), SCTP_PORT));
const LOCAL: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(240, 0, 0, 1), SCTP_PORT));

// Chunk types (RFC 4960 §3.2, RFC 6525 §3.1, RFC 3758 §3.2).
const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const ABORT: u8 = 6;
const ERROR: u8 = 9;
const RECONFIG: u8 = 130;
const FORWARD_TSN: u8 = 192;
/// The chunk types `rtc-sctp` reads; others it refuses with the whole packet.
const KNOWN: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 130, 192];
// RE-CONFIG parameters (RFC 6525 §4).
const OUTGOING_RESET_REQUEST: u16 = 13;
const RECONFIG_RESPONSE: u16 = 16;
// DATA chunk flags.
const BEGINNING: u8 = 0x02;
const ENDING: u8 = 0x01;
// DCEP message types (RFC 8832 §5) and its payload protocol identifier.
const DCEP_OPEN: u8 = 0x03;
const DCEP_ACK: u8 = 0x02;
const PPID_DCEP: u32 = 50;

/// How hard a channel tries to deliver each message (RFC 8831 §6.1; W3C `maxRetransmits`,
/// `maxPacketLifeTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// Every message, retransmitted until acknowledged.
    Reliable,
    /// A message is abandoned after this many retransmissions.
    MaxRetransmits(u16),
    /// A message is abandoned this many milliseconds after it was sent.
    MaxLifetimeMs(u16),
}

/// What the data channels report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent {
    /// A channel is open: one the viewer opened (its `DATA_CHANNEL_OPEN` was answered with
    /// `DATA_CHANNEL_ACK`; even id), or one of ours the viewer acknowledged (odd id).
    Opened { id: u16, label: String, protocol: String, ordered: bool, reliability: Reliability },
    /// A message on an open channel (`binary` false: text, UTF-8 by the viewer's word).
    Message { id: u16, binary: bool, data: Vec<u8> },
    /// A channel closed: its stream was reset by the viewer, we closed it, or the association
    /// ended.
    Closed { id: u16 },
    /// Something went wrong that the session may want to log: a refused channel, a message too
    /// large, the association ending (after which nothing works and every channel is closed).
    Error(String),
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    /// The message is larger than the viewer accepts (its `a=max-message-size`).
    TooLarge { size: usize, limit: usize },
    /// Sending it would queue more than [`MAX_BUFFERED`] bytes not yet acknowledged.
    Buffered { buffered: usize, size: usize, limit: usize },
    /// [`MAX_CHANNELS`] channels are open.
    TooManyChannels(usize),
    /// No open channel has this id.
    NoChannel(u16),
    /// The channel is ours and the association is not up yet: its `DATA_CHANNEL_OPEN` has not
    /// been sent.
    NotOpen(u16),
    /// Every stream id of ours is in use.
    NoStreamId,
    /// A label or protocol longer than DCEP carries (65,535 bytes).
    TooLong(&'static str),
    /// The association ended (the reason was reported as [`DataEvent::Error`]).
    Ended,
    /// SCTP refused it (the text is `rtc-sctp`'s).
    Sctp(String),
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::TooLarge { size, limit } => {
                write!(f, "a {size}-byte message is larger than the viewer's a=max-message-size of {limit} bytes")
            }
            DataError::Buffered { buffered, size, limit } => write!(
                f,
                "{buffered} bytes are waiting to be acknowledged; {size} more would pass the {limit}-byte send buffer"
            ),
            DataError::TooManyChannels(n) => write!(f, "{n} data channels are open (the most we keep)"),
            DataError::NoChannel(id) => write!(f, "no open data channel with id {id}"),
            DataError::NotOpen(id) => write!(f, "data channel {id} is not open yet (the SCTP association is not up)"),
            DataError::NoStreamId => f.write_str("every SCTP stream id of ours is in use"),
            DataError::TooLong(what) => write!(f, "the {what} is longer than 65535 bytes"),
            DataError::Ended => f.write_str("the SCTP association has ended"),
            DataError::Sctp(e) => write!(f, "SCTP: {e}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ours, waiting for the association: its `DATA_CHANNEL_OPEN` goes out once it is up.
    Waiting,
    /// Ours, `DATA_CHANNEL_OPEN` sent, nothing heard back yet: what we send goes ordered
    /// (RFC 8832 §6).
    Opening,
    Open,
}

#[derive(Debug)]
struct Channel {
    label: String,
    protocol: String,
    ordered: bool,
    reliability: Reliability,
    state: State,
}

impl Channel {
    fn opened(&self, id: u16) -> DataEvent {
        DataEvent::Opened {
            id,
            label: self.label.clone(),
            protocol: self.protocol.clone(),
            ordered: self.ordered,
            reliability: self.reliability,
        }
    }
}

/// What the checks of the viewer's packets remember.
struct Guard {
    /// The viewer's Initiate Tag, from its INIT.
    peer_tag: Option<u32>,
    /// Our INIT ACK, sent again if the viewer repeats its INIT.
    init_ack: Option<Bytes>,
    /// The viewer's cumulative TSN as our latest SACK acknowledged it (its initial TSN − 1
    /// before that). `rtc-sctp`'s own is never behind it.
    cum: Option<u32>,
    /// The TSNs in (cum, cum + TSN_WINDOW] passed on, one bit each (index TSN mod the window).
    seen: Vec<u64>,
    /// The first TSN after `cum` not passed on: the one `rtc-sctp`'s cumulative TSN waits for.
    next: u32,
    /// What the DATA passed on and not yet read back out may cost (never less than the truth:
    /// chunks `rtc-sctp` dropped stay charged until a SACK shows it holds nothing).
    charged: usize,
    /// The viewer's stream reset requests (request sequence number, sender's last TSN) that
    /// wait for DATA not yet acknowledged.
    waiting_resets: Vec<(u32, u32)>,
    /// Request sequence numbers of our stream resets the viewer has not answered (nor any later
    /// one).
    unanswered: Vec<u32>,
    /// The message being received in order: the TSN its next fragment takes, its stream, its
    /// bytes so far.
    fragments: Option<(u32, u16, usize)>,
}

impl Guard {
    fn new() -> Guard {
        Guard {
            peer_tag: None,
            init_ack: None,
            cum: None,
            seen: vec![0; TSN_WINDOW as usize / 64],
            next: 0,
            charged: 0,
            waiting_resets: Vec::new(),
            unanswered: Vec::new(),
            fragments: None,
        }
    }

    /// How far `tsn` is past the cumulative TSN: `None` at or before it (or when there is none).
    fn ahead(&self, tsn: u32) -> Option<u32> {
        let d = tsn.wrapping_sub(self.cum?);
        (d != 0 && d < 1 << 31).then_some(d)
    }

    fn bit(tsn: u32) -> (usize, u64) {
        let i = (tsn % TSN_WINDOW) as usize;
        (i / 64, 1 << (i % 64))
    }

    fn seen(&self, tsn: u32) -> bool {
        let (w, b) = Guard::bit(tsn);
        self.seen[w] & b != 0
    }

    fn mark(&mut self, tsn: u32) {
        let (w, b) = Guard::bit(tsn);
        self.seen[w] |= b;
        while self.seen(self.next) && self.ahead(self.next).is_some_and(|d| d < TSN_WINDOW) {
            self.next = self.next.wrapping_add(1);
        }
    }

    /// The viewer's first TSN (from its INIT, or its INIT ACK when we sent the INIT).
    fn start(&mut self, initial_tsn: u32) {
        self.cum = Some(initial_tsn.wrapping_sub(1));
        self.next = initial_tsn;
    }

    /// The viewer's cumulative TSN moved to `cum` (a SACK of ours said so).
    fn advance(&mut self, cum: u32) {
        if let Some(old) = self.cum {
            let d = cum.wrapping_sub(old);
            if d == 0 || d >= 1 << 31 {
                return;
            }
            if d >= TSN_WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for i in 1..=d {
                    let (w, b) = Guard::bit(old.wrapping_add(i));
                    self.seen[w] &= !b;
                }
            }
        }
        self.cum = Some(cum);
        if self.ahead(self.next).is_none() {
            self.next = cum.wrapping_add(1);
            while self.seen(self.next) && self.ahead(self.next).is_some_and(|d| d < TSN_WINDOW) {
                self.next = self.next.wrapping_add(1);
            }
        }
        self.waiting_resets.retain(|&(_, last)| {
            let d = last.wrapping_sub(cum);
            d != 0 && d < 1 << 31
        });
    }

    /// A packet we send: what its SACK, INIT ACK and stream resets say.
    fn outgoing(&mut self, packet: &[u8], server: bool) {
        let Some(chunks) = packet.get(12..).and_then(chunks) else { return };
        for c in chunks {
            match c[0] {
                SACK if c.len() >= 16 => {
                    let (cum, rwnd, gaps) = (be32(c, 4), be32(c, 8), be16(c, 12));
                    self.advance(cum);
                    if rwnd >= RECEIVE_WINDOW && gaps == 0 {
                        // `rtc-sctp` holds no received data at all: nothing is charged.
                        self.charged = 0;
                        self.seen.iter_mut().for_each(|w| *w = 0);
                        self.next = cum.wrapping_add(1);
                    }
                }
                INIT_ACK if server => self.init_ack = Some(Bytes::copy_from_slice(packet)),
                RECONFIG => {
                    for p in params(c) {
                        if be16(p, 0) == OUTGOING_RESET_REQUEST && p.len() >= 16 && !self.unanswered.contains(&be32(p, 4)) {
                            self.unanswered.push(be32(p, 4));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A RE-CONFIG chunk from the viewer: false when it asks for more waiting resets than we
    /// keep, or names a TSN beyond the window.
    fn admit_reconfig(&mut self, c: &[u8]) -> bool {
        for p in params(c) {
            match be16(p, 0) {
                RECONFIG_RESPONSE if p.len() >= 12 => {
                    // A peer takes requests in sequence-number order (RFC 6525), so an answer
                    // covers every earlier request too.
                    let rsn = be32(p, 4);
                    self.unanswered.retain(|&r| r.wrapping_sub(rsn).wrapping_sub(1) < 1 << 31);
                }
                OUTGOING_RESET_REQUEST if p.len() >= 16 => {
                    let (rsn, last) = (be32(p, 4), be32(p, 12));
                    match self.ahead(last) {
                        Some(d) if d > TSN_WINDOW => return false,
                        Some(_) if !self.waiting_resets.iter().any(|&(r, _)| r == rsn) => {
                            if self.waiting_resets.len() >= MAX_WAITING_RESETS {
                                return false;
                            }
                            self.waiting_resets.push((rsn, last));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Release what a message read out of `rtc-sctp` was charged.
    fn release(&mut self, bytes: usize, chunks: usize) {
        self.charged = self.charged.saturating_sub(bytes + chunks * CHUNK_OVERHEAD);
    }
}

/// What becomes of a DATA chunk from the viewer.
enum Verdict {
    Pass,
    Drop,
    /// A violation that ends the association.
    Fail(String),
}

/// The data channels of one viewer's session: one SCTP association over its DTLS.
pub struct DataChannels {
    endpoint: Endpoint,
    association: Option<(AssociationHandle, Association)>,
    /// Whether we answer the INIT (the DTLS server's side) or send it.
    server: bool,
    local_port: u16,
    remote_port: u16,
    remote_max_message: usize,
    channels: BTreeMap<u16, Channel>,
    guard: Guard,
    out: VecDeque<Bytes>,
    events: VecDeque<DataEvent>,
    /// Why the association is ending, as `rtc-sctp` said.
    lost: Option<String>,
    ended: bool,
    /// Packets or chunks from the viewer that were malformed or refused (counted, never fatal).
    pub ignored: u64,
}

impl DataChannels {
    /// Data channels as the DTLS server: the viewer sends the INIT. Ports from the offer's and
    /// our `a=sctp-port` ([`SCTP_PORT`] in practice); `remote_max_message` from the offer's
    /// `a=max-message-size` ([`DEFAULT_REMOTE_MAX_MESSAGE`] when absent; 0, "no limit", is
    /// taken as [`MAX_BUFFERED`]).
    pub fn new(now: Instant, remote_port: u16, local_port: u16, remote_max_message: usize) -> DataChannels {
        let _ = now;
        let mut d = DataChannels::with_role(true, remote_port, local_port, remote_max_message);
        let server = ServerConfig::new(d.transport());
        d.endpoint.set_server_config(Some(Arc::new(server)));
        d
    }

    /// Data channels as the DTLS client (the viewer's side): sends the INIT now, opens channels
    /// on even stream ids. `rtc-sctp` addresses an association it initiates from and to port
    /// 5000 whatever the ports given, so both must be [`SCTP_PORT`] for the two to talk.
    pub fn new_client(now: Instant, remote_port: u16, local_port: u16, remote_max_message: usize) -> DataChannels {
        let mut d = DataChannels::with_role(false, remote_port, local_port, remote_max_message);
        let config = ClientConfig::new(d.transport());
        match d.endpoint.connect(now, config, PEER) {
            Ok(a) => d.association = Some(a),
            Err(e) => d.end(format!("SCTP: {e}")),
        }
        d.flush(now);
        d
    }

    fn with_role(server: bool, remote_port: u16, local_port: u16, remote_max_message: usize) -> DataChannels {
        DataChannels {
            endpoint: Endpoint::new(LOCAL, TransportProtocol::UDP, Arc::new(EndpointConfig::new()), None),
            association: None,
            server,
            local_port,
            remote_port,
            remote_max_message: match remote_max_message {
                0 => MAX_BUFFERED,
                n => n.min(MAX_BUFFERED),
            },
            channels: BTreeMap::new(),
            guard: Guard::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            lost: None,
            ended: false,
            ignored: 0,
        }
    }

    fn transport(&self) -> TransportConfig {
        TransportConfig::default()
            .with_sctp_port(self.local_port)
            .with_max_receive_buffer_size(RECEIVE_WINDOW)
            .with_max_message_size(self.remote_max_message as u32)
    }

    /// Whether the association is up (channels can be opened at any time: ours wait for it).
    pub fn is_connected(&self) -> bool {
        !self.ended && self.association.as_ref().is_some_and(|(_, a)| !a.is_handshaking() && !a.is_closed())
    }

    /// Whether the association ended (closed, aborted, or failed); nothing works after.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// One SCTP packet from the viewer (the plaintext of one DTLS application-data record).
    pub fn handle_sctp(&mut self, now: Instant, packet: &[u8]) {
        if self.ended {
            self.ignored += 1;
            return;
        }
        self.read_packet(now, packet);
        self.process(now);
        self.flush(now);
    }

    /// An SCTP packet to write to the viewer through DTLS (one record each).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front().map(|b| b.to_vec())
    }

    /// What happened since the last call.
    pub fn poll_event(&mut self) -> Option<DataEvent> {
        self.events.pop_front()
    }

    /// When [`DataChannels::handle_timeout`] wants to be called (retransmissions, delayed
    /// SACKs).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        self.association.as_ref().and_then(|(_, a)| a.poll_timeout())
    }

    /// Run the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        if let Some((_, a)) = self.association.as_mut() {
            a.handle_timeout(now);
        }
        self.process(now);
        self.flush(now);
    }

    /// Open a channel (DCEP `DATA_CHANNEL_OPEN` on a stream id of ours). Before the association
    /// is up the channel waits and its open goes out when it is. [`DataEvent::Opened`] follows
    /// when the viewer acknowledges; messages may be sent before that.
    pub fn open(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        ordered: bool,
        reliability: Reliability,
    ) -> Result<u16, DataError> {
        if self.ended {
            return Err(DataError::Ended);
        }
        if label.len() > 0xffff {
            return Err(DataError::TooLong("label"));
        }
        if protocol.len() > 0xffff {
            return Err(DataError::TooLong("protocol"));
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(DataError::TooManyChannels(MAX_CHANNELS));
        }
        let id = self.free_id().ok_or(DataError::NoStreamId)?;
        let channel = Channel { label: label.to_owned(), protocol: protocol.to_owned(), ordered, reliability, state: State::Waiting };
        self.channels.insert(id, channel);
        if self.is_connected() {
            self.start(now, id);
            self.flush(now);
        }
        Ok(id)
    }

    /// Send one message on an open channel. Empty messages go as one zero byte with the
    /// "empty" payload protocol identifiers (56, 57; RFC 8831 §6.6).
    pub fn send(&mut self, now: Instant, id: u16, binary: bool, data: &[u8]) -> Result<(), DataError> {
        if self.ended {
            return Err(DataError::Ended);
        }
        if data.len() > self.remote_max_message {
            return Err(DataError::TooLarge { size: data.len(), limit: self.remote_max_message });
        }
        match self.channels.get(&id).map(|c| c.state) {
            None => return Err(DataError::NoChannel(id)),
            Some(State::Waiting) => return Err(DataError::NotOpen(id)),
            Some(_) => {}
        }
        let buffered = self.buffered_amount();
        if buffered + data.len() > MAX_BUFFERED {
            return Err(DataError::Buffered { buffered, size: data.len(), limit: MAX_BUFFERED });
        }
        let (ppid, payload) = match (binary, data.is_empty()) {
            (false, false) => (Ppid::String, Bytes::copy_from_slice(data)),
            (true, false) => (Ppid::Binary, Bytes::copy_from_slice(data)),
            (false, true) => (Ppid::StringEmpty, Bytes::from_static(&[0])),
            (true, true) => (Ppid::BinaryEmpty, Bytes::from_static(&[0])),
        };
        let Some((_, a)) = self.association.as_mut() else { return Err(DataError::NotOpen(id)) };
        let result = a
            .stream(id)
            .and_then(|mut s| s.write_sctp(now, &payload, ppid))
            .map(|_| ())
            .map_err(|e| DataError::Sctp(e.to_string()));
        self.flush(now);
        result
    }

    /// Close a channel: its outgoing stream is reset (RFC 8831 §6.7) and
    /// [`DataEvent::Closed`] follows at once; nothing more is delivered on it. Unknown ids are
    /// ignored.
    pub fn close(&mut self, now: Instant, id: u16) {
        let Some(channel) = self.channels.remove(&id) else { return };
        if channel.state != State::Waiting {
            self.reset(now, id);
        }
        self.events.push_back(DataEvent::Closed { id });
        self.flush(now);
    }

    /// End the association now (an SCTP ABORT, to be written before DTLS closes); every channel
    /// closes.
    pub fn abort(&mut self, now: Instant) {
        if !self.ended {
            self.fail(now, "closed by us".into());
        }
    }

    /// Bytes sent on open channels that the viewer has not acknowledged yet (nor were they
    /// abandoned).
    pub fn buffered_amount(&mut self) -> usize {
        let Some((_, a)) = self.association.as_mut() else { return 0 };
        self.channels
            .keys()
            .map(|&id| a.stream(id).and_then(|s| s.buffered_amount()).unwrap_or(0))
            .sum()
    }

    /// Open channels (either side's).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// What the viewer's data held here (out of order, or part of a message not yet complete)
    /// is charged: never more than [`INBOUND_BUDGET`] + [`INBOUND_RESERVE`].
    pub fn held_bytes(&self) -> usize {
        self.guard.charged
    }

    /// Whether a stream id belongs to the viewer's side (even for the DTLS client).
    fn theirs(&self, id: u16) -> bool {
        (id % 2 == 0) == self.server
    }

    fn free_id(&mut self) -> Option<u16> {
        let limit = self
            .association
            .as_ref()
            .and_then(|(_, a)| a.negotiated_max_streams())
            .unwrap_or(u16::MAX);
        let mut id: u16 = if self.server { 1 } else { 0 };
        while id < limit {
            let in_use = self.channels.contains_key(&id)
                || self.association.as_mut().is_some_and(|(_, a)| a.stream(id).is_ok());
            if !in_use {
                return Some(id);
            }
            id = id.checked_add(2)?;
        }
        None
    }

    /// Send a waiting channel's `DATA_CHANNEL_OPEN`.
    fn start(&mut self, now: Instant, id: u16) {
        let Some(channel) = self.channels.get_mut(&id) else { return };
        let Some((_, a)) = self.association.as_mut() else { return };
        let open = dcep_open(channel);
        let (rel, value) = sctp_reliability(channel.reliability);
        let result = a.open_stream(id, Ppid::Dcep).and_then(|mut s| {
            // Ordered until the viewer answers (RFC 8832 §6).
            s.set_reliability_params(false, rel, value)?;
            s.write_sctp(now, &open, Ppid::Dcep)
        });
        match result {
            Ok(_) => channel.state = State::Opening,
            Err(e) => {
                self.channels.remove(&id);
                self.events.push_back(DataEvent::Error(format!("data channel {id} could not be opened: {e}")));
                self.events.push_back(DataEvent::Closed { id });
            }
        }
    }

    /// Reset our outgoing stream `id` (the viewer resets its own in turn, RFC 8831 §6.7).
    fn reset(&mut self, now: Instant, id: u16) {
        if let Some((_, a)) = self.association.as_mut() {
            if let Ok(mut s) = a.stream(id) {
                let _ = s.close(now);
            }
        }
    }

    /// Check one packet from the viewer and pass it on: each DATA chunk in a packet of its own,
    /// the chunks between them together.
    fn read_packet(&mut self, now: Instant, p: &[u8]) {
        let valid = p.len() >= 16
            && p.len() <= MAX_PACKET
            && be16(p, 0) == self.remote_port
            && be16(p, 2) == self.local_port
            && u32::from_le_bytes([p[8], p[9], p[10], p[11]]) == checksum(p);
        let Some(chunks) = valid.then(|| chunks(&p[12..])).flatten() else {
            self.ignored += 1;
            return;
        };
        let header = &p[..8];
        let mut run: Vec<&[u8]> = Vec::new();
        for c in chunks {
            match c[0] {
                DATA => {
                    self.feed_run(now, header, &mut run);
                    match self.admit_data(c) {
                        Verdict::Pass => self.feed(now, packet(header, &[c])),
                        Verdict::Drop => self.ignored += 1,
                        Verdict::Fail(reason) => return self.fail(now, reason),
                    }
                }
                INIT => {
                    if self.admit_init(c) {
                        run.push(c);
                    }
                }
                INIT_ACK => {
                    if !self.server && self.guard.cum.is_none() && c.len() >= 20 {
                        self.guard.start(be32(c, 16));
                    }
                    run.push(c);
                }
                RECONFIG => {
                    if self.guard.admit_reconfig(c) {
                        run.push(c);
                    } else {
                        self.ignored += 1;
                    }
                }
                FORWARD_TSN => match (c.len() >= 8).then(|| self.guard.ahead(be32(c, 4))) {
                    Some(Some(d)) if d > TSN_WINDOW => self.ignored += 1,
                    Some(_) => run.push(c),
                    None => self.ignored += 1,
                },
                // `rtc-sctp` 0.21.1 slices an error cause by its length unchecked (a panic).
                ABORT | ERROR if !causes_fit(c) => self.ignored += 1,
                t if KNOWN.contains(&t) => run.push(c),
                // Unknown chunk types (RFC 4960 §3.2): the two high bits say skip it, or stop
                // reading the packet here.
                t if t & 0x80 != 0 => self.ignored += 1,
                _ => {
                    self.ignored += 1;
                    break;
                }
            }
        }
        self.feed_run(now, header, &mut run);
    }

    fn feed_run(&mut self, now: Instant, header: &[u8], run: &mut Vec<&[u8]>) {
        if !run.is_empty() {
            self.feed(now, packet(header, run));
            run.clear();
        }
    }

    /// Pass a checked packet to `rtc-sctp`.
    fn feed(&mut self, now: Instant, packet: Bytes) {
        match self.endpoint.handle(now, PEER, None, packet) {
            Some((h, DatagramEvent::NewAssociation(a))) => {
                if self.association.is_none() {
                    self.association = Some((h, a));
                    self.flush(now);
                    // An INIT `rtc-sctp` refused leaves no INIT ACK, and room for another INIT.
                    if self.guard.init_ack.is_none() {
                        self.drop_association();
                        self.ignored += 1;
                    }
                } else {
                    self.endpoint.handle_event(h, EndpointEvent::drained());
                    self.ignored += 1;
                }
            }
            Some((h, DatagramEvent::AssociationEvent(e))) => match self.association.as_mut() {
                Some((mine, a)) if *mine == h => a.handle_event(e),
                _ => self.ignored += 1,
            },
            _ => self.ignored += 1,
        }
    }

    fn drop_association(&mut self) {
        if let Some((h, _)) = self.association.take() {
            self.endpoint.handle_event(h, EndpointEvent::drained());
        }
        self.guard = Guard::new();
        self.lost = None;
    }

    /// An INIT from the viewer: pass it on (a new association) or not.
    fn admit_init(&mut self, c: &[u8]) -> bool {
        if !self.server || c.len() < 20 {
            self.ignored += 1;
            return false;
        }
        let (tag, tsn) = (be32(c, 4), be32(c, 16));
        match self.association.as_ref() {
            None => {}
            Some((_, a)) if a.is_handshaking() => {
                if self.guard.peer_tag == Some(tag) {
                    // The same INIT again: our INIT ACK was lost or is late. The same answer.
                    if let Some(ack) = self.guard.init_ack.clone() {
                        self.out.push_back(ack);
                    }
                    return false;
                }
                // Another INIT: the viewer started over before finishing; so do we.
                self.drop_association();
            }
            Some(_) => {
                self.ignored += 1;
                return false;
            }
        }
        self.guard = Guard::new();
        self.guard.peer_tag = Some(tag);
        self.guard.start(tsn);
        true
    }

    fn admit_data(&mut self, c: &[u8]) -> Verdict {
        if c.len() < 16 {
            return Verdict::Drop;
        }
        let (flags, tsn, stream, ppid, len) = (c[1], be32(c, 4), be16(c, 8), be32(c, 12), c.len() - 16);
        if self.guard.cum.is_none() {
            return Verdict::Drop;
        }
        let Some(ahead) = self.guard.ahead(tsn) else {
            // Already received: `rtc-sctp` reports the duplicate in its SACK.
            return Verdict::Pass;
        };
        if ahead > TSN_WINDOW {
            return Verdict::Drop;
        }
        if self.guard.seen(tsn) {
            return Verdict::Pass;
        }
        let theirs = self.theirs(stream);
        let Some((_, a)) = self.association.as_mut() else { return Verdict::Drop };
        if a.stream(stream).is_err() {
            let opens = flags & BEGINNING != 0 && ppid == PPID_DCEP && theirs;
            if !opens || a.stream_ids().len() >= MAX_STREAMS {
                return Verdict::Drop;
            }
        }
        let cost = len + CHUNK_OVERHEAD;
        let limit = if tsn == self.guard.next { INBOUND_BUDGET + INBOUND_RESERVE } else { INBOUND_BUDGET };
        if self.guard.charged + cost > limit {
            return Verdict::Drop;
        }
        let ending = flags & ENDING != 0;
        if flags & BEGINNING != 0 {
            self.guard.fragments = (!ending).then_some((tsn.wrapping_add(1), stream, len));
        } else if let Some((next, s, so_far)) = self.guard.fragments {
            if next == tsn && s == stream {
                let total = so_far + len;
                if total > MAX_MESSAGE_SIZE {
                    return Verdict::Fail(format!(
                        "the viewer sent a message of more than {MAX_MESSAGE_SIZE} bytes (our a=max-message-size) on stream {stream}"
                    ));
                }
                self.guard.fragments = (!ending).then_some((tsn.wrapping_add(1), stream, total));
            }
        }
        self.guard.mark(tsn);
        self.guard.charged += cost;
        Verdict::Pass
    }

    /// Move what `rtc-sctp` reported into channels and events.
    fn process(&mut self, now: Instant) {
        loop {
            let Some((h, a)) = self.association.as_mut() else { return };
            let mut any = false;
            let mut connected = false;
            let mut readable: Vec<u16> = Vec::new();
            let mut reset: Vec<u16> = Vec::new();
            while let Some(e) = a.poll() {
                any = true;
                match e {
                    Event::Connected => connected = true,
                    Event::HandshakeFailed { reason } => {
                        self.lost.get_or_insert(format!("handshake failed ({reason})"));
                    }
                    Event::AssociationLost { reason: AssociationError::Reset, id } => reset.push(id),
                    Event::AssociationLost { reason, .. } => {
                        self.lost.get_or_insert(reason.to_string());
                    }
                    Event::Stream(StreamEvent::Readable { id }) => readable.push(id),
                    _ => {}
                }
            }
            // Streams the viewer opened: their data is read by id, the queue only grows.
            while a.accept_stream().is_some() {}
            while let Some(e) = a.poll_endpoint_event() {
                self.endpoint.handle_event(*h, e);
            }
            // (An association answering an INIT is "closed" until the COOKIE ECHO arrives.)
            if a.is_closed() && (!a.is_handshaking() || self.lost.is_some()) {
                let reason = self.lost.take().unwrap_or_else(|| "the viewer closed it".into());
                return self.end(reason);
            }
            if connected {
                let waiting: Vec<u16> =
                    self.channels.iter().filter(|(_, c)| c.state == State::Waiting).map(|(&id, _)| id).collect();
                for id in waiting {
                    self.start(now, id);
                }
            }
            for id in reset {
                if self.channels.remove(&id).is_some() {
                    self.events.push_back(DataEvent::Closed { id });
                }
            }
            readable.sort_unstable();
            readable.dedup();
            for id in readable {
                self.read_stream(now, id);
            }
            if !any {
                return;
            }
        }
    }

    fn read_stream(&mut self, now: Instant, id: u16) {
        loop {
            let Some((_, a)) = self.association.as_mut() else { return };
            let Ok(mut s) = a.stream(id) else { return };
            let Ok(Some(chunks)) = s.read_sctp() else { return };
            let size = chunks.len();
            self.guard.release(size, chunks.chunks.len());
            if size > MAX_MESSAGE_SIZE {
                self.events.push_back(DataEvent::Error(format!(
                    "data channel {id}: a {size}-byte message is larger than our a=max-message-size of {MAX_MESSAGE_SIZE} bytes; dropped"
                )));
                continue;
            }
            let mut data = vec![0; size];
            if chunks.read(&mut data).is_err() {
                self.ignored += 1;
                continue;
            }
            self.deliver(now, id, chunks.ppi, data);
        }
    }

    fn deliver(&mut self, now: Instant, id: u16, ppid: Ppid, data: Vec<u8>) {
        let binary = match ppid {
            Ppid::Dcep => return self.dcep(now, id, &data),
            Ppid::String | Ppid::StringEmpty => false,
            Ppid::Binary | Ppid::BinaryEmpty => true,
            _ => {
                self.ignored += 1;
                return;
            }
        };
        let empty = matches!(ppid, Ppid::StringEmpty | Ppid::BinaryEmpty);
        if !self.heard(id) {
            self.ignored += 1;
            return;
        }
        let data = if empty { Vec::new() } else { data };
        self.events.push_back(DataEvent::Message { id, binary, data });
    }

    /// Something arrived on channel `id`: an opening channel of ours is open (RFC 8832 §6: any
    /// message counts as the acknowledgement). False when `id` is no channel.
    fn heard(&mut self, id: u16) -> bool {
        let Some(channel) = self.channels.get_mut(&id) else { return false };
        match channel.state {
            State::Open => true,
            State::Waiting => false,
            State::Opening => {
                channel.state = State::Open;
                let (rel, value) = sctp_reliability(channel.reliability);
                let unordered = !channel.ordered;
                let event = channel.opened(id);
                if let Some((_, a)) = self.association.as_mut() {
                    if let Ok(mut s) = a.stream(id) {
                        let _ = s.set_reliability_params(unordered, rel, value);
                    }
                }
                self.events.push_back(event);
                true
            }
        }
    }

    fn dcep(&mut self, now: Instant, id: u16, data: &[u8]) {
        match data.first() {
            Some(&DCEP_OPEN) => self.dcep_open(now, id, data),
            Some(&DCEP_ACK) if self.channels.get(&id).is_some_and(|c| c.state == State::Opening) => {
                self.heard(id);
            }
            _ => self.ignored += 1,
        }
    }

    /// The viewer's `DATA_CHANNEL_OPEN` on stream `id`: answer with `DATA_CHANNEL_ACK`, or
    /// refuse by resetting the stream.
    fn dcep_open(&mut self, now: Instant, id: u16, data: &[u8]) {
        if self.channels.contains_key(&id) {
            self.ignored += 1;
            return;
        }
        let parsed = parse_open(data);
        let refusal = match &parsed {
            _ if !self.theirs(id) => Some(format!("an open on stream {id}, one of our stream ids")),
            Err(e) => Some(format!("a malformed DATA_CHANNEL_OPEN on stream {id} ({e})")),
            Ok(c) if self.channels.len() >= MAX_CHANNELS => {
                Some(format!("channel {:?} on stream {id}: {MAX_CHANNELS} channels are open", c.label))
            }
            Ok(_) => None,
        };
        if let Some(why) = refusal {
            self.ignored += 1;
            self.events.push_back(DataEvent::Error(format!("refused the viewer's data channel: {why}")));
            return self.reset(now, id);
        }
        let Ok(channel) = parsed else { return };
        let (rel, value) = sctp_reliability(channel.reliability);
        let Some((_, a)) = self.association.as_mut() else { return };
        let result = a.stream(id).and_then(|mut s| {
            s.set_reliability_params(!channel.ordered, rel, value)?;
            s.write_sctp(now, &Bytes::from_static(&[DCEP_ACK]), Ppid::Dcep)
        });
        match result {
            Ok(_) => {
                self.events.push_back(channel.opened(id));
                self.channels.insert(id, channel);
            }
            Err(e) => {
                self.events.push_back(DataEvent::Error(format!("data channel {id}: DATA_CHANNEL_ACK not sent ({e})")));
                self.reset(now, id);
            }
        }
    }

    /// Collect what `rtc-sctp` has to send.
    fn flush(&mut self, now: Instant) {
        let Some((_, a)) = self.association.as_mut() else { return };
        while let Some(t) = a.poll_transmit(now) {
            if let Payload::RawEncode(packets) = t.message {
                for p in packets {
                    self.guard.outgoing(&p, self.server);
                    self.out.push_back(p);
                }
            }
        }
        if self.guard.unanswered.len() > MAX_UNANSWERED_RESETS && !self.ended {
            self.fail(now, format!("the viewer left more than {MAX_UNANSWERED_RESETS} stream resets unanswered"));
        }
    }

    /// End the association with an ABORT.
    fn fail(&mut self, now: Instant, reason: String) {
        if let Some((_, a)) = self.association.as_mut() {
            let _ = a.abort();
            while let Some(t) = a.poll_transmit(now) {
                if let Payload::RawEncode(packets) = t.message {
                    self.out.extend(packets);
                }
            }
        }
        self.end(reason);
    }

    fn end(&mut self, reason: String) {
        if self.ended {
            return;
        }
        self.ended = true;
        for id in std::mem::take(&mut self.channels).into_keys() {
            self.events.push_back(DataEvent::Closed { id });
        }
        self.events.push_back(DataEvent::Error(format!("SCTP association ended: {reason}")));
    }
}

fn sctp_reliability(r: Reliability) -> (ReliabilityType, u32) {
    match r {
        Reliability::Reliable => (ReliabilityType::Reliable, 0),
        Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n.into()),
        Reliability::MaxLifetimeMs(ms) => (ReliabilityType::Timed, ms.into()),
    }
}

/// A `DATA_CHANNEL_OPEN` (RFC 8832 §5.1) for `c`, priority normal (256).
fn dcep_open(c: &Channel) -> Bytes {
    let (kind, value) = match c.reliability {
        Reliability::Reliable => (0x00, 0),
        Reliability::MaxRetransmits(n) => (0x01, u32::from(n)),
        Reliability::MaxLifetimeMs(ms) => (0x02, u32::from(ms)),
    };
    let kind = if c.ordered { kind } else { kind | 0x80 };
    let mut m = Vec::with_capacity(12 + c.label.len() + c.protocol.len());
    m.extend_from_slice(&[DCEP_OPEN, kind, 1, 0]);
    m.extend_from_slice(&value.to_be_bytes());
    m.extend_from_slice(&(c.label.len() as u16).to_be_bytes());
    m.extend_from_slice(&(c.protocol.len() as u16).to_be_bytes());
    m.extend_from_slice(c.label.as_bytes());
    m.extend_from_slice(c.protocol.as_bytes());
    Bytes::from(m)
}

/// Read a `DATA_CHANNEL_OPEN` (RFC 8832 §5.1). Reliability parameters past 65,535 are taken
/// as 65,535 (W3C's limit, what browsers send at most).
fn parse_open(m: &[u8]) -> Result<Channel, &'static str> {
    if m.len() < 12 {
        return Err("shorter than its header");
    }
    let (kind, value) = (m[1], be32(m, 4));
    let (label_len, protocol_len) = (be16(m, 8) as usize, be16(m, 10) as usize);
    if m.len() != 12 + label_len + protocol_len {
        return Err("lengths do not add up");
    }
    let value = value.min(u16::MAX.into()) as u16;
    let reliability = match kind & 0x7f {
        0x00 => Reliability::Reliable,
        0x01 => Reliability::MaxRetransmits(value),
        0x02 => Reliability::MaxLifetimeMs(value),
        _ => return Err("unknown channel type"),
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| "label or protocol not UTF-8");
    Ok(Channel {
        label: text(&m[12..12 + label_len])?,
        protocol: text(&m[12 + label_len..])?,
        ordered: kind & 0x80 == 0,
        reliability,
        state: State::Open,
    })
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// CRC32c of an SCTP packet with its checksum field taken as zero (RFC 4960 §6.8; the value is
/// carried in the byte order `rtc-sctp` writes and reads, little-endian).
pub fn checksum(p: &[u8]) -> u32 {
    let c = crc32c::crc32c(&p[..8]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &p[12..])
}

/// The chunks after an SCTP common header, each without its padding; `None` if a length is
/// malformed. The last chunk's padding may be missing.
fn chunks(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body.len() - i < 4 {
            return None;
        }
        let len = be16(body, i + 2) as usize;
        if len < 4 || len > body.len() - i {
            return None;
        }
        out.push(&body[i..i + len]);
        i += (len + 3) & !3;
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// Whether every error cause of an ABORT or ERROR chunk fits in it, walked the way `rtc-sctp`
/// reads them (one after the other, no padding).
fn causes_fit(c: &[u8]) -> bool {
    let mut i = 4;
    while i + 4 <= c.len() {
        let len = be16(c, i + 2) as usize;
        if len < 4 {
            return true; // `rtc-sctp` refuses the packet itself
        }
        if len > c.len() - i {
            return false;
        }
        i += len;
    }
    true
}

/// The parameters of a RE-CONFIG chunk (each with its type and length; malformed tails are
/// left out).
fn params(c: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 4;
    while c.len().saturating_sub(i) >= 4 {
        let len = be16(c, i + 2) as usize;
        if len < 4 || len > c.len() - i {
            break;
        }
        out.push(&c[i..i + len]);
        i += (len + 3) & !3;
    }
    out
}

/// An SCTP packet: `header` (ports and verification tag), then `chunks`, each padded, then the
/// checksum.
fn packet(header: &[u8], chunks: &[&[u8]]) -> Bytes {
    let mut p = Vec::with_capacity(12 + chunks.iter().map(|c| (c.len() + 3) & !3).sum::<usize>());
    p.extend_from_slice(&header[..8]);
    p.extend_from_slice(&[0; 4]);
    for c in chunks {
        p.extend_from_slice(c);
        p.resize((p.len() + 3) & !3, 0);
    }
    let crc = crc32c::crc32c(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Our side (the DTLS server) and the viewer's (the DTLS client) joined by a lossy,
    /// reordering link with no delay.
    struct Link {
        server: DataChannels,
        client: DataChannels,
        now: Instant,
        /// Whether to lose a packet: (toward the server?, its number in that direction, bytes).
        lose: Box<dyn FnMut(bool, u64, &[u8]) -> bool>,
        /// Swap each two packets sent together.
        reorder: bool,
        sent: [u64; 2],
        /// Packets the link lost.
        lost: u64,
        /// Events seen so far, per side.
        at_server: Vec<DataEvent>,
        at_client: Vec<DataEvent>,
    }

    impl Link {
        fn new() -> Link {
            Link::with_limits(MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
        }

        /// `client_max`: what the client accepts (the server's limit to send), and the reverse.
        fn with_limits(client_max: usize, server_max: usize) -> Link {
            let now = Instant::now();
            Link {
                server: DataChannels::new(now, SCTP_PORT, SCTP_PORT, client_max),
                client: DataChannels::new_client(now, SCTP_PORT, SCTP_PORT, server_max),
                now,
                lose: Box::new(|_, _, _| false),
                reorder: false,
                sent: [0, 0],
                lost: 0,
                at_server: Vec::new(),
                at_client: Vec::new(),
            }
        }

        /// Carry packets and run timers until nothing moves, or `limit` of simulated time.
        fn run(&mut self, limit: Duration) {
            let end = self.now + limit;
            for _ in 0..1_000_000 {
                let mut moved = false;
                for to_server in [true, false] {
                    let from = if to_server { &mut self.client } else { &mut self.server };
                    let mut batch: Vec<Vec<u8>> = std::iter::from_fn(|| from.poll_transmit()).collect();
                    if self.reorder {
                        batch.chunks_exact_mut(2).for_each(|pair| pair.swap(0, 1));
                    }
                    for p in batch {
                        moved = true;
                        let n = &mut self.sent[usize::from(!to_server)];
                        *n += 1;
                        if (self.lose)(to_server, *n, &p) {
                            self.lost += 1;
                            continue;
                        }
                        let to = if to_server { &mut self.server } else { &mut self.client };
                        to.handle_sctp(self.now, &p);
                    }
                }
                self.at_server.extend(std::iter::from_fn(|| self.server.poll_event()));
                self.at_client.extend(std::iter::from_fn(|| self.client.poll_event()));
                if moved {
                    continue;
                }
                let next = [self.server.poll_timeout(), self.client.poll_timeout()].into_iter().flatten().min();
                match next {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        self.server.handle_timeout(self.now);
                        self.client.handle_timeout(self.now);
                    }
                    _ => return,
                }
            }
            panic!("the link never settled");
        }

        fn connected() -> Link {
            let mut l = Link::new();
            l.run(Duration::from_secs(5));
            assert!(l.server.is_connected() && l.client.is_connected());
            l
        }

        fn take_server(&mut self) -> Vec<DataEvent> {
            std::mem::take(&mut self.at_server)
        }

        fn take_client(&mut self) -> Vec<DataEvent> {
            std::mem::take(&mut self.at_client)
        }
    }

    fn messages(events: &[DataEvent], on: u16) -> Vec<(bool, Vec<u8>)> {
        events
            .iter()
            .filter_map(|e| match e {
                DataEvent::Message { id, binary, data } if *id == on => Some((*binary, data.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_viewer_opened_channel_carries_messages_both_ways() {
        let mut l = Link::connected();
        let id = l.client.open(l.now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap();
        assert_eq!(id, 0, "the DTLS client opens even stream ids");
        l.run(Duration::from_secs(5));
        let opened = DataEvent::Opened {
            id,
            label: "kvsDataChannel".into(),
            protocol: "".into(),
            ordered: true,
            reliability: Reliability::Reliable,
        };
        assert_eq!(l.take_server(), vec![opened.clone()]);
        assert_eq!(l.take_client(), vec![opened], "the viewer's channel is open once acknowledged");
        l.client.send(l.now, id, false, b"hello").unwrap();
        l.server.send(l.now, id, true, &[1, 2, 3]).unwrap();
        l.run(Duration::from_secs(5));
        assert_eq!(messages(&l.take_server(), id), vec![(false, b"hello".to_vec())]);
        assert_eq!(messages(&l.take_client(), id), vec![(true, vec![1, 2, 3])]);
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn a_master_opened_channel_waits_for_the_association_and_is_acknowledged() {
        let mut l = Link::new();
        // Before the association is up: the open waits.
        let id = l.server.open(l.now, "telemetry", "json", true, Reliability::Reliable).unwrap();
        assert_eq!(id, 1, "the DTLS server opens odd stream ids");
        assert_eq!(l.server.send(l.now, id, false, b"early"), Err(DataError::NotOpen(id)));
        l.run(Duration::from_secs(5));
        let opened = DataEvent::Opened {
            id,
            label: "telemetry".into(),
            protocol: "json".into(),
            ordered: true,
            reliability: Reliability::Reliable,
        };
        assert_eq!(l.take_client(), vec![opened.clone()]);
        assert_eq!(l.take_server(), vec![opened], "acknowledged by the viewer");
        // Once it is up, a second one goes at once; messages may follow before the ack.
        let second = l.server.open(l.now, "b", "", false, Reliability::MaxRetransmits(3)).unwrap();
        assert_eq!(second, 3);
        l.server.send(l.now, second, false, b"right away").unwrap();
        l.run(Duration::from_secs(5));
        let at_client = l.take_client();
        assert!(at_client.contains(&DataEvent::Opened {
            id: second,
            label: "b".into(),
            protocol: "".into(),
            ordered: false,
            reliability: Reliability::MaxRetransmits(3),
        }));
        assert_eq!(messages(&at_client, second), vec![(false, b"right away".to_vec())]);
        l.client.send(l.now, id, true, b"back").unwrap();
        l.run(Duration::from_secs(5));
        assert_eq!(messages(&l.take_server(), id), vec![(true, b"back".to_vec())]);
    }

    #[test]
    fn messages_of_1_byte_to_256_kb_and_empty_ones_text_and_binary() {
        let mut l = Link::connected();
        let id = l.client.open(l.now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap();
        l.run(Duration::from_secs(5));
        let sizes = [1, 16 * 1024, 64 * 1024, MAX_MESSAGE_SIZE, 0, 0, 1200, 1201];
        for (i, &n) in sizes.iter().enumerate() {
            let binary = i % 2 == 1;
            l.server.send(l.now, id, binary, &pattern(n, i as u8)).unwrap();
            l.client.send(l.now, id, !binary, &pattern(n, 100 + i as u8)).unwrap();
            // The send buffer holds 1 MB: let each pair through before the next.
            l.run(Duration::from_secs(30));
        }
        let want = |seed: u8, flip: bool| -> Vec<(bool, Vec<u8>)> {
            sizes.iter().enumerate().map(|(i, &n)| ((i % 2 == 1) != flip, pattern(n, seed + i as u8))).collect()
        };
        assert_eq!(messages(&l.take_client(), id), want(0, false));
        assert_eq!(messages(&l.take_server(), id), want(100, true));
        // Larger than the viewer accepts: refused, naming the limit.
        let e = l.server.send(l.now, id, true, &vec![0; MAX_MESSAGE_SIZE + 1]).unwrap_err();
        assert_eq!(e, DataError::TooLarge { size: MAX_MESSAGE_SIZE + 1, limit: MAX_MESSAGE_SIZE });
        assert!(e.to_string().contains("a=max-message-size of 262144 bytes"), "{e}");
    }

    #[test]
    fn the_viewers_max_message_size_bounds_what_we_send() {
        let mut l = Link::with_limits(DEFAULT_REMOTE_MAX_MESSAGE, MAX_MESSAGE_SIZE);
        l.run(Duration::from_secs(5));
        let id = l.client.open(l.now, "c", "", true, Reliability::Reliable).unwrap();
        l.run(Duration::from_secs(5));
        assert!(l.server.send(l.now, id, true, &vec![7; 65_536]).is_ok());
        assert_eq!(
            l.server.send(l.now, id, true, &vec![7; 65_537]),
            Err(DataError::TooLarge { size: 65_537, limit: 65_536 })
        );
        l.run(Duration::from_secs(5));
        assert_eq!(messages(&l.take_client(), id), vec![(true, vec![7; 65_536])]);
    }

    #[test]
    fn ordered_reliable_messages_survive_loss_and_reordering() {
        let mut l = Link::connected();
        let id = l.client.open(l.now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap();
        l.run(Duration::from_secs(5));
        l.take_client();
        l.take_server();
        // From now on every 5th packet each way is lost, and packets sent together swap.
        l.lose = Box::new(|_, n, _| n % 5 == 0);
        l.reorder = true;
        let mut sent = Vec::new();
        for i in 0..120usize {
            let n = [1, 100, 1500, 16 * 1024][i % 4];
            let m = pattern(n, i as u8);
            l.server.send(l.now, id, i % 3 == 0, &m).unwrap();
            l.client.send(l.now, id, i % 3 == 0, &m).unwrap();
            sent.push((i % 3 == 0, m));
            if i % 10 == 9 {
                l.run(Duration::from_secs(60));
            }
        }
        l.run(Duration::from_secs(120));
        assert!(l.lost > 50, "{} packets lost", l.lost);
        assert_eq!(messages(&l.take_client(), id), sent, "all, once, in order");
        assert_eq!(messages(&l.take_server(), id), sent);
        assert!(l.server.is_connected());
    }

    #[test]
    fn unordered_channels_without_retransmissions_lose_what_the_link_loses() {
        let mut l = Link::connected();
        let lossy = l.server.open(l.now, "lossy", "", false, Reliability::MaxRetransmits(0)).unwrap();
        let timed = l.server.open(l.now, "timed", "", false, Reliability::MaxLifetimeMs(50)).unwrap();
        l.run(Duration::from_secs(5));
        assert_eq!(l.take_client().len(), 2);
        // About one packet in five toward the viewer is lost from now on (scattered, so both
        // channels lose some).
        l.lose = Box::new(|to_server, n, _| !to_server && n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59 < 6);
        for i in 0..100u8 {
            l.server.send(l.now, lossy, true, &[i; 100]).unwrap();
            l.server.send(l.now, timed, true, &[i; 100]).unwrap();
            l.run(Duration::from_millis(20));
        }
        l.run(Duration::from_secs(60));
        assert!(l.lost > 10, "{} packets lost", l.lost);
        let events = l.take_client();
        for id in [lossy, timed] {
            let got = messages(&events, id);
            assert!(got.len() < 100 && got.len() >= 50, "channel {id}: {} of 100", got.len());
            let mut firsts: Vec<u8> = got.iter().map(|(_, m)| m[0]).collect();
            assert!(got.iter().all(|(b, m)| *b && m.len() == 100 && m.iter().all(|&x| x == m[0])));
            firsts.sort_unstable();
            firsts.dedup();
            assert_eq!(firsts.len(), got.len(), "no duplicates");
        }
        assert_eq!(l.server.buffered_amount(), 0, "abandoned messages leave the send buffer");
        // The association carries on: a reliable channel still delivers everything.
        let sure = l.server.open(l.now, "sure", "", true, Reliability::Reliable).unwrap();
        for i in 0..20u8 {
            l.server.send(l.now, sure, false, &[b'a' + i]).unwrap();
        }
        l.run(Duration::from_secs(60));
        assert_eq!(messages(&l.take_client(), sure).len(), 20);
    }

    #[test]
    fn closing_resets_the_stream_on_both_sides() {
        let mut l = Link::connected();
        let theirs = l.client.open(l.now, "v", "", true, Reliability::Reliable).unwrap();
        let ours = l.server.open(l.now, "m", "", true, Reliability::Reliable).unwrap();
        l.run(Duration::from_secs(5));
        l.take_client();
        l.take_server();
        // The viewer closes its channel: we see it closed.
        l.client.close(l.now, theirs);
        l.run(Duration::from_secs(5));
        assert_eq!(l.take_server(), vec![DataEvent::Closed { id: theirs }]);
        assert_eq!(l.take_client(), vec![DataEvent::Closed { id: theirs }]);
        assert_eq!(l.server.send(l.now, theirs, false, b"x"), Err(DataError::NoChannel(theirs)));
        // We close ours.
        l.server.close(l.now, ours);
        l.run(Duration::from_secs(5));
        assert_eq!(l.take_server(), vec![DataEvent::Closed { id: ours }]);
        assert_eq!(l.take_client(), vec![DataEvent::Closed { id: ours }]);
        assert_eq!(l.server.channel_count(), 0);
        // Stream ids are used again once reset.
        assert_eq!(l.server.open(l.now, "again", "", true, Reliability::Reliable), Ok(ours));
        assert_eq!(l.client.open(l.now, "again", "", true, Reliability::Reliable), Ok(theirs));
        l.run(Duration::from_secs(5));
        l.server.send(l.now, theirs, false, b"after").unwrap();
        l.run(Duration::from_secs(5));
        assert_eq!(messages(&l.take_client(), theirs), vec![(false, b"after".to_vec())]);
        assert!(l.server.is_connected() && l.server.ignored == 0);
    }

    #[test]
    fn at_most_64_channels() {
        let mut l = Link::connected();
        let ids: Vec<u16> = (0..MAX_CHANNELS + 6)
            .map(|i| l.client.open(l.now, &format!("c{i}"), "", true, Reliability::Reliable).unwrap_or(u16::MAX))
            .collect();
        assert!(ids.iter().all(|&id| id != u16::MAX) || l.client.channel_count() == MAX_CHANNELS);
        l.run(Duration::from_secs(10));
        let events = l.take_server();
        let opened = events.iter().filter(|e| matches!(e, DataEvent::Opened { .. })).count();
        assert_eq!(opened, MAX_CHANNELS);
        assert_eq!(l.server.channel_count(), MAX_CHANNELS);
        assert_eq!(
            l.server.open(l.now, "one more", "", true, Reliability::Reliable),
            Err(DataError::TooManyChannels(MAX_CHANNELS))
        );
        assert!(l.server.is_connected());
    }

    #[test]
    fn a_full_send_buffer_refuses_more() {
        let mut l = Link::connected();
        let id = l.client.open(l.now, "c", "", true, Reliability::Reliable).unwrap();
        l.run(Duration::from_secs(5));
        // The viewer stops reading: nothing reaches it any more.
        l.lose = Box::new(|to_server, _, _| !to_server);
        let chunk = vec![1; 64 * 1024];
        for _ in 0..16 {
            l.server.send(l.now, id, true, &chunk).unwrap();
        }
        assert_eq!(l.server.buffered_amount(), MAX_BUFFERED);
        let e = l.server.send(l.now, id, true, &[1]).unwrap_err();
        assert!(matches!(e, DataError::Buffered { buffered: MAX_BUFFERED, size: 1, limit: MAX_BUFFERED }), "{e}");
        // Once the viewer is back and acknowledges, there is room again.
        l.lose = Box::new(|_, _, _| false);
        l.run(Duration::from_secs(120));
        assert_eq!(l.server.buffered_amount(), 0);
        assert!(l.server.send(l.now, id, true, &[1]).is_ok());
    }

    // Packets written field by field from RFC 4960 (§3), RFC 3758, RFC 6525 and RFC 8832, the
    // way browsers send them, to check what we answer byte by byte.

    const VIEWER_TAG: u32 = 0x1a2b_3c4d;
    const VIEWER_TSN: u32 = 0xffff_fff0; // wraps during the test

    fn chunk(ty: u8, flags: u8, value: &[u8]) -> Vec<u8> {
        let mut c = vec![ty, flags];
        c.extend_from_slice(&(4 + value.len() as u16).to_be_bytes());
        c.extend_from_slice(value);
        c
    }

    fn param(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut p = ty.to_be_bytes().to_vec();
        p.extend_from_slice(&(4 + value.len() as u16).to_be_bytes());
        p.extend_from_slice(value);
        p.resize((p.len() + 3) & !3, 0);
        p
    }

    fn sctp(vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut p = [5000u16.to_be_bytes(), 5000u16.to_be_bytes()].concat();
        p.extend_from_slice(&vtag.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        for c in chunks {
            p.extend_from_slice(c);
            p.resize((p.len() + 3) & !3, 0);
        }
        let crc = checksum(&p);
        p[8..12].copy_from_slice(&crc.to_le_bytes());
        p
    }

    /// A DATA chunk; `flags`: U (4), B (2), E (1).
    fn data(tsn: u32, stream: u16, ssn: u16, ppid: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = tsn.to_be_bytes().to_vec();
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&ssn.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend_from_slice(payload);
        chunk(DATA, flags, &v)
    }

    /// An INIT as Chromium's SCTP (dcsctp) sends it: a 5 MB window, 65,535 streams each way,
    /// FORWARD TSN and RE-CONFIG supported, and zero checksums acceptable over DTLS (RFC 9653),
    /// which we do not take up.
    fn chromium_init() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&VIEWER_TAG.to_be_bytes());
        v.extend_from_slice(&(5u32 << 20).to_be_bytes());
        v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        v.extend_from_slice(&VIEWER_TSN.to_be_bytes());
        v.extend(param(0x8008, &[0x82, 0xc0]));
        v.extend(param(0xc000, &[]));
        v.extend(param(0x8001, &1u32.to_be_bytes()));
        sctp(0, &[chunk(INIT, 0, &v)])
    }

    /// An INIT as Firefox's SCTP (usrsctp) sends it: ECN capable, PR-SCTP, the extensions it
    /// supports, and the AUTH parameters (random, chunk list, HMAC algorithms).
    fn firefox_init() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&VIEWER_TAG.to_be_bytes());
        v.extend_from_slice(&(1u32 << 20).to_be_bytes());
        v.extend_from_slice(&[0x04, 0x00, 0x08, 0x00]);
        v.extend_from_slice(&VIEWER_TSN.to_be_bytes());
        v.extend(param(0x8000, &[]));
        v.extend(param(0xc000, &[]));
        v.extend(param(0x8008, &[0xc0, 0x82, 0xc1, 0x80, 0x0f]));
        v.extend(param(0x8002, &[0x5a; 32]));
        v.extend(param(0x8003, &[0xc1, 0x80]));
        v.extend(param(0x8004, &[0, 1, 0, 3]));
        sctp(0, &[chunk(INIT, 0, &v)])
    }

    /// The chunks of a packet we sent (after checking its header and checksum).
    fn read(p: &[u8], vtag: u32) -> Vec<Vec<u8>> {
        assert_eq!((be16(p, 0), be16(p, 2), be32(p, 4)), (5000, 5000, vtag), "ports and verification tag");
        assert_eq!(u32::from_le_bytes([p[8], p[9], p[10], p[11]]), checksum(p), "CRC32c");
        chunks(&p[12..]).expect("well-formed chunks").into_iter().map(|c| c.to_vec()).collect()
    }

    fn sent(d: &mut DataChannels, vtag: u32) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| d.poll_transmit()).flat_map(|p| read(&p, vtag)).collect()
    }

    /// The DCEP `DATA_CHANNEL_OPEN` the KVS JavaScript SDK's viewer sends: `kvsDataChannel`,
    /// reliable and ordered, normal priority, no protocol.
    fn kvs_open() -> Vec<u8> {
        let mut m = vec![0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 14, 0, 0];
        m.extend_from_slice(b"kvsDataChannel");
        m
    }

    /// Our answer to an INIT: our verification tag, initial TSN and state cookie.
    fn init_ack(chunks: &[Vec<u8>]) -> (u32, u32, Vec<u8>) {
        assert_eq!(chunks.len(), 1, "an INIT ACK alone");
        let c = &chunks[0];
        assert_eq!(c[0], INIT_ACK);
        let (tag, tsn) = (be32(c, 4), be32(c, 16));
        assert_eq!(be32(c, 8), RECEIVE_WINDOW, "our window");
        let mut cookie = None;
        for p in params(&c[16..]) {
            // (params() skips a 4-byte chunk header: start it 4 bytes before the parameters.)
            if be16(p, 0) == 7 {
                cookie = Some(p[4..].to_vec());
            }
            assert_ne!(be16(p, 0), 0x8001, "zero checksums not taken up");
        }
        (tag, tsn, cookie.expect("a state cookie"))
    }

    /// A viewer written by hand, after the handshake: our tag, our first TSN, its next TSN.
    struct Raw {
        dc: DataChannels,
        now: Instant,
        our_tag: u32,
        our_tsn: u32,
        tsn: u32,
    }

    impl Raw {
        /// INIT, INIT ACK, then COOKIE ECHO bundled with `first` (chunks), as dcsctp does.
        fn connect(init: Vec<u8>, first: &[Vec<u8>]) -> (Raw, Vec<Vec<u8>>) {
            let now = Instant::now();
            let mut dc = DataChannels::new(now, SCTP_PORT, SCTP_PORT, DEFAULT_REMOTE_MAX_MESSAGE);
            dc.handle_sctp(now, &init);
            let (our_tag, our_tsn, cookie) = init_ack(&sent(&mut dc, VIEWER_TAG));
            let mut bundle = vec![chunk(10, 0, &cookie)];
            bundle.extend_from_slice(first);
            dc.handle_sctp(now, &sctp(our_tag, &bundle));
            let answer = sent(&mut dc, VIEWER_TAG);
            assert_eq!(answer[0], vec![11, 0, 0, 4], "COOKIE ACK");
            let tsn = VIEWER_TSN.wrapping_add(first.iter().filter(|c| c[0] == DATA).count() as u32);
            let mut r = Raw { dc, now, our_tag, our_tsn, tsn };
            let mut answer = answer[1..].to_vec();
            answer.extend(r.delayed_sack());
            (r, answer)
        }

        /// Connected, with the KVS viewer's channel open on stream 0.
        fn with_channel() -> Raw {
            let (mut r, _) = Raw::connect(chromium_init(), &[data(VIEWER_TSN, 0, 0, 50, 3, &kvs_open())]);
            assert!(matches!(r.dc.poll_event(), Some(DataEvent::Opened { id: 0, .. })));
            r
        }

        /// Send `chunks` in one packet; what we answer, with a delayed SACK included.
        fn send(&mut self, chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
            self.dc.handle_sctp(self.now, &sctp(self.our_tag, chunks));
            let mut out = sent(&mut self.dc, VIEWER_TAG);
            out.extend(self.delayed_sack());
            out
        }

        /// Run the timers due within the SACK delay (200 ms).
        fn delayed_sack(&mut self) -> Vec<Vec<u8>> {
            match self.dc.poll_timeout() {
                Some(t) if t <= self.now + Duration::from_millis(200) => {
                    self.now = self.now.max(t);
                    self.dc.handle_timeout(self.now);
                    sent(&mut self.dc, VIEWER_TAG)
                }
                _ => Vec::new(),
            }
        }

        fn next_tsn(&mut self) -> u32 {
            let t = self.tsn;
            self.tsn = t.wrapping_add(1);
            t
        }

        fn events(&mut self) -> Vec<DataEvent> {
            std::iter::from_fn(|| self.dc.poll_event()).collect()
        }
    }

    /// A SACK's cumulative TSN and window, if `chunks` has one.
    fn sack(chunks: &[Vec<u8>]) -> Option<(u32, u32)> {
        chunks.iter().find(|c| c[0] == SACK).map(|c| (be32(c, 4), be32(c, 8)))
    }

    #[test]
    fn chromium_bytes_open_the_kvs_channel_and_talk() {
        let open = data(VIEWER_TSN, 0, 0, 50, 3, &kvs_open());
        let (mut r, answer) = Raw::connect(chromium_init(), &[open]);
        assert_eq!(
            r.events(),
            vec![DataEvent::Opened {
                id: 0,
                label: "kvsDataChannel".into(),
                protocol: "".into(),
                ordered: true,
                reliability: Reliability::Reliable,
            }]
        );
        // DATA_CHANNEL_ACK: our first TSN, stream 0, SSN 0, PPID 50, one byte 0x02; and the SACK.
        let ack = answer.iter().find(|c| c[0] == DATA).expect("a DATA chunk");
        assert_eq!(ack[1] & 0x07, 0x03, "ordered, one fragment");
        assert_eq!((be32(ack, 4), be16(ack, 8), be16(ack, 10), be32(ack, 12)), (r.our_tsn, 0, 0, 50));
        assert_eq!(&ack[16..], &[0x02]);
        assert_eq!(sack(&answer), Some((VIEWER_TSN, RECEIVE_WINDOW)));
        // A text message, then an empty binary one, across the TSN wrap.
        let (t1, t2) = (r.next_tsn(), r.next_tsn());
        assert_eq!(t2, 0xffff_fff2);
        r.send(&[data(t1, 0, 1, 51, 3, b"hello"), data(t2, 0, 2, 57, 3, &[0])]);
        assert_eq!(
            r.events(),
            vec![
                DataEvent::Message { id: 0, binary: false, data: b"hello".to_vec() },
                DataEvent::Message { id: 0, binary: true, data: vec![] },
            ]
        );
        // Our reply, acknowledged by the viewer's SACK (cumulative TSN ack, window, no gaps).
        r.dc.send(r.now, 0, false, b"hi").unwrap();
        let out = sent(&mut r.dc, VIEWER_TAG);
        let reply = out.iter().find(|c| c[0] == DATA).expect("our message");
        assert_eq!((be32(reply, 4), be32(reply, 12), &reply[16..]), (r.our_tsn.wrapping_add(1), 51, &b"hi"[..]));
        let mut s = r.our_tsn.wrapping_add(1).to_be_bytes().to_vec();
        s.extend_from_slice(&(5u32 << 20).to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        r.send(&[chunk(SACK, 0, &s)]);
        assert_eq!(r.dc.buffered_amount(), 0);
        // The viewer closes its channel: an outgoing SSN reset request for stream 0 (RFC 6525
        // §4.1: request sequence number, the last response's, its last TSN, the stream).
        let mut req = VIEWER_TSN.to_be_bytes().to_vec();
        req.extend_from_slice(&r.our_tsn.wrapping_sub(1).to_be_bytes());
        req.extend_from_slice(&t2.to_be_bytes());
        req.extend_from_slice(&0u16.to_be_bytes());
        let out = r.send(&[chunk(RECONFIG, 0, &param(OUTGOING_RESET_REQUEST, &req))]);
        assert_eq!(r.events(), vec![DataEvent::Closed { id: 0 }]);
        let ps: Vec<Vec<u8>> = out.iter().filter(|c| c[0] == RECONFIG).flat_map(|c| params(c)).map(|p| p.to_vec()).collect();
        assert!(
            ps.iter().any(|p| be16(p, 0) == RECONFIG_RESPONSE && be32(p, 4) == VIEWER_TSN && be32(p, 8) == 1),
            "answered \"success, performed\": {ps:02x?}"
        );
        assert!(
            ps.iter().any(|p| be16(p, 0) == OUTGOING_RESET_REQUEST && be16(p, 16) == 0),
            "and our own stream 0 reset in turn: {ps:02x?}"
        );
        assert_eq!(r.dc.ignored, 0);
    }

    #[test]
    fn firefox_bytes_are_answered_too() {
        let open = data(VIEWER_TSN, 0, 0, 50, 3, &kvs_open());
        let (mut r, answer) = Raw::connect(firefox_init(), &[open]);
        assert!(matches!(r.events()[..], [DataEvent::Opened { id: 0, .. }]));
        assert!(answer.iter().any(|c| c[0] == DATA && c[16..] == [0x02]));
        assert_eq!(r.dc.ignored, 0);
    }

    #[test]
    fn a_repeated_init_gets_the_same_answer_another_one_starts_over() {
        let now = Instant::now();
        let mut dc = DataChannels::new(now, SCTP_PORT, SCTP_PORT, DEFAULT_REMOTE_MAX_MESSAGE);
        dc.handle_sctp(now, &chromium_init());
        let first: Vec<Vec<u8>> = std::iter::from_fn(|| dc.poll_transmit()).collect();
        dc.handle_sctp(now, &chromium_init());
        let again: Vec<Vec<u8>> = std::iter::from_fn(|| dc.poll_transmit()).collect();
        assert_eq!(first, again, "the same INIT ACK, byte for byte");
        // The viewer starts over with another tag before finishing: a new association.
        let mut other = chromium_init();
        other[16..20].copy_from_slice(&0x0bad_cafeu32.to_be_bytes());
        let crc = checksum(&other);
        other[8..12].copy_from_slice(&crc.to_le_bytes());
        dc.handle_sctp(now, &other);
        let (tag, _, cookie) = init_ack(&sent(&mut dc, 0x0bad_cafe));
        // The first association's cookie no longer opens anything; the new one does.
        let (old_tag, _, old_cookie) = init_ack(&read(&first[0], VIEWER_TAG).to_vec());
        dc.handle_sctp(now, &sctp(old_tag, &[chunk(10, 0, &old_cookie)]));
        assert!(!dc.is_connected());
        dc.handle_sctp(now, &sctp(tag, &[chunk(10, 0, &cookie)]));
        assert!(dc.is_connected());
        assert_eq!(sent(&mut dc, 0x0bad_cafe), vec![vec![11, 0, 0, 4]]);
        // Once established, an INIT changes nothing.
        let before = dc.ignored;
        dc.handle_sctp(now, &chromium_init());
        assert_eq!(dc.ignored, before + 1);
        assert!(dc.is_connected() && dc.poll_transmit().is_none());
    }

    #[test]
    fn garbage_is_counted_never_fatal() {
        let mut r = Raw::with_channel();
        let good = sctp(r.our_tag, &[data(r.tsn, 0, 1, 51, 3, b"ok")]);
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1;
        let mut wrong_port = good.clone();
        wrong_port[1] ^= 1;
        let truncated = sctp(r.our_tag, &[vec![DATA, 3, 0, 40, 1, 2, 3, 4]]);
        let zero_length = sctp(r.our_tag, &[vec![SACK, 0, 0, 0]]);
        // An error cause longer than its chunk (found by fuzzing: `rtc-sctp` would panic).
        let long_cause = sctp(r.our_tag, &[chunk(ERROR, 0, &[0, 1, 0x14, 2, 0, 0, 0, 0])]);
        let long_abort_cause = sctp(r.our_tag, &[chunk(ABORT, 0, &[0, 12, 0, 9])]);
        for (i, p) in [
            vec![],
            vec![0; 11],
            good[..12].to_vec(),
            bad_crc,
            wrong_port,
            truncated,
            zero_length,
            long_cause,
            long_abort_cause,
        ]
            .iter()
            .enumerate()
        {
            let before = r.dc.ignored;
            r.dc.handle_sctp(r.now, p);
            assert_eq!(r.dc.ignored, before + 1, "packet {i}");
        }
        assert!(r.events().is_empty() && r.dc.is_connected());
        // Unknown chunk types: "skip" (high bit set) passes over them, "stop" drops the rest.
        let pad = chunk(0x84, 0, &[0; 8]);
        let t = r.next_tsn();
        r.send(&[pad.clone(), data(t, 0, 1, 51, 3, b"after a PAD chunk")]);
        let t2 = r.tsn;
        r.send(&[chunk(0x3f, 0, &[]), data(t2, 0, 2, 51, 3, b"never read")]);
        assert_eq!(messages(&r.events(), 0), vec![(false, b"after a PAD chunk".to_vec())]);
        assert!(r.dc.is_connected());
    }

    #[test]
    fn a_message_larger_than_we_accept_ends_the_association() {
        let mut r = Raw::with_channel();
        let part = vec![0x61; 1000];
        let t = r.next_tsn();
        r.send(&[data(t, 0, 1, 51, 2, &part)]);
        let mut ended = None;
        for _ in 0..300 {
            let t = r.next_tsn();
            let out = r.send(&[data(t, 0, 1, 51, 0, &part)]);
            if r.dc.is_ended() {
                ended = Some(out);
                break;
            }
        }
        let out = ended.expect("ended past 256 KB");
        assert!(out.iter().any(|c| c[0] == 6), "an ABORT: {out:02x?}");
        let events = r.events();
        assert_eq!(events[0], DataEvent::Closed { id: 0 });
        assert!(
            matches!(&events[1], DataEvent::Error(e) if e.contains("more than 262144 bytes")),
            "{events:?}"
        );
        assert!(r.dc.guard.charged <= MAX_MESSAGE_SIZE + 300 * CHUNK_OVERHEAD);
        // Nothing more is read, and there is nothing to wait for.
        let t = r.next_tsn();
        assert!(r.send(&[data(t, 0, 2, 51, 3, b"x")]).is_empty());
        assert_eq!(r.dc.poll_timeout(), None);
    }

    #[test]
    fn received_data_is_held_within_the_window_and_the_budget() {
        let mut r = Raw::with_channel();
        let base = r.tsn;
        // Far past the window: not taken.
        let before = r.dc.ignored;
        let out = r.send(&[data(base.wrapping_add(TSN_WINDOW + 1), 0, 1, 51, 3, b"far")]);
        assert_eq!(r.dc.ignored, before + 1);
        assert!(sack(&out).is_none_or(|(cum, _)| cum == base.wrapping_sub(1)));
        // One-byte messages after a gap (TSN `base` missing): each costs CHUNK_OVERHEAD more
        // than it carries; past the budget they are not taken.
        let n = 10_000u32;
        let fits = (INBOUND_BUDGET / (1 + CHUNK_OVERHEAD)) as u32;
        let mut packet = Vec::new();
        for i in 1..=n {
            packet.push(data(base.wrapping_add(i), 0, 1 + i as u16, 51, 3, b"z"));
            if packet.len() == 100 {
                r.send(&packet);
                packet.clear();
            }
        }
        assert!(r.dc.guard.charged <= INBOUND_BUDGET);
        assert_eq!(r.dc.ignored, before + 1 + u64::from(n - fits));
        assert!(r.events().is_empty(), "all wait for the gap");
        // The gap filled: everything taken is delivered, in order, and the charge is gone.
        let out = r.send(&[data(base, 0, 1, 51, 3, b"first")]);
        let got = messages(&r.events(), 0);
        assert_eq!(got.len(), 1 + fits as usize);
        assert_eq!(got[0].1, b"first");
        assert_eq!(sack(&out), Some((base.wrapping_add(fits), RECEIVE_WINDOW)));
        assert_eq!(r.dc.guard.charged, 0);
        // What was not taken is taken when sent again.
        r.tsn = base.wrapping_add(fits + 1);
        let t = r.next_tsn();
        r.send(&[data(t, 0, 2 + fits as u16, 51, 3, b"again")]);
        assert_eq!(messages(&r.events(), 0), vec![(false, b"again".to_vec())]);
    }

    #[test]
    fn a_forward_tsn_past_the_window_is_dropped() {
        let mut r = Raw::with_channel();
        let before = r.dc.ignored;
        let far = r.tsn.wrapping_add(1 << 30);
        r.send(&[chunk(FORWARD_TSN, 0, &far.to_be_bytes())]);
        assert_eq!(r.dc.ignored, before + 1);
        // Within the window it is read: the skipped TSNs are not waited for.
        let skip = r.tsn.wrapping_add(10);
        r.tsn = skip.wrapping_add(1);
        let out = r.send(&[chunk(FORWARD_TSN, 0, &skip.to_be_bytes())]);
        assert_eq!(sack(&out).map(|s| s.0), Some(skip));
        let t = r.next_tsn();
        r.send(&[data(t, 0, 1, 51, 7, b"unordered")]);
        assert_eq!(messages(&r.events(), 0), vec![(false, b"unordered".to_vec())]);
    }

    #[test]
    fn streams_the_viewer_opens_are_bounded() {
        let mut r = Raw::with_channel();
        let mut refused = 0;
        for i in 1..200u16 {
            let t = r.next_tsn();
            r.send(&[data(t, 2 * i, 0, 50, 3, &kvs_open())]);
            refused += r.events().iter().filter(|e| matches!(e, DataEvent::Error(m) if m.contains("refused"))).count();
        }
        assert_eq!(r.dc.channel_count(), MAX_CHANNELS);
        assert_eq!(refused, MAX_STREAMS - MAX_CHANNELS, "refused until MAX_STREAMS streams exist");
        let dropped = 199 - (MAX_CHANNELS - 1) - refused;
        assert_eq!(r.dc.ignored as usize, refused + dropped, "the rest not even taken");
        // Data on a stream no channel opened is not taken; odd (our) ids cannot be opened.
        let before = r.dc.ignored;
        let t = r.tsn;
        r.send(&[data(t, 1000, 0, 51, 3, b"no channel")]);
        r.send(&[data(t, 1001, 0, 50, 3, &kvs_open())]);
        assert_eq!(r.dc.ignored, before + 2);
        assert!(r.dc.is_connected());
    }

    #[test]
    fn reset_requests_waiting_for_data_are_bounded() {
        let mut r = Raw::with_channel();
        let ahead = r.tsn.wrapping_add(5);
        let before = r.dc.ignored;
        for rsn in 0..20u32 {
            let mut req = rsn.to_be_bytes().to_vec();
            req.extend_from_slice(&0u32.to_be_bytes());
            req.extend_from_slice(&ahead.to_be_bytes());
            req.extend_from_slice(&0u16.to_be_bytes());
            r.send(&[chunk(RECONFIG, 0, &param(OUTGOING_RESET_REQUEST, &req))]);
        }
        assert_eq!(r.dc.guard.waiting_resets.len(), MAX_WAITING_RESETS);
        assert_eq!(r.dc.ignored, before + 20 - MAX_WAITING_RESETS as u64);
        // Once the data they wait for arrives they are done, and there is room again.
        for _ in 0..6 {
            let t = r.next_tsn();
            r.send(&[data(t, 0, 1, 51, 7, b"u")]);
        }
        assert!(r.dc.guard.waiting_resets.is_empty());
        assert!(r.events().contains(&DataEvent::Closed { id: 0 }));
    }

    #[test]
    fn a_viewer_that_never_answers_our_resets_loses_the_association() {
        let mut r = Raw::with_channel();
        let mut ended = false;
        for i in 0..200u16 {
            let t = r.next_tsn();
            let id = 2 + 2 * i;
            r.send(&[data(t, id, 0, 50, 3, &kvs_open())]);
            r.dc.close(r.now, id);
            sent(&mut r.dc, VIEWER_TAG);
            if r.dc.is_ended() {
                ended = true;
                break;
            }
        }
        assert!(ended);
        let events = r.events();
        assert!(
            matches!(events.last(), Some(DataEvent::Error(e)) if e.contains("stream resets unanswered")),
            "{events:?}"
        );
    }

    #[test]
    fn a_refused_init_leaves_room_for_another() {
        let now = Instant::now();
        let mut dc = DataChannels::new(now, SCTP_PORT, SCTP_PORT, DEFAULT_REMOTE_MAX_MESSAGE);
        // No inbound streams (RFC 4960 §3.3.2: MUST NOT be 0): refused.
        let mut bad = chromium_init();
        bad[26..28].copy_from_slice(&[0, 0]);
        let crc = checksum(&bad);
        bad[8..12].copy_from_slice(&crc.to_le_bytes());
        dc.handle_sctp(now, &bad);
        assert!(dc.association.is_none() && !dc.is_ended());
        std::iter::from_fn(|| dc.poll_transmit()).for_each(drop);
        dc.handle_sctp(now, &chromium_init());
        let (tag, _, cookie) = init_ack(&sent(&mut dc, VIEWER_TAG));
        dc.handle_sctp(now, &sctp(tag, &[chunk(10, 0, &cookie)]));
        assert!(dc.is_connected());
    }

    #[test]
    fn a_message_too_large_reassembled_out_of_order_is_dropped() {
        let mut r = Raw::with_channel();
        let base = r.tsn;
        let n = 270u32;
        let part = vec![0x62; 1000];
        // Every fragment but the first, then the first.
        for i in 1..n {
            let flags = if i == n - 1 { ENDING } else { 0 };
            r.send(&[data(base.wrapping_add(i), 0, 1, 53, flags, &part)]);
        }
        r.send(&[data(base, 0, 1, 53, BEGINNING, &part)]);
        let events = r.events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            matches!(&events[0], DataEvent::Error(e) if e.contains("270000-byte message") && e.contains("dropped")),
            "{events:?}"
        );
        assert!(r.dc.is_connected());
        // The stream carries on.
        r.tsn = base.wrapping_add(n);
        let t = r.next_tsn();
        r.send(&[data(t, 0, 2, 51, 3, b"next")]);
        assert_eq!(messages(&r.events(), 0), vec![(false, b"next".to_vec())]);
        assert_eq!(r.dc.guard.charged, 0);
    }
}
