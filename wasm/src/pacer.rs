//! A viewer's pacer: every datagram of media, retransmission and probe leaves through it, at a
//! rate set from the bandwidth estimate ([`crate::gcc`]), instead of one burst per frame.
//!
//! A leaky bucket: tokens (bytes) refill at the pacing rate up to [`BURST`] of it, a packet leaves
//! while tokens last, the rest waits in class queues served audio first, then retransmissions,
//! then video. Probe packets leave on their own schedule (the probe's rate) and take no tokens.
//! The pacing rate is above the estimate so that a frame's burst (a keyframe above all) leaves
//! quickly; a second bucket at the estimate itself, [`AVERAGE_WINDOW`] deep, keeps the average
//! there: a stream above the estimate (a fixed-rate source on a narrow path) waits, and is
//! dropped as below, instead of going out at the pacing rate and overrunning the path.
//! Video that waited longer than [`MAX_QUEUE_DELAY`] is dropped whole (the caller then waits for
//! the next keyframe): the queue never turns into latency. Sans-IO: the caller's clock.
//!
//! A probe is carried by queued video when there is enough of it ([`Pacer::start_media_probe`],
//! libwebrtc's probing with media): a stream held back by its estimate (a joining viewer's
//! catch-up, a live source above the start rate) then finds the path's room in the packets it
//! has to send anyway, and never waits for its queue to empty before it may probe.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The bucket's depth: this long at the pacing rate (at least [`MIN_BURST_BYTES`]).
pub const BURST: Duration = Duration::from_millis(40);
pub const MIN_BURST_BYTES: f64 = 4.0 * 1200.0;
/// Pacing rate = this × the estimate.
pub const PACE_FACTOR: f64 = 1.5;
/// Retransmissions and video leave at most at the estimate over this long (plus its depth).
pub const AVERAGE_WINDOW: Duration = Duration::from_millis(250);
/// Video older than this in the queue is dropped.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_millis(1000);
/// Wake-ups come no more often than this: each sends what the rate allowed meanwhile.
pub const TICK: Duration = Duration::from_millis(5);
/// Bytes queued at most (beyond, the oldest video goes): 8 MB.
const MAX_QUEUED_BYTES: usize = 8 << 20;

/// What a queued datagram carries, in the order classes are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Audio = 0,
    Retransmission = 1,
    Video = 2,
    Probe = 3,
}

struct Queued {
    data: Vec<u8>,
    at: Instant,
    /// The probe cluster (0: none).
    probe: u32,
}

/// One viewer's pacer.
pub struct Pacer {
    queues: [VecDeque<Queued>; 4],
    tokens: f64,
    /// The average's bucket (bytes, may go below zero), refilled at the estimate.
    average: f64,
    last: Instant,
    rate_bps: f64,
    probe_rate: f64,
    probe_start: Option<Instant>,
    probe_bytes: usize,
    /// A probe carried by queued video: its cluster, the bytes still to carry, packets so far.
    media_probe: Option<(u32, usize, usize)>,
    /// A media probe that ended, until the caller takes it: its cluster and packets.
    finished: Option<(u32, usize)>,
    spare: Vec<Vec<u8>>,
    /// Bytes queued per class.
    bytes: [usize; 4],
    /// Datagrams dropped from the queue (stale video), and the times it happened.
    pub dropped: u64,
    pub drops: u64,
}

impl Pacer {
    /// A pacer at `rate_bps`, its bucket full at `now`.
    pub fn new(now: Instant, rate_bps: f64) -> Pacer {
        let mut p = Pacer {
            queues: Default::default(),
            tokens: 0.0,
            average: 0.0,
            last: now,
            rate_bps: 0.0,
            probe_rate: 0.0,
            probe_start: None,
            probe_bytes: 0,
            media_probe: None,
            finished: None,
            spare: Vec::new(),
            bytes: [0; 4],
            dropped: 0,
            drops: 0,
        };
        p.set_rate(rate_bps);
        p.tokens = p.depth();
        p.average = p.average_depth();
        p
    }

    fn depth(&self) -> f64 {
        (self.rate_bps / 8.0 * BURST.as_secs_f64()).max(MIN_BURST_BYTES)
    }

    /// The estimate, bytes per second.
    fn average_rate(&self) -> f64 {
        self.rate_bps / PACE_FACTOR / 8.0
    }

    fn average_depth(&self) -> f64 {
        (self.average_rate() * AVERAGE_WINDOW.as_secs_f64()).max(MIN_BURST_BYTES)
    }

    /// The pacing rate from now on.
    pub fn set_rate(&mut self, rate_bps: f64) {
        self.rate_bps = rate_bps.max(1.0) * PACE_FACTOR;
    }

    /// The pacing rate.
    pub fn rate(&self) -> f64 {
        self.rate_bps
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate_bps / 8.0).min(self.depth());
        self.average = (self.average + dt * self.average_rate()).min(self.average_depth());
    }

    /// Queue a copy of `data`.
    pub fn push(&mut self, now: Instant, class: Class, data: &[u8], probe: u32) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.bytes[class as usize] += buf.len();
        if class == Class::Probe && self.queues[Class::Probe as usize].is_empty() {
            self.probe_start = Some(now);
            self.probe_bytes = 0;
        }
        self.queues[class as usize].push_back(Queued { data: buf, at: now, probe });
        while self.queued_bytes() > MAX_QUEUED_BYTES {
            if !self.drop_video() {
                break;
            }
        }
    }

    /// Carry probe `id` at `rate_bps` in the next `bytes` of queued video (the caller packetizes
    /// further frames while [`Pacer::wants_media`]): until it ends, video leaves on the probe's
    /// clock only, tagged with `id`, taking no tokens.
    pub fn start_media_probe(&mut self, now: Instant, id: u32, rate_bps: f64, bytes: usize) {
        self.probe_rate = rate_bps.max(1.0);
        self.probe_start = Some(now);
        self.probe_bytes = 0;
        self.media_probe = Some((id, bytes.max(1), 0));
    }

    /// End a media probe (it carried its bytes, or no video is left to carry the rest).
    pub fn end_media_probe(&mut self) {
        if let Some((id, _, n)) = self.media_probe.take() {
            self.finished = Some((id, n));
        }
    }

    /// A media probe that ended since the last call: its cluster and the packets it carried.
    pub fn finished_probe(&mut self) -> Option<(u32, usize)> {
        self.finished.take()
    }

    /// Whether a probe (padding queued, or carried by media) is under way.
    pub fn probing(&self) -> bool {
        self.media_probe.is_some() || !self.queues[Class::Probe as usize].is_empty()
    }

    /// Whether a media probe waits for more video (the next frame should be packetized now).
    pub fn wants_media(&self) -> bool {
        self.media_probe.is_some() && self.queues[Class::Video as usize].is_empty()
    }

    /// Video bytes queued.
    pub fn video_bytes(&self) -> usize {
        self.bytes[Class::Video as usize]
    }

    fn probe_due(&self) -> Option<Instant> {
        Some(self.probe_start? + Duration::from_secs_f64(self.probe_bytes as f64 * 8.0 / self.probe_rate))
    }

    /// Probe packets pushed from now on leave at `rate_bps`.
    pub fn set_probe_rate(&mut self, rate_bps: f64) {
        self.probe_rate = rate_bps.max(1.0);
    }

    /// The next datagram allowed to leave at `now`: its class, bytes and probe cluster. Give the
    /// bytes back with [`Pacer::recycle`].
    pub fn pop(&mut self, now: Instant) -> Option<(Class, Vec<u8>, u32)> {
        self.refill(now);
        // Probes on their own clock: packet k leaves once the probe's rate allows its bytes.
        if let Some((id, left, n)) = self.media_probe {
            if self.has_video() && self.probe_due().is_some_and(|due| due <= now + Duration::from_millis(1)) {
                let (class, data, _) = self.take(Class::Video)?;
                self.probe_bytes += data.len();
                self.average -= data.len() as f64;
                let left = left.saturating_sub(data.len());
                self.media_probe = Some((id, left, n + 1));
                if left == 0 {
                    self.end_media_probe();
                }
                return Some((class, data, id));
            }
        } else if let (Some(due), Some(q)) = (self.probe_due(), self.queues[Class::Probe as usize].front()) {
            if due <= now + Duration::from_millis(1) {
                self.probe_bytes += q.data.len();
                return self.take(Class::Probe);
            }
        }
        if self.tokens <= 0.0 {
            return None;
        }
        // While a probe carries the video, video leaves on the probe's clock only; audio is never
        // held by the average (it counts in it).
        let classes: &[Class] = match (self.media_probe.is_some(), self.average > 0.0) {
            (_, false) => &[Class::Audio],
            (true, true) => &[Class::Audio, Class::Retransmission],
            (false, true) => &[Class::Audio, Class::Retransmission, Class::Video],
        };
        let class = classes.iter().copied().find(|c| !self.queues[*c as usize].is_empty())?;
        let (class, data, probe) = self.take(class)?;
        self.tokens -= data.len() as f64;
        self.average -= data.len() as f64;
        Some((class, data, probe))
    }

    fn take(&mut self, class: Class) -> Option<(Class, Vec<u8>, u32)> {
        let q = self.queues[class as usize].pop_front()?;
        self.bytes[class as usize] -= q.data.len();
        Some((class, q.data, q.probe))
    }

    /// Give a popped datagram's buffer back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 64 {
            self.spare.push(buf);
        }
    }

    /// Whether video datagrams wait.
    pub fn has_video(&self) -> bool {
        !self.queues[Class::Video as usize].is_empty()
    }

    /// Whether a datagram could leave now (tokens left, and for video the average's too).
    pub fn has_tokens(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens > 0.0 && self.average > 0.0
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.is_empty())
    }

    /// When the next datagram may leave (None: nothing waits).
    pub fn next_time(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let carried = if self.media_probe.is_some() { self.has_video() } else { !self.queues[Class::Probe as usize].is_empty() };
        if carried {
            next = self.probe_due();
        }
        let paced = if self.media_probe.is_some() { &self.queues[..2] } else { &self.queues[..3] };
        if paced.iter().any(|q| !q.is_empty()) {
            // When a tick's worth of tokens is there (a few packets per wake-up).
            let per_s = self.rate_bps / 8.0;
            let want = (per_s * TICK.as_secs_f64()).min(self.depth());
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            let tokens = self.tokens + elapsed * per_s;
            let mut wait = ((want - tokens) / per_s).max(0.0);
            if self.queues[Class::Audio as usize].is_empty() {
                // Only what the average holds back: when it is above zero again.
                let average = self.average + elapsed * self.average_rate();
                wait = wait.max((-average / self.average_rate()).max(0.0));
            }
            let t = now + Duration::from_secs_f64(wait).max(Duration::from_millis(1));
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        next
    }

    /// How long the oldest queued video has waited.
    pub fn video_delay(&self, now: Instant) -> Duration {
        self.queues[Class::Video as usize].front().map_or(Duration::ZERO, |q| now.saturating_duration_since(q.at))
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.iter().sum()
    }

    /// Drop all queued video if its oldest waited longer than [`MAX_QUEUE_DELAY`]; returns how
    /// many datagrams went.
    pub fn drop_stale_video(&mut self, now: Instant) -> usize {
        if self.video_delay(now) <= MAX_QUEUE_DELAY {
            return 0;
        }
        let mut n = 0;
        while self.drop_video() {
            n += 1;
        }
        self.drops += 1;
        n
    }

    fn drop_video(&mut self) -> bool {
        let Some(q) = self.queues[Class::Video as usize].pop_front() else { return false };
        self.bytes[Class::Video as usize] -= q.data.len();
        self.dropped += 1;
        self.recycle(q.data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Pacer, t0: Instant, until_ms: u64) -> Vec<(u64, Class, usize)> {
        let mut out = Vec::new();
        let mut now = t0;
        while now <= t0 + Duration::from_millis(until_ms) {
            while let Some((c, d, _)) = p.pop(now) {
                out.push((now.duration_since(t0).as_millis() as u64, c, d.len()));
                p.recycle(d);
            }
            match p.next_time(now) {
                Some(t) => now = t.max(now + Duration::from_micros(100)),
                None => break,
            }
        }
        out
    }

    #[test]
    fn a_probe_rides_on_queued_video_at_its_own_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 800_000.0 / PACE_FACTOR); // 100 KB/s; bucket 4.8 KB
        for _ in 0..60 {
            p.push(t0, Class::Video, &[0u8; 1200], 0);
        }
        // The bucket first, untagged.
        let mut now = t0;
        let mut first = 0;
        while let Some((c, d, probe)) = p.pop(now) {
            assert_eq!((c, probe), (Class::Video, 0));
            first += d.len();
        }
        assert_eq!(first, 4800);
        // 12 KB of the rest carry probe 7 at 9.6 Mbit/s (1.2 KB per ms), taking no tokens.
        p.start_media_probe(now, 7, 9_600_000.0, 12_000);
        assert!(p.probing());
        let mut tagged = Vec::new();
        while tagged.len() < 10 {
            match p.pop(now) {
                Some((c, d, probe)) => {
                    assert_eq!(c, Class::Video);
                    assert_eq!(probe, 7, "video leaves on the probe's clock only while it runs");
                    tagged.push(now.duration_since(t0).as_micros());
                    p.recycle(d);
                }
                None => now = p.next_time(now).unwrap().max(now + Duration::from_micros(50)),
            }
        }
        assert!(!p.probing());
        assert_eq!(p.finished_probe(), Some((7, 10)));
        // Ten packets at 1.2 KB per ms: about 9 ms from the first to the last, not one burst and
        // not the pacing rate's 108 ms.
        let span = tagged.last().unwrap() - tagged[0];
        assert!((8_000..=11_000).contains(&span), "{span} µs");
        // Then the rest at the pacing rate, untagged.
        let sent = run(&mut p, now, 2000);
        assert_eq!(sent.len(), 46);
        let (start, last) = (now.duration_since(t0).as_millis() as u64, sent.last().unwrap().0);
        assert!(last >= 500, "55 KB at 100 KB/s after the probe: ends at {last} ms (probe ended at {start} ms)");
    }

    #[test]
    fn a_stream_above_the_estimate_leaves_at_the_estimate_not_the_pacing_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1_000_000.0); // estimate 125 KB/s, paced at 187.5 KB/s
        for _ in 0..250 {
            p.push(t0, Class::Video, &[0u8; 1000], 0);
        }
        let sent = run(&mut p, t0, 3000);
        assert_eq!(sent.len(), 250);
        // At the pacing rate until the average's 31 KB are used up (0.5 s: it drains at 62.5 KB/s
        // net), then at 125 KB/s: 250 KB take ~1.7 s (the pacing rate alone: 1.33 s).
        let in_window = |a: u64, b: u64| sent.iter().filter(|s| s.0 >= a && s.0 < b).map(|s| s.2).sum::<usize>();
        let steady = in_window(600, 1400);
        assert!((95_000..=106_000).contains(&steady), "{steady} bytes from 0.6 to 1.4 s (100 KB at the estimate)");
        let last = sent.last().unwrap().0;
        assert!((1650..=1800).contains(&last), "{last} ms");
        // Audio is not held by the average.
        let mut p = Pacer::new(t0, 1_000_000.0);
        for _ in 0..100 {
            p.push(t0, Class::Video, &[0u8; 1000], 0);
        }
        let _ = run(&mut p, t0, 400);
        p.push(t0 + Duration::from_millis(400), Class::Audio, &[0u8; 100], 0);
        let (class, _, _) = p.pop(t0 + Duration::from_millis(405)).expect("audio leaves at once");
        assert_eq!(class, Class::Audio);
    }

    #[test]
    fn a_media_probe_without_video_left_ends_and_says_how_much_it_carried() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 8_000_000.0);
        p.push(t0, Class::Video, &[0u8; 1200], 0);
        p.start_media_probe(t0, 3, 16_000_000.0, 30_000);
        let (_, d, probe) = p.pop(t0).unwrap();
        assert_eq!((d.len(), probe), (1200, 3));
        assert!(p.wants_media(), "it asks for the next frame");
        p.end_media_probe();
        assert!(!p.probing());
        assert_eq!(p.finished_probe(), Some((3, 1)));
        assert_eq!(p.finished_probe(), None);
    }

    #[test]
    fn a_burst_leaves_at_the_rate_after_the_bucket() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 2_400_000.0 / PACE_FACTOR); // 300 KB/s; bucket 12 KB
        for _ in 0..100 {
            p.push(t0, Class::Video, &[0u8; 1200], 0);
        }
        let sent = run(&mut p, t0, 2000);
        assert_eq!(sent.len(), 100);
        let first_ms = sent.iter().filter(|s| s.0 == 0).count();
        assert_eq!(first_ms, 10, "the bucket's 12 KB at once");
        let last = sent.last().unwrap().0;
        // 120 KB − 12 KB at 300 KB/s ≈ 360 ms.
        assert!((350..=380).contains(&last), "{last} ms");
        // Never more than the rate over any 100 ms after the bucket.
        for w in (0..last).step_by(10) {
            let bytes: usize = sent.iter().filter(|s| s.0 > w && s.0 <= w + 100).map(|s| s.2).sum();
            assert!(bytes <= 30_000 + 1200 * 3, "{bytes} bytes in 100 ms at {w}");
        }
    }

    #[test]
    fn audio_and_retransmissions_go_before_queued_video_and_probes_keep_their_own_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 1_000_000.0);
        for _ in 0..20 {
            p.push(t0, Class::Video, &[2u8; 1200], 0);
        }
        p.push(t0, Class::Retransmission, &[1u8; 1200], 0);
        p.push(t0, Class::Audio, &[0u8; 100], 0);
        let sent = run(&mut p, t0, 1000);
        assert_eq!(sent[0].1, Class::Audio);
        assert_eq!(sent[1].1, Class::Retransmission);
        let mut p = Pacer::new(t0, 1_000_000.0);
        p.set_probe_rate(8_000_000.0); // 1 MB/s
        for _ in 0..40 {
            p.push(t0, Class::Probe, &[0u8; 250], 7);
        }
        let sent = run(&mut p, t0, 1000);
        assert_eq!(sent.len(), 40);
        let last = sent.last().unwrap().0;
        assert!((8..=12).contains(&last), "10 KB at 1 MB/s ≈ 10 ms, took {last}");
    }

    #[test]
    fn stale_video_is_dropped_whole() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, 100_000.0 / PACE_FACTOR);
        for _ in 0..50 {
            p.push(t0, Class::Video, &[0u8; 1200], 0);
        }
        p.push(t0, Class::Audio, &[0u8; 100], 0);
        assert_eq!(p.drop_stale_video(t0 + Duration::from_millis(500)), 0);
        let n = p.drop_stale_video(t0 + MAX_QUEUE_DELAY + Duration::from_millis(1));
        assert_eq!(n, 50);
        assert_eq!(p.queued_bytes(), 100, "audio stays");
        assert_eq!((p.dropped, p.drops), (50, 1));
    }
}
