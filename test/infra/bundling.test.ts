/**
 * One real synth with bundling (dev): every function is bundled by the local esbuild, offline and
 * without Docker (CDK_DOCKER points at a binary that does not exist, so any attempt to use Docker
 * fails the synth). The other infra tests skip bundling to stay fast.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { routeList } from '../../functions/routes';
import { resourcesOf, ROOT, synthEnvironment, type SynthesizedEnvironment } from './support/synth';

const outdir = mkdtempSync(path.join(os.tmpdir(), 'tsb-bundle-'));
let dev: SynthesizedEnvironment;
const docker = process.env.CDK_DOCKER;

beforeAll(() => {
  process.env.CDK_DOCKER = path.join(outdir, 'no-docker-here');
  // CDK announces each asset on stderr ("Bundling asset …"); keep the test run's output to the tests'.
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).startsWith('Bundling asset ') ? true : (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest)) as typeof write;
  try {
    dev = synthEnvironment('dev', { bundle: true, outdir });
  } finally {
    process.stderr.write = write;
  }
}, 240_000);
afterAll(() => {
  if (docker === undefined) delete process.env.CDK_DOCKER;
  else process.env.CDK_DOCKER = docker;
  rmSync(outdir, { recursive: true, force: true });
});

/** The asset directory of a Lambda function resource. */
function assetDir(fn: Record<string, any>): string {
  const key = JSON.stringify(fn.Code.S3Key);
  const hash = /([a-f0-9]{64})\.zip/.exec(key)?.[1];
  if (!hash) throw new Error(`no asset hash in ${key}`);
  return path.join(outdir, `asset.${hash}`);
}

describe('bundling with the local esbuild', () => {
  it('bundles every route handler into a minified index.js with a source map', () => {
    const functions = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) => p.Environment?.Variables?.DB_HOST);
    expect(functions).toHaveLength(routeList.length);
    for (const [, fn] of functions) {
      const dir = assetDir(fn);
      expect(readdirSync(dir).sort()).toEqual(['index.js', 'index.js.map']);
      const code = readFileSync(path.join(dir, 'index.js'), 'utf8');
      // The SDK is bundled (pinned versions), not taken from the runtime; the only require left is the
      // SDK's own optional, try/catch-guarded CRT signer, which these functions never use.
      const unbundled = new Set(code.match(/require\("@aws-sdk\/[a-z0-9-]+"\)/g) ?? []);
      unbundled.delete('require("@aws-sdk/signature-v4-crt")');
      expect([...unbundled]).toEqual([]);
      expect(code).toContain('sourceMappingURL=index.js.map');
    }
  });

  it('bundles the migration function with the SQL files and the runtime SDK for Secrets Manager only', async () => {
    const [[, fn]] = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) =>
      String(p.Description).startsWith('Deploy time: applies db/migrations'),
    ) as [[string, Record<string, any>]];
    const dir = assetDir(fn);
    const sql = readdirSync(path.join(ROOT, 'db', 'migrations')).filter((f) => f.endsWith('.sql')).sort();
    expect(readdirSync(path.join(dir, 'migrations')).sort()).toEqual(sql);
    const code = readFileSync(path.join(dir, 'index.js'), 'utf8');
    expect(code.match(/require\("@aws-sdk\/[a-z-]+"\)/g)).toEqual(['require("@aws-sdk/client-secrets-manager")']);
    // The bundle loads, and a Delete (stack removal) never touches the database: forward-only.
    const bundle = require(path.join(dir, 'index.js')) as { handler: (e: unknown) => Promise<unknown> };
    await expect(
      bundle.handler({ RequestType: 'Delete', PhysicalResourceId: 'migrations-app', ResourceProperties: {} }),
    ).resolves.toEqual({ PhysicalResourceId: 'migrations-app' });
  });

  it('never needed Docker', () => {
    expect(existsSync(process.env.CDK_DOCKER!)).toBe(false);
  });
});
