/** Why Postgres did not start, read from its output, and which directories its user can traverse. */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { failureReason, unreachableDirectory } from '../../../../bin/stack/postgres-cluster';

describe('failureReason', () => {
  it('names the lock file of another postmaster on the same data directory, with its hint', () => {
    // Prepare: what postgres 17 prints then
    const output = [
      '2026-12-01 10:00:00.000 UTC [4242] FATAL:  lock file "postmaster.pid" already exists',
      '2026-12-01 10:00:00.000 UTC [4242] HINT:  Is another postmaster (PID 4100) running in data directory "/tmp/pg/data"?',
    ];

    // Act
    const reason = failureReason(output);

    // Assess
    expect(reason).toBe('lock file "postmaster.pid" already exists (Is another postmaster (PID 4100) running in data directory "/tmp/pg/data"?)');
  });

  it('names the busy port before the fatal error it causes', () => {
    // Prepare
    const output = [
      'LOG:  starting PostgreSQL 17.10 on x86_64-pc-linux-gnu',
      'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use',
      'HINT:  Is another postmaster already running on port 5432? If not, wait a few seconds and retry.',
      'WARNING:  could not create listen socket for "127.0.0.1"',
      'FATAL:  could not create any TCP/IP sockets',
      'LOG:  database system is shut down',
    ];

    // Act
    const reason = failureReason(output);

    // Assess
    expect(reason).toBe(
      'could not bind IPv4 address "127.0.0.1": Address already in use; could not create any TCP/IP sockets (Is another postmaster already running on port 5432? If not, wait a few seconds and retry.)',
    );
  });

  it("names initdb's error", () => {
    expect(failureReason(['initdb: error: directory "/x/data" exists but is not empty'])).toBe('directory "/x/data" exists but is not empty');
  });

  it('gives no reason when the output has none', () => {
    expect(failureReason(['LOG:  starting PostgreSQL 17.10', 'LOG:  listening on IPv4 address "127.0.0.1", port 5432'])).toBeUndefined();
  });
});

describe('unreachableDirectory', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'tsb-reach-'));
  });
  afterEach(async () => {
    await chmod(root, 0o700);
    await rm(root, { recursive: true, force: true });
  });

  it('names the private (0700) directory that another user cannot traverse on the way to a target', async () => {
    // Prepare: root/private (0700) / node_modules / bin, owned by this process's user
    const target = path.join(root, 'private', 'node_modules', 'bin');
    await mkdir(target, { recursive: true });
    await chmod(root, 0o755);
    await chmod(path.join(root, 'private'), 0o700);
    const other = { uid: 54_321, gid: 54_321, groups: [54_321] };

    // Act
    const blocked = await unreachableDirectory(target, other);

    // Assess
    expect(blocked).toBe(path.join(root, 'private'));
  });

  it('finds nothing in the way once every directory is traversable, nor for this process itself', async () => {
    // Prepare
    const target = path.join(root, 'open', 'data');
    await mkdir(target, { recursive: true });
    await chmod(root, 0o755);
    await chmod(path.join(root, 'open'), 0o711);

    // Act + Assess
    expect(await unreachableDirectory(target, { uid: 54_321, gid: 54_321, groups: [54_321] })).toBeUndefined();
    await chmod(root, 0o700);
    expect(await unreachableDirectory(target, {})).toBeUndefined();
  });
});
