/**
 * The part of `semver` that the X-Ray SDK uses, for the Lambda bundles: esbuild puts this module in
 * place of `semver` (see `lib/constructs/lambda-bundling.ts`); nothing imports it by name. The X-Ray SDK
 * (loaded where tracing is on) calls only `semver.gte`: cls-hooked to choose async hooks on Node ≥ 8,
 * and the AWS SDK v2 patcher, which these functions never use. The whole package is 28 KiB of every
 * bundle, which put the routes without an AWS client over their 250 KiB budget.
 */

const VERSION = /^\s*[v=]?\s*(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$/;

function parse(version: string): { core: [number, number, number]; pre: string[] } {
  const m = VERSION.exec(version);
  if (!m) throw new TypeError(`Invalid Version: ${version}`);
  return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split('.') : [] };
}

/** Precedence of two pre-release identifier lists (semver 2.0 §11): -1, 0 or 1. */
function comparePre(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return b.length - a.length === 0 ? 0 : a.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return Number(x) < Number(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Whether `version` is greater than or equal to `other`, as `semver.gte` decides it. */
export function gte(version: string, other: string): boolean {
  const a = parse(version);
  const b = parse(other);
  for (let i = 0; i < 3; i++) if (a.core[i] !== b.core[i]) return a.core[i]! > b.core[i]!;
  return comparePre(a.pre, b.pre) >= 0;
}
