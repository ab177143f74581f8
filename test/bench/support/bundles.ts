/**
 * Lambda bundles for benchmarks: builds one route's handler file with esbuild the way a Node 22
 * function would ship it (platform node, target node22, CommonJS, minified, no source map, every
 * dependency bundled, the deployed bundles' main fields and aliases from lib/constructs/lambda-bundling.ts), measures its raw and gzip size, times `require` of the bundle in fresh
 * processes, and says from esbuild's metafile which packages make it large.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import type { ValidatorBundling } from '../../../lib/constructs/input-validators';
import { LAMBDA_ALIASES, LAMBDA_MAIN_FIELDS } from '../../../lib/constructs/lambda-bundling';
import { runNodeScript } from '../../support/node-script';

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
  /** A linked `.map` beside the bundle without the sources' content, as the deployed functions have. */
  readonly sourceMap?: boolean;
  /** The route's build-time input validators, as the CDK bundling uses them. */
  readonly validators?: ValidatorBundling;
}

/** Bundles `functions/<handler>.ts` into `outfile`. */
export function bundleHandler(handler: string, outfile: string, options: BundleOptions = {}): Promise<Bundle> {
  return bundleEntry(path.join(REPO_ROOT, 'functions', `${handler}.ts`), outfile, options);
}

/** Bundles any entry file (e.g. a benchmark's probe) into `outfile` with the Lambda bundles' options. */
export async function bundleEntry(entry: string, outfile: string, options: BundleOptions = {}): Promise<Bundle> {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    sourcemap: options.sourceMap ? 'linked' : false,
    sourcesContent: false,
    metafile: true,
    external: [...(options.external ?? [])],
    mainFields: [...LAMBDA_MAIN_FIELDS],
    define: options.validators?.define,
    alias: { ...LAMBDA_ALIASES, ...options.validators?.alias },
    absWorkingDir: REPO_ROOT,
    // A probe written outside the repository (a temporary directory) still resolves the project's packages.
    nodePaths: [path.join(REPO_ROOT, 'node_modules')],
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
  return timeInFreshNode(file, env, 'require(process.argv[1])');
}

/**
 * How long `require(file)` and then the first call of its exported function (awaited) take in a fresh
 * `node`, in milliseconds (one run): e.g. a signer's first token, module loading included.
 */
export function timeFirstCall(file: string, env: NodeJS.ProcessEnv): Promise<number> {
  return timeInFreshNode(file, env, 'await require(process.argv[1])()');
}

async function timeInFreshNode(file: string, env: NodeJS.ProcessEnv, timed: string): Promise<number> {
  const script =
    '(async()=>{const t=process.hrtime.bigint();' + timed + ';' +
    'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));process.exit(0)})()';
  const { code, stdout, stderr } = await runNodeScript(script, [file], env);
  const ms = Number(stdout);
  if (code !== 0 || !Number.isFinite(ms)) throw new Error(`require(${path.basename(file)}) failed (${code}): ${stderr.trim().slice(0, 500)}`);
  return ms;
}

/**
 * The public built-in modules (`net`, `tls`, `https`…) that `require(file)` loads in a fresh `node`,
 * beyond what an empty script has loaded: what the bundle makes Node load at import.
 */
export function builtinsLoadedBy(file: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const script =
    'const before=new Set(process.moduleLoadList);require(process.argv[1]);' +
    'const pub=new Set(require("module").builtinModules);' +
    'const ids=process.moduleLoadList.filter((m)=>!before.has(m)&&m.startsWith("NativeModule ")).map((m)=>m.slice(13)).filter((id)=>pub.has(id));' +
    'process.stdout.write(JSON.stringify(ids));process.exit(0)';
  return outputOf(script, [file], env).then((out) => JSON.parse(out) as string[]);
}

/**
 * How long V8 takes to compile `file` as the CommonJS loader does (`vm.compileFunction` with the module
 * wrapper's parameters), in a fresh `node`, in milliseconds (one run); nothing is evaluated.
 */
export function timeCompile(file: string, env: NodeJS.ProcessEnv): Promise<number> {
  const script =
    'const src=require("fs").readFileSync(process.argv[1],"utf8");const vm=require("vm");const t=process.hrtime.bigint();' +
    'vm.compileFunction(src,["exports","require","module","__filename","__dirname"],{filename:process.argv[1]});' +
    'process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6));process.exit(0)';
  return outputOf(script, [file], env).then(Number);
}

async function outputOf(script: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { code, stdout, stderr } = await runNodeScript(script, args, env);
  if (code !== 0) throw new Error(`node exited ${code}: ${stderr.trim().slice(0, 500)}`);
  return stdout;
}
