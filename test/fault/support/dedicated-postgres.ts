/**
 * A Postgres cluster of one fault test's own, on a free port, migrated like the shared one: freezing,
 * stopping or restarting it touches no other test. Started with the same code as the test setup and
 * `npm start` (bin/stack/postgres.ts); its data lives in a temporary directory removed by `remove()`.
 */
import { readFile, readdir, chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../bin/stack/ports';
import { startEmbeddedPostgres, type PostgresHandle } from '../../../bin/stack/postgres';

export interface DedicatedPostgres {
  readonly port: number;
  readonly adminUrl: string;
  readonly runtimeUrl: string;
  /** SIGSTOP the postmaster and every backend: the sockets stay open, nothing answers. */
  freeze(): Promise<void>;
  /** SIGSTOP these backends only: the server accepts new connections, these never answer. */
  freezeBackends(pids: readonly number[]): void;
  /** SIGCONT what `freeze` or `freezeBackends` stopped. */
  thaw(): void;
  /** Fast shutdown; the data stays for `start`. */
  stop(): Promise<void>;
  /** Starts the stopped cluster again on the same port with the same data. */
  start(): Promise<void>;
  /** Thaws, stops and deletes everything. */
  remove(): Promise<void>;
}

/** The postmaster's pid, from the first line of `postmaster.pid`. */
async function postmasterPid(dataDir: string): Promise<number> {
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}`);
  return pid;
}

/** The direct children of `parent` (Postgres backends and auxiliary processes), from /proc. */
async function childrenOf(parent: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may contain spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // exited meanwhile
  }
}

/** Starts a fresh cluster for one test file. */
export async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tsb-fault-'));
  await chmod(root, 0o755); // the postgres system user must traverse it
  const dir = path.join(root, 'pg');
  const port = await freePort();
  let handle: PostgresHandle | undefined = await startEmbeddedPostgres({ dir, port, persistent: true }).catch(async (error: unknown) => {
    await rm(root, { recursive: true, force: true });
    throw error;
  });
  const first = handle;
  let frozen: number[] = [];

  const thaw = () => {
    for (const pid of frozen) signal(pid, 'SIGCONT');
    frozen = [];
  };
  return {
    port,
    adminUrl: first.adminUrl,
    runtimeUrl: first.roleUrl('app_runtime'),
    async freeze() {
      const postmaster = await postmasterPid(first.dataDir);
      signal(postmaster, 'SIGSTOP');
      frozen.push(postmaster);
      // The postmaster can fork no more once stopped; a backend forked just before is caught here.
      for (const pid of await childrenOf(postmaster)) {
        signal(pid, 'SIGSTOP');
        frozen.push(pid);
      }
    },
    freezeBackends(pids) {
      for (const pid of pids) {
        signal(pid, 'SIGSTOP');
        frozen.push(pid);
      }
    },
    thaw,
    async stop() {
      thaw();
      await handle?.stop();
      handle = undefined;
    },
    async start() {
      handle = await startEmbeddedPostgres({ dir, port, persistent: true });
    },
    async remove() {
      thaw();
      await handle?.stop();
      handle = undefined;
      await rm(root, { recursive: true, force: true });
      await rm(first.dataDir, { recursive: true, force: true });
    },
  };
}
