/**
 * The process's copy of a rate-limited tenant's bucket (functions/core/rate-admission.ts), on a clock the
 * test moves: it refuses exactly while the database's bucket, as reported at its last refusal and
 * refilled at the plan's rate, holds less than one token, counts its own requests in flight, and gives
 * back the token of a request that was not counted.
 */
import { RateAdmission, type Admitted } from '../../../functions/core/rate-admission';

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function admitted(outcome: ReturnType<RateAdmission['admit']>): Admitted {
  if ('refused' in outcome) throw new Error(`refused at ${outcome.refused} rps`);
  return outcome;
}

describe('rate admission', () => {
  it('lets every request of a tenant the database never refused through, and keeps nothing of it afterwards', () => {
    const admission = new RateAdmission(clock().now);
    const requests = Array.from({ length: 50 }, () => admitted(admission.admit('acme')));
    expect(admission.size).toBe(1); // in flight
    for (const r of requests) r.done({ counted: true });
    expect(admission.size).toBe(0);
  });

  it('refuses after a rate refusal until the reported bucket has refilled to one token, then lets one through', () => {
    const c = clock();
    const admission = new RateAdmission(c.now);
    admitted(admission.admit('flood')).done({ counted: false, rate: { tokens: 0.25, rps: 10 } });

    // 0.75 tokens to go at 10 per second: 75 ms.
    expect(admission.admit('flood')).toEqual({ refused: 10 });
    c.advance(74);
    expect(admission.admit('flood')).toEqual({ refused: 10 });
    c.advance(1);
    const next = admitted(admission.admit('flood'));
    // That token is taken by the request in flight: the next one waits for another 100 ms.
    expect(admission.admit('flood')).toEqual({ refused: 10 });
    next.done({ counted: true });
    c.advance(99);
    expect(admission.admit('flood')).toEqual({ refused: 10 });
    c.advance(1);
    expect('done' in admission.admit('flood')).toBe(true);
  });

  it('gives a token back when a request it let through is not counted (refused for another reason, failed, rolled back)', () => {
    const c = clock();
    const admission = new RateAdmission(c.now);
    admitted(admission.admit('t')).done({ counted: false, rate: { tokens: 0, rps: 2 } });
    c.advance(500); // one token of two
    const first = admitted(admission.admit('t'));
    expect(admission.admit('t')).toEqual({ refused: 2 });
    first.done({ counted: false }); // e.g. a 403 from the guard: the meter never took the token
    expect('done' in admission.admit('t')).toBe(true);
  });

  it('counts what the process still has in flight against the level the database reports', () => {
    const c = clock();
    const admission = new RateAdmission(c.now);
    const inFlight = [admitted(admission.admit('t')), admitted(admission.admit('t')), admitted(admission.admit('t'))];
    const refused = admitted(admission.admit('t'));
    // The database saw 2.5 tokens but all slots taken; the three in flight will take three when they commit.
    refused.done({ counted: false, rate: { tokens: 2.5, rps: 5 } });
    expect(admission.admit('t')).toEqual({ refused: 5 }); // 2.5 - 3 = -0.5
    c.advance(299); // -0.5 + 1.495
    expect(admission.admit('t')).toEqual({ refused: 5 });
    c.advance(1); // -0.5 + 1.5 = 1
    expect('done' in admission.admit('t')).toBe(true);
    for (const r of inFlight) r.done({ counted: true });
  });

  it('forgets a tenant once its bucket copy is full again and nothing is in flight, and keeps tenants apart', () => {
    const c = clock();
    const admission = new RateAdmission(c.now);
    admitted(admission.admit('flood')).done({ counted: false, rate: { tokens: 0, rps: 2 } });
    expect(admission.admit('flood')).toEqual({ refused: 2 });
    expect('done' in admission.admit('quiet')).toBe(true); // another tenant is never refused here
    c.advance(1_000); // full again: 2 tokens
    const r = admitted(admission.admit('flood'));
    r.done({ counted: true });
    expect(admission.size).toBe(1); // quiet's request is still in flight; flood is forgotten
  });

  it('ignores a report twice and a level that is not a number', () => {
    const c = clock();
    const admission = new RateAdmission(c.now);
    const r = admitted(admission.admit('t'));
    r.done({ counted: false, rate: { tokens: Number.NaN, rps: 10 } });
    r.done({ counted: false, rate: { tokens: 0, rps: 10 } });
    expect('done' in admission.admit('t')).toBe(true);
  });
});
