//! ICE as the controlled agent (RFC 8445), sans-IO: our own connectivity checks on every
//! candidate pair, answers to the viewer's checks, peer-reflexive candidates learned from them,
//! the viewer's nomination, consent freshness (RFC 7675) and failure detection.
//!
//! The agent knows two kinds of local base: the host UDP sockets and TURN allocations. It does not
//! speak TURN itself; it hands out `(base, destination, bytes)` and the session routes
//! [`Base::Relay`] transmissions through the allocation.
//!
//! Dual stack: [`Base::Host`] stands for the host's IPv4 socket, and for its IPv6 socket once the
//! session was told about one ([`IceAgent::set_host_ipv6`]); the host picks the socket by the
//! destination's address family. A pair is formed only between a base and a remote candidate of
//! the same family (a relay's family is its relayed address's), so an IPv6 candidate is used
//! only where an IPv6 local address exists.

use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_stun::attributes::{
    RawAttribute, ATTR_ICE_CONTROLLED, ATTR_PRIORITY, ATTR_USERNAME,
    ATTR_USE_CANDIDATE,
};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS, CLASS_ERROR_RESPONSE,
    CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_BINDING,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pacing of new checks (RFC 8445 Ta).
const TA: Duration = Duration::from_millis(50);
/// First retransmission of a check; doubled each time.
const CHECK_RTO: Duration = Duration::from_millis(250);
/// Tries of one check before its pair fails.
const CHECK_TRIES: u32 = 6;
/// With nothing selected this long after the first remote candidate or check, ICE has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Consent freshness (RFC 7675): a check every 5 s (±20 %), consent lost after 30 s unanswered.
const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Type preferences (RFC 8445 §5.1.2.2).
const PREF_HOST: u32 = 126;
const PREF_PRFLX: u32 = 110;
const PREF_SRFLX: u32 = 100;
const PREF_RELAY: u32 = 0;

/// Where a check or answer leaves from: the host socket of the destination's address family, or
/// TURN allocation `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    Host,
    Relay(usize),
}

/// A datagram the agent wants sent from `base` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub base: Base,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// What the agent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// The viewer nominated this pair; media goes there. `description` reads like
    /// `relay 1.2.3.4:5 -> host 10.0.0.2:6`.
    Selected { base: Base, remote: SocketAddr, description: String },
    /// No pair worked, or consent was lost.
    Failed(String),
}

/// Candidate priority (RFC 8445 §5.1.2.1) for component 1.
pub fn candidate_priority(type_pref: u32, local_pref: u32) -> u32 {
    (type_pref << 24) | ((local_pref & 0xffff) << 8) | 255
}

/// Pair priority (RFC 8445 §6.1.2.3); the viewer is controlling.
fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (controlling as u64, controlled as u64);
    (1u64 << 32) * g.min(d) + 2 * g.max(d) + u64::from(g > d)
}

/// A remote candidate from a trickled `candidate:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub addr: SocketAddr,
    pub priority: u32,
    pub kind: String,
}

/// Why a remote candidate line was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateError {
    /// Well-formed but not usable here (TCP, RTCP component, mDNS name, IPv6 link-local, an
    /// address family this session has no local candidate of); the text says why.
    Ignored(String),
    /// Not a candidate line; the text names what is wrong.
    Malformed(String),
}

/// Parse `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …`
/// (with or without the `a=` prefix).
pub fn parse_candidate(line: &str) -> Result<RemoteCandidate, CandidateError> {
    let bad = |what: &str| CandidateError::Malformed(format!("{what} in candidate {:?}", clip(line)));
    let body = line.trim().trim_start_matches("a=");
    let body = body.strip_prefix("candidate:").ok_or_else(|| bad("no \"candidate:\" prefix"))?;
    let f: Vec<&str> = body.split_ascii_whitespace().collect();
    if f.len() < 8 || f[6] != "typ" {
        return Err(bad("fewer than 8 fields or no \"typ\""));
    }
    let component: u32 = f[1].parse().map_err(|_| bad("bad component"))?;
    let priority: u32 = f[3].parse().map_err(|_| bad("bad priority"))?;
    let port: u16 = f[5].parse().map_err(|_| bad("bad port"))?;
    let kind = f[7].to_ascii_lowercase();
    if !matches!(kind.as_str(), "host" | "srflx" | "prflx" | "relay") {
        return Err(bad("unknown candidate type"));
    }
    if component != 1 {
        return Err(CandidateError::Ignored(format!("component {component} (RTCP is multiplexed)")));
    }
    if !f[2].eq_ignore_ascii_case("udp") {
        return Err(CandidateError::Ignored(format!("transport {} (only UDP pairs are formed)", f[2])));
    }
    let ip: IpAddr = match f[4].parse() {
        Ok(ip) => ip,
        Err(_) if f[4].ends_with(".local") => {
            return Err(CandidateError::Ignored("mDNS name (the viewer's checks reveal its address)".into()))
        }
        Err(_) => return Err(bad("address is not an IP")),
    };
    // An IPv4-mapped address is the IPv4 address (and goes out of the IPv4 socket).
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if let IpAddr::V6(v6) = ip {
        // fe80::/10 needs the interface it lives on, which a candidate line does not carry.
        if v6.segments()[0] & 0xffc0 == 0xfe80 {
            return Err(CandidateError::Ignored("IPv6 link-local address (no interface scope to reach it)".into()));
        }
    }
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok(RemoteCandidate { addr: SocketAddr::new(ip, port), priority, kind })
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug)]
struct Pair {
    base: Base,
    remote: SocketAddr,
    remote_kind: String,
    priority: u64,
    state: PairState,
    /// The viewer proved it is at `remote` (an authenticated check from there, or a signed
    /// response to ours): DTLS and RTCP are accepted from this pair only then.
    verified: bool,
    tid: Option<TransactionId>,
    tries: u32,
    next_retry: Instant,
}

struct Consent {
    next_send: Instant,
    last_ok: Instant,
    tid: Option<TransactionId>,
}

/// A connectivity check as a viewer (the controlling agent) sends it: `username` is
/// `<our ufrag>:<viewer ufrag>`, signed with our `pwd`; `nominate` adds USE-CANDIDATE. For the
/// warm start, tests and fuzzing.
pub fn viewer_check(provider: &dyn RTCCryptoProvider, username: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    let mut m = Message::new();
    let mut attrs: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
    ];
    if nominate {
        attrs.push(Box::new(RawAttribute { typ: ATTR_USE_CANDIDATE, length: 0, value: vec![] }));
    }
    attrs.push(Box::new(MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), provider.crypto())));
    attrs.push(Box::new(FINGERPRINT));
    // Building from these attributes cannot fail.
    let _ = m.build(&attrs);
    m.raw
}

/// The controlled ICE agent of one session.
pub struct IceAgent {
    local_ufrag: String,
    local_pwd: String,
    remote_ufrag: String,
    remote_pwd: String,
    tie_breaker: u64,
    provider: Arc<dyn RTCCryptoProvider>,
    /// Whether checks may use the host socket (false under a relay-only policy).
    host_allowed: bool,
    /// The host's IPv6 socket address, when it has one (the IPv4 socket always exists).
    host_ipv6: Option<SocketAddr>,
    /// Priorities of our bases' candidates, as advertised.
    host_priority: u32,
    relay_priority: u32,
    /// Ready TURN allocations: index, and whether the relayed address is IPv6.
    relays: Vec<(usize, bool)>,
    /// Every remote candidate, trickled or peer-reflexive.
    remotes: Vec<RemoteCandidate>,
    pairs: Vec<Pair>,
    selected: Option<usize>,
    started: Option<Instant>,
    next_check: Option<Instant>,
    consent: Option<Consent>,
    failed: bool,
    out: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
    /// Checks that were not ours or did not authenticate.
    pub ignored: u64,
    /// When the viewer last proved it is there (a check or a response that authenticated).
    pub authenticated_at: Option<Instant>,
    /// How long after [`IceAgent::start`] ICE fails with nothing nominated.
    connect_timeout: Duration,
}

impl IceAgent {
    /// An agent answering with `local_ufrag`/`local_pwd` and checking with the viewer's
    /// `remote_ufrag`/`remote_pwd`. `host_allowed` false: relay-only policy.
    pub fn new(
        local: (&str, &str),
        remote: (&str, &str),
        host_allowed: bool,
        provider: Arc<dyn RTCCryptoProvider>,
    ) -> IceAgent {
        let t = TransactionId::new();
        let tie_breaker = u64::from_le_bytes(t.0[..8].try_into().unwrap());
        IceAgent {
            local_ufrag: local.0.to_owned(),
            local_pwd: local.1.to_owned(),
            remote_ufrag: remote.0.to_owned(),
            remote_pwd: remote.1.to_owned(),
            tie_breaker,
            provider,
            host_allowed,
            host_ipv6: None,
            host_priority: candidate_priority(PREF_HOST, 65535),
            relay_priority: candidate_priority(PREF_RELAY, 65535),
            relays: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            selected: None,
            started: None,
            next_check: None,
            consent: None,
            failed: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
            ignored: 0,
            authenticated_at: None,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// Fail when nothing is nominated this long after [`IceAgent::start`] (default
    /// [`CONNECT_TIMEOUT`]).
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
    }

    /// Start the failure clock at `now` (the answer went out): with no pair nominated within
    /// [`CONNECT_TIMEOUT`], even if no candidate or check ever arrives, ICE has failed.
    pub fn start(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// The host has an IPv6 socket at `addr` too: IPv6 remote candidates are paired with
    /// [`Base::Host`] from now on (and checks arriving from IPv6 addresses are answered).
    pub fn set_host_ipv6(&mut self, addr: SocketAddr) {
        if addr.is_ipv6() {
            self.host_ipv6 = Some(addr);
        }
    }

    /// The host's IPv6 socket address, if it has one.
    pub fn host_ipv6(&self) -> Option<SocketAddr> {
        self.host_ipv6
    }

    /// Whether `base` can reach `remote`: the same address family on both sides.
    fn same_family(&self, base: Base, remote: SocketAddr) -> bool {
        match base {
            Base::Host => remote.is_ipv4() || self.host_ipv6.is_some(),
            Base::Relay(n) => self.relays.iter().any(|&(r, v6)| r == n && v6 == remote.is_ipv6()),
        }
    }

    /// The priority we advertise for a host candidate.
    pub fn host_priority(&self) -> u32 {
        self.host_priority
    }

    /// The priority we advertise for a relay candidate.
    pub fn relay_priority(&self) -> u32 {
        self.relay_priority
    }

    /// The priority we advertise for a server-reflexive candidate.
    pub fn srflx_priority(&self) -> u32 {
        candidate_priority(PREF_SRFLX, 65535)
    }

    /// Whether the viewer proved it is at `remote` on `base` (an authenticated check from there,
    /// or a signed success response to ours): the only pairs DTLS and RTCP are accepted on.
    pub fn is_verified(&self, base: Base, remote: SocketAddr) -> bool {
        self.pairs.iter().any(|p| p.verified && p.base == base && p.remote == remote)
    }

    /// The selected pair, once the viewer nominated one.
    pub fn selected(&self) -> Option<(Base, SocketAddr)> {
        self.selected.map(|i| (self.pairs[i].base, self.pairs[i].remote))
    }

    /// How many pairs exist (for stats and tests).
    pub fn pair_count(&self) -> usize {
        self.pairs.len()
    }

    /// A TURN allocation with address `relayed` is ready: pair it with every remote candidate of
    /// its address family known so far.
    pub fn add_relay(&mut self, now: Instant, relay: usize, relayed: SocketAddr) {
        if self.relays.iter().any(|&(r, _)| r == relay) {
            return;
        }
        self.relays.push((relay, relayed.is_ipv6()));
        let mut remotes: Vec<(SocketAddr, u32, String)> = self
            .remotes
            .iter()
            .filter(|r| r.addr.is_ipv6() == relayed.is_ipv6())
            .map(|r| (r.addr, r.priority, r.kind.clone()))
            .collect();
        remotes.dedup();
        for (addr, prio, kind) in remotes {
            self.add_pair(now, Base::Relay(relay), addr, prio, &kind);
        }
    }

    fn local_priority(&self, base: Base) -> u32 {
        match base {
            Base::Host => self.host_priority,
            Base::Relay(_) => self.relay_priority,
        }
    }

    /// A remote candidate trickled by the viewer, paired with every local base of its address
    /// family. An IPv6 one is refused (with the reason) when there is no IPv6 base to pair it
    /// with: no IPv6 host socket, or a relay-only policy (relays are allocated IPv4).
    pub fn add_remote(&mut self, now: Instant, c: &RemoteCandidate) -> Result<(), CandidateError> {
        if c.addr.is_ipv6() && !(self.host_allowed && self.host_ipv6.is_some()) && !self.relays.iter().any(|r| r.1) {
            return Err(CandidateError::Ignored(if self.host_allowed {
                "IPv6 (this session has no IPv6 socket: IPv6 is not available on this host)".into()
            } else {
                "IPv6 (relay-only policy, and the relays are IPv4)".into()
            }));
        }
        if !self.remotes.iter().any(|r| r.addr == c.addr) {
            self.remotes.push(c.clone());
        }
        let mut bases = Vec::new();
        if self.host_allowed {
            bases.push(Base::Host);
        }
        bases.extend(self.relays.iter().map(|r| Base::Relay(r.0)));
        for base in bases {
            if self.same_family(base, c.addr) {
                self.add_pair(now, base, c.addr, c.priority, &c.kind);
            }
        }
        Ok(())
    }

    /// How many remote candidates are known, and whether `addr` is one of them.
    pub fn remote_known(&self, addr: SocketAddr) -> (usize, bool) {
        (self.remotes.len(), self.remotes.iter().any(|r| r.addr == addr))
    }

    /// Remote addresses known (for TURN permissions).
    pub fn remote_addrs(&self) -> Vec<SocketAddr> {
        self.remotes.iter().map(|r| r.addr).collect()
    }

    fn add_pair(&mut self, now: Instant, base: Base, remote: SocketAddr, remote_priority: u32, kind: &str) -> usize {
        if let Some(i) = self.pairs.iter().position(|p| p.base == base && p.remote == remote) {
            return i;
        }
        self.started.get_or_insert(now);
        let priority = pair_priority(remote_priority, self.local_priority(base));
        self.pairs.push(Pair {
            base,
            remote,
            remote_kind: kind.to_owned(),
            priority,
            state: PairState::Waiting,
            verified: false,
            tid: None,
            tries: 0,
            next_retry: now,
        });
        if self.next_check.is_none() {
            self.next_check = Some(now);
        }
        self.pairs.len() - 1
    }

    /// Whether `data` (a STUN message from `from`) is a Binding request or response for this
    /// agent; handles it if so.
    pub fn handle_stun(&mut self, now: Instant, base: Base, from: SocketAddr, data: &[u8]) -> bool {
        let mut m = Message::new();
        m.raw = data.to_vec();
        if m.decode().is_err() || m.typ.method != METHOD_BINDING {
            return false;
        }
        if m.typ.class == CLASS_REQUEST {
            self.handle_request(now, base, from, m);
            true
        } else if m.typ.class == CLASS_SUCCESS_RESPONSE || m.typ.class == CLASS_ERROR_RESPONSE {
            self.handle_response(now, m)
        } else {
            false
        }
    }

    fn handle_request(&mut self, now: Instant, base: Base, from: SocketAddr, mut m: Message) {
        if (base == Base::Host && !self.host_allowed) || !self.same_family(base, from) {
            self.ignored += 1;
            return;
        }
        // USERNAME is "<our ufrag>:<their ufrag>"; MESSAGE-INTEGRITY uses our password.
        let ours = match TextAttribute::get_from_as(&m, ATTR_USERNAME) {
            Ok(u) => u.text.split(':').next() == Some(self.local_ufrag.as_str()),
            Err(_) => false,
        };
        let crypto = self.provider.crypto();
        if !ours || MessageIntegrity::check(&mut m, self.local_pwd.as_bytes(), crypto).is_err() {
            self.ignored += 1;
            return;
        }
        let mut response = Message::new();
        let built = response.build(&[
            Box::new(m.clone()) as Box<dyn Setter>,
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(self.local_pwd.clone(), crypto)),
            Box::new(FINGERPRINT),
        ]);
        if built.is_err() {
            self.ignored += 1;
            return;
        }
        self.out.push_back(Transmit { base, to: from, data: response.raw.clone() });
        self.authenticated_at = Some(now);
        if self.failed {
            return;
        }
        // An address we did not know: a peer-reflexive candidate (RFC 8445 §7.3.1.3).
        let priority = m
            .get(ATTR_PRIORITY)
            .ok()
            .filter(|v| v.len() == 4)
            .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            .unwrap_or_else(|| candidate_priority(PREF_PRFLX, 65535));
        if !self.remotes.iter().any(|r| r.addr == from) {
            self.remotes.push(RemoteCandidate { addr: from, priority, kind: "prflx".into() });
        }
        let i = self.add_pair(now, base, from, priority, "prflx");
        self.pairs[i].verified = true;
        // Triggered check (§7.3.1.4): unless it already succeeded or is under way.
        if matches!(self.pairs[i].state, PairState::Waiting | PairState::Failed) {
            self.pairs[i].tries = 0;
            self.send_check(now, i);
        }
        if m.contains(ATTR_USE_CANDIDATE) && self.selected != Some(i) {
            self.select(now, i);
        }
    }

    fn select(&mut self, now: Instant, i: usize) {
        self.selected = Some(i);
        let p = &self.pairs[i];
        let local = match p.base {
            Base::Host => "host".to_owned(),
            Base::Relay(n) => format!("relay#{n}"),
        };
        let description = format!("{local} -> {} {}", p.remote_kind, p.remote);
        self.events.push_back(IceEvent::Selected { base: p.base, remote: p.remote, description });
        let jitter = self.jitter(CONSENT_INTERVAL);
        let last_ok = self.consent.as_ref().map(|c| c.last_ok).unwrap_or(now);
        self.consent = Some(Consent { next_send: now + jitter, last_ok, tid: None });
    }

    fn handle_response(&mut self, now: Instant, mut m: Message) -> bool {
        let tid = m.transaction_id;
        let consent = self.consent.as_ref().is_some_and(|c| c.tid == Some(tid));
        let pair = self.pairs.iter().position(|p| p.tid == Some(tid));
        if !consent && pair.is_none() {
            return false;
        }
        // Responses are signed with the viewer's password.
        if MessageIntegrity::check(&mut m, self.remote_pwd.as_bytes(), self.provider.crypto()).is_err() {
            self.ignored += 1;
            return true;
        }
        let ok = m.typ.class == CLASS_SUCCESS_RESPONSE;
        self.authenticated_at = Some(now);
        if consent && ok {
            if let Some(c) = self.consent.as_mut() {
                c.last_ok = now;
                c.tid = None;
            }
        }
        if let Some(i) = pair {
            let p = &mut self.pairs[i];
            p.tid = None;
            p.state = if ok { PairState::Succeeded } else { PairState::Failed };
            p.verified |= ok;
            if ok && self.selected == Some(i) {
                if let Some(c) = self.consent.as_mut() {
                    c.last_ok = now;
                }
            }
        }
        true
    }

    fn check_request(&self, tid: TransactionId) -> Option<Vec<u8>> {
        let mut m = Message::new();
        let prflx_priority = candidate_priority(PREF_PRFLX, 65535);
        m.build(&[
            Box::new(BINDING_REQUEST) as Box<dyn Setter>,
            Box::new(tid),
            Box::new(TextAttribute::new(ATTR_USERNAME, format!("{}:{}", self.remote_ufrag, self.local_ufrag))),
            Box::new(RawAttribute { typ: ATTR_PRIORITY, length: 4, value: prflx_priority.to_be_bytes().to_vec() }),
            Box::new(RawAttribute { typ: ATTR_ICE_CONTROLLED, length: 8, value: self.tie_breaker.to_be_bytes().to_vec() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                self.remote_pwd.clone(),
                self.provider.crypto(),
            )),
            Box::new(FINGERPRINT),
        ])
        .ok()?;
        Some(m.raw)
    }

    fn send_check(&mut self, now: Instant, i: usize) {
        let tid = TransactionId::new();
        let Some(data) = self.check_request(tid) else { return };
        let p = &mut self.pairs[i];
        p.state = PairState::InProgress;
        p.tid = Some(tid);
        p.tries += 1;
        p.next_retry = now + CHECK_RTO * (1 << (p.tries - 1).min(4));
        self.out.push_back(Transmit { base: p.base, to: p.remote, data });
    }

    fn jitter(&self, d: Duration) -> Duration {
        // 0.8 … 1.2 × d, from a fresh random transaction id.
        let r = TransactionId::new().0[0] as u32; // 0..=255
        d * (800 + r * 400 / 255) / 1000
    }

    /// Drive checks, retransmissions, consent and failure detection.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        // Retransmissions and give-ups.
        for i in 0..self.pairs.len() {
            let p = &self.pairs[i];
            if p.state == PairState::InProgress && p.next_retry <= now {
                if p.tries >= CHECK_TRIES {
                    let p = &mut self.pairs[i];
                    p.state = PairState::Failed;
                    p.tid = None;
                } else if self.selected.is_none() || self.selected == Some(i) {
                    self.send_check(now, i);
                }
            }
        }
        // One new check per Ta, highest priority first, until a pair is selected.
        if self.selected.is_none() && self.next_check.is_some_and(|t| t <= now) {
            let next = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == PairState::Waiting && (p.base != Base::Host || self.host_allowed))
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i);
            match next {
                Some(i) => {
                    self.send_check(now, i);
                    self.next_check = Some(now + TA);
                }
                None => self.next_check = None,
            }
        }
        if self.selected.is_none() {
            if let Some(start) = self.started {
                if now.saturating_duration_since(start) >= self.connect_timeout {
                    self.fail(format!(
                        "ICE failed: no candidate pair was nominated within {} s ({} pairs tried)",
                        self.connect_timeout.as_secs_f64(),
                        self.pairs.len()
                    ));
                }
            }
            return;
        }
        // Consent freshness on the selected pair.
        let i = self.selected.unwrap();
        let Some(c) = self.consent.as_ref() else { return };
        if now.saturating_duration_since(c.last_ok) >= CONSENT_TIMEOUT {
            self.fail(format!(
                "ICE consent expired: the viewer answered no check for {} s",
                CONSENT_TIMEOUT.as_secs()
            ));
            return;
        }
        if c.next_send <= now {
            let tid = TransactionId::new();
            let next = now + self.jitter(CONSENT_INTERVAL);
            if let Some(data) = self.check_request(tid) {
                let p = &self.pairs[i];
                self.out.push_back(Transmit { base: p.base, to: p.remote, data });
            }
            if let Some(c) = self.consent.as_mut() {
                c.tid = Some(tid);
                c.next_send = next;
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.failed = true;
        self.events.push_back(IceEvent::Failed(reason));
    }

    /// When [`IceAgent::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if self.selected.is_none() {
            if let Some(n) = self.next_check {
                consider(n);
            }
            if let Some(s) = self.started {
                consider(s + self.connect_timeout);
            }
        }
        for (i, p) in self.pairs.iter().enumerate() {
            if p.state == PairState::InProgress && (self.selected.is_none() || self.selected == Some(i)) {
                consider(p.next_retry);
            }
        }
        if let Some(c) = &self.consent {
            consider(c.next_send);
            consider(c.last_ok + CONSENT_TIMEOUT);
        }
        t
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::attributes::ATTR_ICE_CONTROLLING;

    fn provider() -> Arc<dyn RTCCryptoProvider> {
        rtc_dtls::crypto_provider::default_provider().unwrap()
    }

    /// The viewer's side of a check: a request signed with our password.
    fn viewer_check(p: &dyn RTCCryptoProvider, nominate: bool, priority: u32) -> Vec<u8> {
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, "ours:theirs".to_owned())),
            Box::new(RawAttribute { typ: ATTR_PRIORITY, length: 4, value: priority.to_be_bytes().to_vec() }),
            Box::new(RawAttribute { typ: ATTR_ICE_CONTROLLING, length: 8, value: vec![1; 8] }),
        ];
        if nominate {
            setters.push(Box::new(RawAttribute { typ: ATTR_USE_CANDIDATE, length: 0, value: vec![] }));
        }
        setters.push(Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            "ourpassword0123456789012".to_owned(),
            p.crypto(),
        )));
        setters.push(Box::new(FINGERPRINT));
        m.build(&setters).unwrap();
        m.raw
    }

    /// The viewer answering one of our checks, signed with its password.
    fn viewer_answer(p: &dyn RTCCryptoProvider, request: &[u8], from: SocketAddr) -> Vec<u8> {
        let mut req = Message::new();
        req.raw = request.to_vec();
        req.decode().unwrap();
        let user = TextAttribute::get_from_as(&req, ATTR_USERNAME).unwrap();
        assert_eq!(user.text, "theirs:ours", "USERNAME is <their ufrag>:<our ufrag>");
        assert!(req.contains(ATTR_ICE_CONTROLLED), "we check as the controlled agent");
        assert!(req.contains(ATTR_PRIORITY));
        MessageIntegrity::check(&mut req, b"theirpassword01234567890", p.crypto()).expect("signed with the viewer's password");
        let mut r = Message::new();
        r.build(&[
            Box::new(req.clone()) as Box<dyn Setter>,
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                "theirpassword01234567890".to_owned(),
                p.crypto(),
            )),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        r.raw
    }

    fn agent(host: bool) -> IceAgent {
        IceAgent::new(("ours", "ourpassword0123456789012"), ("theirs", "theirpassword01234567890"), host, provider())
    }

    #[test]
    fn parses_candidates_and_says_why_one_is_not_used() {
        let c = parse_candidate("candidate:842163049 1 udp 1677729535 203.0.113.7 50123 typ srflx raddr 10.0.0.2 rport 50123 generation 0").unwrap();
        assert_eq!(c.addr, "203.0.113.7:50123".parse::<SocketAddr>().unwrap());
        assert_eq!((c.priority, c.kind.as_str()), (1677729535, "srflx"));
        assert!(parse_candidate("a=candidate:1 1 UDP 2122260223 127.0.0.1 5000 typ host").is_ok());
        for (line, why) in [
            ("candidate:1 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active", "transport tcp"),
            ("candidate:1 2 udp 2122260222 10.0.0.2 5001 typ host", "component 2"),
            ("candidate:1 1 udp 2122260223 4f1e.local 5000 typ host", "mDNS"),
            ("candidate:1 1 udp 2122260223 fe80::1c2d:3eff:fe4f:5a6b 5000 typ host", "link-local"),
        ] {
            match parse_candidate(line) {
                Err(CandidateError::Ignored(t)) => assert!(t.contains(why), "{t}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in ["", "candidate:", "candidate:1 1 udp x 1.2.3.4 5 typ host", "candidate:1 1 udp 1 1.2.3.4 99999 typ host", "candidate:1 1 udp 1 nope 5 typ host", "candidate:1 1 udp 1 1.2.3.4 5 typ bogus", "hello"] {
            assert!(matches!(parse_candidate(line), Err(CandidateError::Malformed(_))), "{line:?}");
        }
    }

    #[test]
    fn checks_every_pair_in_priority_order_and_follows_the_nomination() {
        let p = provider();
        let mut a = agent(true);
        let t0 = Instant::now();
        let low: SocketAddr = "10.0.0.9:7000".parse().unwrap();
        let high: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        a.add_remote(t0, &RemoteCandidate { addr: low, priority: 100, kind: "relay".into() }).unwrap();
        a.add_remote(t0, &RemoteCandidate { addr: high, priority: 2_000_000_000, kind: "host".into() }).unwrap();
        a.handle_timeout(t0);
        let first = a.poll_transmit().expect("a check");
        assert_eq!((first.base, first.to), (Base::Host, high), "highest priority first");
        assert!(a.poll_transmit().is_none(), "one new check per Ta");
        a.handle_timeout(t0 + TA);
        assert_eq!(a.poll_transmit().unwrap().to, low);
        // The viewer answers our first check: the pair is valid.
        assert!(a.handle_stun(t0 + TA, Base::Host, high, &viewer_answer(p.as_ref(), &first.data, high)));
        let state = |a: &IceAgent, r| a.pairs.iter().find(|p| p.remote == r).unwrap().state;
        assert_eq!(state(&a, high), PairState::Succeeded);
        assert_eq!(state(&a, low), PairState::InProgress);
        // It nominates: we answer and select.
        assert!(a.handle_stun(t0 + TA, Base::Host, high, &viewer_check(p.as_ref(), true, 2_000_000_000)));
        let answer = a.poll_transmit().expect("the answer");
        assert_eq!(answer.to, high);
        match a.poll_event() {
            Some(IceEvent::Selected { base: Base::Host, remote, description }) => {
                assert_eq!(remote, high);
                assert_eq!(description, "host -> host 127.0.0.1:6000");
            }
            other => panic!("{other:?}"),
        }
        // A forged answer (wrong password) is not believed.
        let mut forged = viewer_check(p.as_ref(), false, 1);
        forged[30] ^= 1;
        let before = a.ignored;
        a.handle_stun(t0 + TA, Base::Host, high, &forged);
        assert_eq!(a.ignored, before + 1);
    }

    #[test]
    fn learns_peer_reflexive_candidates_from_checks_and_checks_back() {
        let p = provider();
        let mut a = agent(true);
        let t0 = Instant::now();
        let from: SocketAddr = "127.0.0.1:6100".parse().unwrap();
        a.handle_stun(t0, Base::Host, from, &viewer_check(p.as_ref(), false, 1_853_817_087));
        let answer = a.poll_transmit().unwrap();
        let triggered = a.poll_transmit().expect("a triggered check back");
        assert_eq!((answer.to, triggered.to), (from, from));
        assert_eq!(a.pair_count(), 1);
        assert_eq!(a.pairs[0].remote_kind, "prflx");
        a.handle_stun(t0, Base::Host, from, &viewer_answer(p.as_ref(), &triggered.data, from));
        assert_eq!(a.pairs[0].state, PairState::Succeeded);
    }

    #[test]
    fn relay_only_policy_never_uses_the_host_socket() {
        let p = provider();
        let mut a = agent(false);
        let t0 = Instant::now();
        let viewer: SocketAddr = "127.0.0.1:6200".parse().unwrap();
        a.add_remote(t0, &RemoteCandidate { addr: viewer, priority: 2_000_000_000, kind: "host".into() }).unwrap();
        a.handle_stun(t0, Base::Host, viewer, &viewer_check(p.as_ref(), true, 1));
        a.handle_timeout(t0);
        assert!(a.poll_transmit().is_none(), "no host pair, no answer on the host socket");
        a.add_relay(t0, 0, "127.0.0.1:40000".parse().unwrap());
        a.add_remote(t0, &RemoteCandidate { addr: viewer, priority: 2_000_000_000, kind: "host".into() }).unwrap();
        a.handle_timeout(t0 + TA);
        let check = a.poll_transmit().expect("a check through the relay");
        assert_eq!((check.base, check.to), (Base::Relay(0), viewer));
    }

    #[test]
    fn consent_is_refreshed_and_its_loss_ends_the_session() {
        let p = provider();
        let mut a = agent(true);
        let t0 = Instant::now();
        let viewer: SocketAddr = "127.0.0.1:6300".parse().unwrap();
        a.handle_stun(t0, Base::Host, viewer, &viewer_check(p.as_ref(), true, 1));
        while a.poll_transmit().is_some() {}
        assert!(matches!(a.poll_event(), Some(IceEvent::Selected { .. })));
        // Consent checks go out every 4–6 s; answered ones keep consent.
        let mut t = t0;
        let mut sent = 0;
        while t < t0 + Duration::from_secs(60) {
            t += Duration::from_millis(500);
            a.handle_timeout(t);
            while let Some(x) = a.poll_transmit() {
                sent += 1;
                a.handle_stun(t, Base::Host, viewer, &viewer_answer(p.as_ref(), &x.data, viewer));
            }
        }
        assert!((9..=16).contains(&sent), "{sent} consent checks in 60 s");
        assert!(a.poll_event().is_none(), "consent kept");
        // The viewer goes silent: 30 s later consent is lost.
        let silent_from = t;
        while a.poll_event().is_none() {
            t += Duration::from_millis(500);
            a.handle_timeout(t);
            while a.poll_transmit().is_some() {}
            assert!(t < silent_from + Duration::from_secs(40), "consent never expired");
        }
        assert!(t >= silent_from + Duration::from_secs(24), "expired too early");
    }

    #[test]
    fn fails_when_nothing_is_nominated() {
        let mut a = agent(true);
        let t0 = Instant::now();
        a.add_remote(t0, &RemoteCandidate { addr: "192.0.2.1:9".parse().unwrap(), priority: 1, kind: "host".into() }).unwrap();
        let mut t = t0;
        let mut checks = 0;
        while t < t0 + CONNECT_TIMEOUT + Duration::from_secs(1) {
            a.handle_timeout(t);
            while a.poll_transmit().is_some() {
                checks += 1;
            }
            t += Duration::from_millis(100);
        }
        assert_eq!(checks, CHECK_TRIES, "retransmitted, then given up");
        match a.poll_event() {
            Some(IceEvent::Failed(why)) => assert!(why.contains("no candidate pair"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn parses_ipv6_candidates() {
        for (line, addr) in [
            ("candidate:1 1 udp 2122262783 2001:db8::7 50123 typ host generation 0", "[2001:db8::7]:50123"),
            ("a=candidate:2 1 UDP 2122262783 ::1 5000 typ host", "[::1]:5000"),
            ("candidate:3 1 udp 1686052607 2001:db8:1:2::9 6000 typ srflx raddr fd00::2 rport 7000", "[2001:db8:1:2::9]:6000"),
            // An IPv4-mapped address is its IPv4 address.
            ("candidate:4 1 udp 2122262783 ::ffff:192.0.2.7 5000 typ host", "192.0.2.7:5000"),
        ] {
            assert_eq!(parse_candidate(line).unwrap().addr, addr.parse::<SocketAddr>().unwrap(), "{line}");
        }
    }

    #[test]
    fn ipv6_candidates_pair_only_with_ipv6_locals() {
        let p = provider();
        let mut a = agent(true);
        a.set_host_ipv6("[::1]:7000".parse().unwrap());
        let t0 = Instant::now();
        let v4: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let v6: SocketAddr = "[::1]:6001".parse().unwrap();
        a.add_relay(t0, 0, "127.0.0.1:40000".parse().unwrap());
        a.add_remote(t0, &RemoteCandidate { addr: v6, priority: 2_000_000_000, kind: "host".into() }).unwrap();
        a.add_remote(t0, &RemoteCandidate { addr: v4, priority: 1_000_000_000, kind: "host".into() }).unwrap();
        let mut pairs: Vec<(Base, SocketAddr)> = a.pairs.iter().map(|p| (p.base, p.remote)).collect();
        pairs.sort_by_key(|p| format!("{p:?}"));
        assert_eq!(
            pairs,
            vec![(Base::Host, v4), (Base::Host, v6), (Base::Relay(0), v4)],
            "the IPv4 relay is not paired with the IPv6 candidate"
        );
        // An IPv6 relay would be paired with the IPv6 candidate only.
        a.add_relay(t0, 1, "[::1]:40001".parse().unwrap());
        assert!(a.pairs.iter().any(|p| p.base == Base::Relay(1) && p.remote == v6));
        assert!(!a.pairs.iter().any(|p| p.base == Base::Relay(1) && p.remote == v4));
        // The first check goes to the IPv6 candidate from the host (its IPv6 socket).
        a.handle_timeout(t0);
        let check = a.poll_transmit().unwrap();
        assert_eq!((check.base, check.to), (Base::Host, v6));
        // The viewer checks and nominates from another IPv6 address: a peer-reflexive IPv6 pair.
        let moved: SocketAddr = "[::1]:6002".parse().unwrap();
        assert!(a.handle_stun(t0, Base::Host, moved, &viewer_check(p.as_ref(), true, 1)));
        let answer = a.poll_transmit().unwrap();
        assert_eq!((answer.base, answer.to), (Base::Host, moved));
        match a.poll_event() {
            Some(IceEvent::Selected { base: Base::Host, remote, description }) => {
                assert_eq!(remote, moved);
                assert_eq!(description, "host -> prflx [::1]:6002");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ipv4_only_agent_ignores_ipv6_candidates_and_says_why() {
        let p = provider();
        let t0 = Instant::now();
        let v6 = RemoteCandidate { addr: "[2001:db8::7]:5000".parse().unwrap(), priority: 1, kind: "host".into() };
        let mut a = agent(true);
        match a.add_remote(t0, &v6) {
            Err(CandidateError::Ignored(why)) => assert!(why.contains("no IPv6 socket"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!((a.pair_count(), a.remote_known(v6.addr)), (0, (0, false)));
        // A check from an IPv6 address has no socket of ours to have come in on: not answered.
        a.handle_stun(t0, Base::Host, v6.addr, &viewer_check(p.as_ref(), true, 1));
        assert!(a.poll_transmit().is_none());
        assert_eq!((a.ignored, a.pair_count()), (1, 0));
        // Relay-only, even with an IPv6 socket: the relays are IPv4.
        let mut relay_only = agent(false);
        relay_only.set_host_ipv6("[::1]:7000".parse().unwrap());
        relay_only.add_relay(t0, 0, "127.0.0.1:40000".parse().unwrap());
        match relay_only.add_remote(t0, &v6) {
            Err(CandidateError::Ignored(why)) => assert!(why.contains("relay-only"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(relay_only.pair_count(), 0);
    }
}
