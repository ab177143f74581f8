/**
 * The functions' clock (functions/core/clock.ts), which stands in for `performance` in the bundles: it
 * never goes back, its milliseconds are `performance.now()`'s, and its epoch seconds are the wall clock's.
 */
import { performance } from 'node:perf_hooks';
import { epochSeconds, monotonicMs } from '../../../functions/core/clock';
import { performance as aliased } from '../../../functions/core/perf-hooks';

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('clock', () => {
  it('is monotonic, with sub-millisecond steps', () => {
    let previous = monotonicMs();
    let backwards = 0;
    let fine = 0;
    for (let i = 0; i < 10_000; i++) {
      const now = monotonicMs();
      if (now < previous) backwards++;
      if (now > previous && now - previous < 1) fine++;
      previous = now;
    }
    expect(backwards).toBe(0);
    expect(fine).toBeGreaterThan(0);
  });

  it('counts milliseconds as performance.now() does', () => {
    const ours = monotonicMs();
    const theirs = performance.now();
    busyWait(50);
    const elapsedOurs = monotonicMs() - ours;
    const elapsedTheirs = performance.now() - theirs;
    expect(elapsedOurs).toBeGreaterThanOrEqual(50);
    expect(Math.abs(elapsedOurs - elapsedTheirs)).toBeLessThan(2);
  });

  it('gives the wall clock in epoch seconds with sub-millisecond precision', () => {
    const before = Date.now() / 1000;
    const seconds = epochSeconds();
    const after = Date.now() / 1000;
    expect(seconds).toBeGreaterThanOrEqual(before - 0.005);
    expect(seconds).toBeLessThanOrEqual(after + 0.005);
    expect(Math.abs(seconds - (performance.timeOrigin + performance.now()) / 1000)).toBeLessThan(0.005);
    const values = new Set(Array.from({ length: 1000 }, () => epochSeconds()));
    expect([...values].some((value) => Math.round(value * 1000) !== value * 1000)).toBe(true);
  });

  it("serves postgres.js's perf_hooks.performance.now() from the same clock", () => {
    const a = aliased.now();
    const b = monotonicMs();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(b - a).toBeLessThan(5);
  });
});
