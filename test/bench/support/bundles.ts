/**
 * Lambda bundles for benchmarks: builds one route's handler file with esbuild the way a Node 22
 * function would ship it (platform node, target node22, CommonJS, minified, no source map, every
 * dependency bundled), measures its raw and gzip size, times `require` of the bundle in fresh
 * processes, and says from esbuild's metafile which packages make it large.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import type { ValidatorBundling } from '../../../lib/constructs/input-validators';

export const REPO_ROOT = path.resolve(__dirname, '../../..');

export interface Bundle {
  readonly file: string;
  readonly rawBytes: number;
  /** zlib gzip at its default level (6). */
  readonly gzipBytes: number;
  readonly metafile: Metafile;
}

export interface BundleOptions {
  /** Packages left out of the bundle (e.g. `@aws-sdk/*`, which the Lambda runtime provides). */
  readonly external?: readonly string[];
  /** The route's build-time input validators, as the CDK bundling uses them. */
  readonly validators?: ValidatorBundling;
}

/** Bundles `functions/<handler>.ts` into `outfile`. */
export async function bundleHandler(handler: string, outfile: string, options: BundleOptions = {}): Promise<Bundle> {
  const result = await build({
    entryPoints: [path.join(REPO_ROOT, 'functions', `${handler}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    metafile: true,
    external: [...(options.external ?? [])],
    define: options.validators?.define,
    alias: options.validators?.alias,
    logLevel: 'silent',
  });
  const bytes = await readFile(outfile);
  return { file: outfile, rawBytes: (await stat(outfile)).size, gzipBytes: gzipSync(bytes).length, metafile: result.metafile };
}

/** The npm package an input path belongs to (`@scope/name` or `name`), or `(project)` for our own code. */
export function packageOf(input: string): string {
  const marker = 'node_modules/';
  const at = input.lastIndexOf(marker);
  if (at === -1) return '(project)';
  const parts = input.slice(at + marker.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Bytes each package contributes to the output, largest first. */
export function contributions(metafile: Metafile): { readonly name: string; readonly bytes: number }[] {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageOf(input);
      totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** Why a package is in the bundle: the chain of imports from the entry point to its first file. */
export function importChain(metafile: Metafile, pkg: string): string[] {
  const importers = new Map<string, string>();
  for (const [file, input] of Object.entries(metafile.inputs)) {
    for (const imported of input.imports) {
      if (!importers.has(imported.path)) importers.set(imported.path, file);
    }
  }
  const first = Object.keys(metafile.inputs).find((file) => packageOf(file) === pkg);
  if (!first) return [];
  const chain = [first];
  const seen = new Set(chain);
  let current = first;
  while (importers.has(current)) {
    current = importers.get(current)!;
    if (seen.has(current)) break;
    seen.add(current);
    chain.unshift(current);
  }
  // Show where our code hands over to a package, not every file inside the package.
  return chain.filter((file, i) => i === 0 || packageOf(file) !== packageOf(chain[i - 1]!) || packageOf(file) === '(project)');
}

/** How long `require(file)` takes in a fresh `node` process, in milliseconds (one run). */
export function timeRequire(file: string, env: NodeJS.ProcessEnv): Promise<number> {
  const script =
    'const t=process.hrtime.bigint();require(process.argv[1]);' +
    'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = Number(out);
      if (code !== 0 || !Number.isFinite(ms)) reject(new Error(`require(${path.basename(file)}) failed (${code}): ${err.trim().slice(0, 500)}`));
      else resolve(ms);
    });
  });
}
