/**
 * `.local/stack.json`: what `npm start` tells `npm run token` (the emulator, the pool, the app client and
 * the seed users' generated passwords). Local-only: written at each start with mode 0600, removed at stop,
 * and `.local/` is git-ignored.
 */
import path from 'node:path';

export interface StackFile {
  readonly url: string;
  readonly pid: number;
  readonly endpoint: string;
  readonly region: string;
  readonly userPoolId: string;
  readonly clientId: string;
  readonly accounts: readonly { username: string; password: string; role: string; tenantId?: string }[];
  /** The password every user the stack creates gets (seed users and users created through the API). */
  readonly localPassword: string;
  /** The local database as its superuser: for owner-run commands (`npm run operators`). */
  readonly adminUrl?: string;
  /** The handlers' environment (runtime database URL, bucket, tenant-access role, emulator): `npm run storage:reconcile`. */
  readonly environment?: Record<string, string>;
}

/** The local stack's state directory (Postgres data, the stack file). */
export const LOCAL_DIR = path.join(__dirname, '..', '..', '.local');
export const STACK_FILE = path.join(LOCAL_DIR, 'stack.json');
