/**
 * The bundles' stand-in for `semver` (functions/core/semver-gte.ts) answers `gte` as `semver` itself
 * does, for the versions the X-Ray SDK compares (Node's, the AWS SDK v2's) and the pre-release rules.
 */
import { gte } from '../../../functions/core/semver-gte';

// The real package, a dependency of the X-Ray SDK, is the oracle.
const semver = require('semver') as { gte(a: string, b: string): boolean };

const versions = [
  '0.0.0', '0.9.9', '1.0.0', '1.0.1', '1.1.0', '2.0.0', '8.0.0', '8.0.1', '10.24.1', '20.19.43', '22.11.0', 'v22.3.0',
  '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1',
  '2.1110.0', '2.1001.0+build.5',
];

describe('the semver stand-in of the Lambda bundles', () => {
  it('orders every pair of versions as semver.gte does', () => {
    const disagreements: string[] = [];
    for (const a of versions) {
      for (const b of versions) {
        if (gte(a, b) !== semver.gte(a, b)) disagreements.push(`${a} >= ${b}`);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('tells that the running Node is at least 8 (the check cls-hooked makes to choose async hooks)', () => {
    expect(gte(process.versions.node, '8.0.0')).toBe(true);
  });

  it('refuses what is not a version, as semver does', () => {
    expect(() => gte('not-a-version', '1.0.0')).toThrow(TypeError);
    expect(() => semver.gte('not-a-version', '1.0.0')).toThrow(TypeError);
  });
});
