/**
 * A start that fails part-way (the Jest global setup, `npm start`'s local stack) stops what it already
 * started, and a Postgres that does not start says why. The emulator's pid is recorded by a `moto_server`
 * placed first on PATH that writes its pid and then becomes the real one (exec keeps the pid).
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack } from '../../bin/stack/local-stack';
import { freePort } from '../../bin/stack/ports';
import { startEmbeddedPostgres } from '../../bin/stack/postgres';
import globalSetup from '../setup/global-setup';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

let scratch: string;
const savedEnv = { ...process.env };

beforeEach(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tsb-startfail-'));
  await chmod(scratch, 0o755); // the postgres system user (as root) must traverse it
  const realMoto = execFileSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).trim();
  const shim = path.join(scratch, 'bin');
  await mkdir(shim);
  await writeFile(path.join(shim, 'moto_server'), `#!/bin/sh\necho $$ >> "${scratch}/moto.pids"\nexec "${realMoto}" "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${shim}${path.delimiter}${process.env.PATH ?? ''}`;
  delete process.env.AWS_ENDPOINT_URL;
});

afterEach(async () => {
  process.env = { ...savedEnv };
  await rm(scratch, { recursive: true, force: true });
});

async function motoPids(): Promise<number[]> {
  const text = await readFile(path.join(scratch, 'moto.pids'), 'utf8');
  return text.trim().split('\n').map(Number);
}

describe('a start that fails part-way', () => {
  it('global setup: a database that cannot be reached fails the setup and stops the emulator it started', async () => {
    // Prepare: nothing listens on this port
    process.env.DATABASE_URL = `postgres://postgres:x@127.0.0.1:${await freePort()}/app`;

    // Act
    const setup = globalSetup();

    // Assess
    await expect(setup).rejects.toThrow(/ECONNREFUSED|connect/);
    const pids = await motoPids();
    expect(pids).toHaveLength(1);
    expect(alive(pids[0]!)).toBe(false);
  });

  it('local stack: a Postgres port already taken fails with the reason from its log and stops the emulator', async () => {
    // Prepare: the test tier's own Postgres holds this port
    const takenPort = Number(new URL(process.env.TEST_ADMIN_DATABASE_URL!).port);

    // Act
    const start = startLocalStack({ database: { dir: path.join(scratch, 'pg'), port: takenPort, persistent: false } });

    // Assess
    await expect(start).rejects.toThrow(`Postgres did not start on port ${takenPort}: could not bind IPv4 address "127.0.0.1": Address already in use`);
    const pids = await motoPids();
    expect(pids).toHaveLength(1);
    expect(alive(pids[0]!)).toBe(false);
  });
});

describe('embedded Postgres', () => {
  it('a second start on a data directory in use fails with the lock-file reason from the server log', async () => {
    // Prepare
    const dir = path.join(scratch, 'held');
    const first = await startEmbeddedPostgres({ dir, port: await freePort(), persistent: false });

    try {
      // Act
      const second = startEmbeddedPostgres({ dir, port: await freePort(), persistent: false });

      // Assess
      await expect(second).rejects.toThrow(/Postgres did not start on port \d+: lock file "postmaster\.pid" already exists \(Is another postmaster \(PID \d+\) running in data directory/);
    } finally {
      await first.stop();
    }
  });
});
