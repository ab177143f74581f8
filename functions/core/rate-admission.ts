/**
 * Refuses a tenant's requests over its rate limit in the process, without a database connection, for
 * exactly as long as the database would refuse them too.
 *
 * The rate limit itself lives in the database (`app.meter_request()`, migrations 0006 and 0012): one
 * token bucket per tenant, shared by every process, that can never overshoot. Refusing there still costs
 * a connection for a transaction (BEGIN, context, guard, meter, ROLLBACK); a tenant flooding far over its
 * rate makes thousands of such transactions a second, and every other tenant's requests queue behind
 * them for the connections they share (BENCHMARKS.md, noisy neighbour). So when the database refuses a
 * request for the rate, it says how full the bucket was (`tokens`); this process keeps a copy of that
 * bucket, refilled at the plan's rate, and refuses the tenant's next requests itself while the copy
 * holds less than one token. Whatever it lets through still goes to the database, which stays the only
 * judge of what is accepted.
 *
 * The copy never refuses what the database would accept, within these bounds:
 * - other processes only take tokens, so the real bucket holds at most what the copy holds;
 * - the copy counts this process's own requests in flight as taking a token (they will when they
 *   commit) and gives the token back when one ends without being counted (refused, failed, rolled
 *   back);
 * - a plan whose rate was raised applies here once the copy has refilled (at most a second or so),
 *   or at the next refusal;
 * - only rate refusals are copied: a used-up monthly quota is still answered by the database (a plan
 *   upgrade lifts it at once).
 *
 * A tenant that was never refused for its rate has no bucket here and is never refused here. Keyed by
 * the tenant id the wrapper has checked against the token; one per process (in Lambda, per container).
 */
import { monotonicMs } from './clock';

/** The bucket as the database reported it at a rate refusal: its level and the plan's rate. */
export interface RateLevel {
  /** Tokens in the bucket as the database saw it (may be fractional; below 1 means "refused"). */
  readonly tokens: number;
  /** The plan's requests per second (the bucket's size and refill rate). */
  readonly rps: number;
}

/** A request let through to the database; tell how it ended, exactly once. */
export interface Admitted {
  /**
   * `counted`: the request committed with the meter's token taken. `rate`: the database refused it for
   * the rate (its error's level). Otherwise (any other error or refusal) the token goes back.
   */
  done(outcome: { readonly counted: boolean; readonly rate?: RateLevel }): void;
}

interface Bucket {
  tokens: number;
  at: number;
  readonly rps: number;
}

interface TenantState {
  inFlight: number;
  bucket?: Bucket;
}

/** Refills add up in floating point: a bucket within this of one token holds one. */
const EPSILON = 1e-9;

/** Tenants whose state is kept at most; beyond it, the idle ones seen longest ago are forgotten. */
const MAX_TENANTS = 10_000;

export class RateAdmission {
  private readonly tenants = new Map<string, TenantState>();

  constructor(private readonly now: () => number = monotonicMs) {}

  /**
   * Lets a request of `tenantId` through to the database, or answers the plan's rate when the tenant's
   * bucket copy holds less than one token (the caller refuses with 429 without any SQL).
   */
  admit(tenantId: string): Admitted | { readonly refused: number } {
    const state = this.tenants.get(tenantId) ?? this.add(tenantId);
    let bucket = state.bucket && this.refill(state.bucket);
    if (bucket && bucket.tokens >= bucket.rps && state.inFlight === 0) bucket = state.bucket = undefined; // full: no news
    if (bucket) {
      if (bucket.tokens < 1 - EPSILON) return { refused: bucket.rps };
      bucket.tokens -= 1;
    }
    state.inFlight++;
    let settled = false;
    return {
      done: ({ counted, rate }) => {
        if (settled) return;
        settled = true;
        state.inFlight--;
        if (rate && Number.isFinite(rate.tokens) && rate.rps > 0) {
          // The database's word, less what this process still has in flight (each will take a token).
          state.bucket = { tokens: Math.min(rate.tokens, rate.rps) - state.inFlight, at: this.now(), rps: rate.rps };
        } else if (!counted && state.bucket) {
          const b = this.refill(state.bucket);
          b.tokens = Math.min(b.rps, b.tokens + 1);
        }
        this.forgetIfIdle(tenantId, state);
      },
    };
  }

  /** Tenants with state (for tests and diagnostics). */
  get size(): number {
    return this.tenants.size;
  }

  private add(tenantId: string): TenantState {
    if (this.tenants.size >= MAX_TENANTS) {
      for (const [id, s] of this.tenants) {
        if (this.tenants.size < MAX_TENANTS) break;
        if (s.inFlight === 0) this.tenants.delete(id);
      }
    }
    const state: TenantState = { inFlight: 0 };
    this.tenants.set(tenantId, state);
    return state;
  }

  private refill(bucket: Bucket): Bucket {
    const now = this.now();
    bucket.tokens = Math.min(bucket.rps, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * bucket.rps);
    bucket.at = now;
    return bucket;
  }

  /** A full bucket says nothing the database would not: forget it once nothing is in flight. */
  private forgetIfIdle(tenantId: string, state: TenantState): void {
    if (state.inFlight > 0) return;
    if (state.bucket && this.refill(state.bucket).tokens < state.bucket.rps) return;
    if (this.tenants.get(tenantId) === state) this.tenants.delete(tenantId);
  }
}

/** The process's admission state, shared by every route the process serves. */
export const processAdmission = new RateAdmission();
