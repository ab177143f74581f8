/** Metering periods: `'YYYY-MM'` (UTC calendar month) for monthly metrics, `'total'` for standing totals. */

/** Seconds until the period that `period` names ends (monthly metrics), from `now`; null for `'total'`. */
export function secondsUntilReset(period: string, now: Date): number | null {
  const match = /^(\d{4})-(\d{2})$/.exec(period);
  if (!match) return null;
  const end = Date.UTC(Number(match[1]), Number(match[2]), 1); // month index is 0-based: this is the next month
  return Math.max(0, Math.ceil((end - now.getTime()) / 1000));
}
