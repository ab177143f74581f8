/**
 * The functions' clocks, without `node:perf_hooks` (whose load, or the first touch of the global
 * `performance`, costs about a millisecond of every cold start):
 *
 * - {@link monotonicMs}: milliseconds (fractional) on a monotonic clock from an arbitrary origin, for
 *   durations; what `performance.now()` gave, from `process.hrtime.bigint()`.
 * - {@link epochSeconds}: the wall clock in seconds with sub-millisecond precision, for X-Ray's
 *   `start_time`/`end_time`: `Date.now()` when this module loaded plus the monotonic time since, as
 *   `performance.timeOrigin + performance.now()` is built.
 *
 * The bundles alias `perf_hooks` to functions/core/perf-hooks.ts, which serves postgres.js its
 * `performance.now()` from here too (lib/constructs/lambda-bundling.ts).
 */

const origin = process.hrtime.bigint();
const wallAtOrigin = Date.now();

/** Milliseconds since this module loaded, on a monotonic clock, with sub-millisecond precision. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() - origin) / 1e6;
}

/** Epoch seconds with sub-millisecond precision. */
export function epochSeconds(): number {
  return (wallAtOrigin + monotonicMs()) / 1000;
}
