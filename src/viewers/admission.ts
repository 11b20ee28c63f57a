/**
 * Who gets one of the master's seats. Anyone with viewer credentials for the channel can send
 * offers, under as many client ids as they like, so a seat is only held by a viewer that proved
 * it is there (an ICE check with its session's credentials, seen as the nomination of a pair).
 * Before that an offer is *pending*: it has an admission window (5 s by default) to prove
 * itself, and at most `maxPending` offers wait at once — the oldest waiting offer that had its
 * chance (answered `answerGraceMs` ago) gives way to a new one, so a flood of offers that never
 * connect keeps turning over instead of locking honest viewers out, and an offer whose answer is
 * still being made is never pushed out by newer ones (they are refused until one had its chance). Each client id also has a budget of offers and candidates (token
 * buckets), and a client id that offers again replaces only its own entry.
 *
 * Pure bookkeeping: the caller passes the time (no timers here) and acts on the decisions.
 *
 * @module
 */

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Viewers served at once (the service allows 10). */
  seats: number;
  /** How long an offer may wait for its viewer's first ICE check, ms (default 5000). */
  admissionWindowMs?: number;
  /** Offers waiting for proof at once (default 20, or twice the seats if more). */
  maxPending?: number;
  /**
   * How long after its answer went out a waiting offer is safe from giving way to a newer one,
   * ms (default 500: a viewer on the internet needs a few round trips for its first check).
   */
  answerGraceMs?: number;
  /** Offers one client id may send in a burst (default 3) … */
  offerBurst?: number;
  /** … then one per this many ms (default 2000). */
  offerIntervalMs?: number;
  /** Candidates one client id may send in a burst (default 100) … */
  candidateBurst?: number;
  /** … then this many a second (default 20). */
  candidatesPerSecond?: number;
  /** Client ids whose budgets are remembered; the least recent are forgotten (default 1000). */
  maxTrackedClients?: number;
}

/** What to do with an offer. */
export type OfferDecision =
  | {
    /** Answer it: the client waits for proof until `deadline` (caller's clock, ms). */
    kind: "admit";
    /** Identifies this admission; stale tickets are ignored by the other calls. */
    ticket: number;
    deadline: number;
    /** A waiting client that gave way to this one: close its session. */
    displaced?: string;
  }
  | {
    /** Answer that every seat is taken, so the viewer can say so at once. */
    kind: "refuse";
    reason: string;
  }
  | {
    /** Over this client's offer budget: drop it without a reply. */
    kind: "drop";
    reason: string;
  };

interface Entry {
  ticket: number;
  seated: boolean;
  since: number;
  /** When its answer was sent (undefined while it is being made). */
  answeredAt?: number;
}

interface Budget {
  offers: number;
  candidates: number;
  at: number;
}

/**
 * Seats, the admission window and per-client budgets.
 *
 * @example
 * ```ts
 * import { Admission } from "./admission.ts";
 * const admission = new Admission({ seats: 1 });
 * const a = admission.offer("viewer-1", 0);
 * if (a.kind === "admit") admission.verified("viewer-1", a.ticket, 120); // true: seated
 * console.log(admission.offer("viewer-2", 200).kind); // "refuse": the seat is taken
 * ```
 */
export class Admission {
  /** Viewers served at once. */
  readonly seats: number;
  /** How long an offer may wait for its viewer's first ICE check, ms. */
  readonly admissionWindowMs: number;
  /** Offers waiting for proof at once. */
  readonly maxPending: number;
  readonly #offerBurst: number;
  readonly #offerIntervalMs: number;
  readonly #candidateBurst: number;
  readonly #candidatesPerMs: number;
  readonly #maxTracked: number;
  readonly #graceMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #budgets = new Map<string, Budget>();
  #ticket = 0;

  /** Validate the limits. */
  constructor(options: AdmissionOptions) {
    const positive = (name: string, v: number, integer = false) => {
      if (!(Number.isFinite(v) && v > 0) || (integer && !Number.isInteger(v))) {
        throw new RangeError(
          `Admission: ${name} must be a positive ${integer ? "integer" : "number"}, got ${v}`,
        );
      }
      return v;
    };
    this.seats = positive("seats", options.seats, true);
    this.admissionWindowMs = positive("admissionWindowMs", options.admissionWindowMs ?? 5000);
    this.maxPending = positive(
      "maxPending",
      options.maxPending ?? Math.max(20, 2 * this.seats),
      true,
    );
    this.#offerBurst = positive("offerBurst", options.offerBurst ?? 3, true);
    this.#offerIntervalMs = positive("offerIntervalMs", options.offerIntervalMs ?? 2000);
    this.#candidateBurst = positive("candidateBurst", options.candidateBurst ?? 100, true);
    this.#candidatesPerMs = positive("candidatesPerSecond", options.candidatesPerSecond ?? 20) /
      1000;
    this.#maxTracked = positive("maxTrackedClients", options.maxTrackedClients ?? 1000, true);
    this.#graceMs = options.answerGraceMs ?? 500;
  }

  /** Viewers holding a seat. */
  get seated(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.seated) n++;
    return n;
  }

  /** Offers waiting for their viewer's proof. */
  get pending(): number {
    return this.#entries.size - this.seated;
  }

  /** Decide on an offer from `clientId` at `now` (ms). */
  offer(clientId: string, now: number): OfferDecision {
    const budget = this.#budget(clientId, now);
    if (budget.offers < 1) {
      return { kind: "drop", reason: `more than ${this.#offerBurst} offers in a burst` };
    }
    budget.offers -= 1;
    const own = this.#entries.get(clientId);
    // A client offering again gives up what it held, and only that.
    if (own) this.#entries.delete(clientId);
    if (!own?.seated && this.seated >= this.seats) {
      return { kind: "refuse", reason: `the master already serves ${this.seats} viewers` };
    }
    let displaced: string | undefined;
    if (!own?.seated && this.pending >= this.maxPending) {
      // The oldest waiting offer that had its chance (answered at least `answerGraceMs` ago)
      // gives way; one whose answer is still being made, or just went out, never does — when
      // none had its chance yet, the new offer waits its turn (refused, so its viewer can retry).
      for (const [id, e] of this.#entries) {
        // Map order is admission order: the first match is the oldest.
        if (!e.seated && e.answeredAt !== undefined && now - e.answeredAt >= this.#graceMs) {
          displaced = id;
          break;
        }
      }
      if (displaced === undefined) {
        return {
          kind: "refuse",
          reason: `${this.maxPending} offers are already waiting for their viewers`,
        };
      }
      this.#entries.delete(displaced);
    }
    const ticket = ++this.#ticket;
    this.#entries.set(clientId, { ticket, seated: false, since: now });
    return { kind: "admit", ticket, deadline: now + this.admissionWindowMs, displaced };
  }

  /** The answer to `ticket`'s offer went out at `now`: from `answerGraceMs` on it may give way. */
  answered(clientId: string, ticket: number, now: number): void {
    const e = this.#entries.get(clientId);
    if (e && e.ticket === ticket) e.answeredAt ??= now;
  }

  /**
   * The viewer of `ticket` proved it is there. True: it holds a seat now (or already did).
   * False: the ticket is stale, its window passed, or every seat was taken meanwhile — close it.
   */
  verified(clientId: string, ticket: number, now: number): boolean {
    const e = this.#entries.get(clientId);
    if (!e || e.ticket !== ticket) return false;
    if (e.seated) return true;
    if (now > e.since + this.admissionWindowMs || this.seated >= this.seats) {
      this.#entries.delete(clientId);
      return false;
    }
    e.seated = true;
    return true;
  }

  /**
   * Whether `ticket` is still waiting for proof past its window at `now`: if so it is removed
   * and the caller closes its session.
   */
  expire(clientId: string, ticket: number, now: number): boolean {
    const e = this.#entries.get(clientId);
    if (!e || e.ticket !== ticket || e.seated || now < e.since + this.admissionWindowMs) {
      return false;
    }
    this.#entries.delete(clientId);
    return true;
  }

  /** The session of `ticket` ended: its seat or place in the queue is free. */
  leave(clientId: string, ticket: number): void {
    if (this.#entries.get(clientId)?.ticket === ticket) this.#entries.delete(clientId);
  }

  /** Whether a candidate from `clientId` fits its budget (it is dropped otherwise). */
  candidate(clientId: string, now: number): boolean {
    const budget = this.#budget(clientId, now);
    if (budget.candidates < 1) return false;
    budget.candidates -= 1;
    return true;
  }

  /** The client's budget, refilled for the time since it was last used. */
  #budget(clientId: string, now: number): Budget {
    let b = this.#budgets.get(clientId);
    if (b) {
      this.#budgets.delete(clientId); // re-inserted below: the map stays in order of use
      const dt = Math.max(0, now - b.at);
      b.offers = Math.min(this.#offerBurst, b.offers + dt / this.#offerIntervalMs);
      b.candidates = Math.min(this.#candidateBurst, b.candidates + dt * this.#candidatesPerMs);
      b.at = now;
    } else {
      b = { offers: this.#offerBurst, candidates: this.#candidateBurst, at: now };
      while (this.#budgets.size >= this.#maxTracked) {
        this.#budgets.delete(this.#budgets.keys().next().value!);
      }
    }
    this.#budgets.set(clientId, b);
    return b;
  }
}
