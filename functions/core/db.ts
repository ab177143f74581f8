/**
 * Postgres access for the runtime. One postgres.js client per container; every piece of tenant work runs
 * in `withTenant`: one transaction whose first statement sets the tenant, the user, the role and the
 * request id with `set_config(…, true)` (transaction-local, never session-level), pipelined with the
 * work that follows so that a read costs three round trips (BEGIN, context + work, COMMIT).
 */
import postgres from 'postgres';
import type { AwsConfig, DatabaseConfig } from './config';
import { config, ConfigError } from './config';
import { fromDatabaseError, isDroppedConnection } from './db-errors';
import { clientSockets, type ClientSockets } from './db-sockets';
import { DeadlineExceededError } from './deadline';
import { UnauthorizedError } from './errors';
import { currentRouteId, traced } from './observability';
import { rdsTokenSigner } from './rds-token';
import { assertTenantId, isRole, isUuid, type Role } from './tenant';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

/** Who is acting, for whom, in which request: set into every transaction. */
export interface RequestContext {
  readonly tenantId: string;
  readonly userId: string;
  readonly role: Role;
  readonly requestId: string;
}

/** A platform operation (superadmin) that is not scoped to one tenant. */
export type PlatformContext = Omit<RequestContext, 'tenantId' | 'role'> & { readonly role: 'superadmin' };

/** Creates a client from configuration. Extra postgres.js options (e.g. `debug`) win over config. */
export function createSql(
  database: DatabaseConfig,
  aws: Pick<AwsConfig, 'region' | 'credentials'>,
  overrides: postgres.Options<{}> = {},
): Sql {
  const base: postgres.Options<{}> = {
    max: database.poolMax,
    prepare: database.prepare,
    connect_timeout: database.connectTimeoutSeconds,
    idle_timeout: 60,
    max_lifetime: 60 * 14, // IAM tokens last 15 minutes; a connection never outlives its token.
    // postgres.js waits up to 20 s between attempts after repeated failures (3^n / 100 s): a restarted
    // server would then be used only long after it is ready, and each request meanwhile would wait out
    // its deadline. A refused connection is cheap to retry: 50 ms doubling, at most half a second apart.
    backoff: (retries) => Math.min(0.05 * 2 ** retries, 0.5),
    onnotice: () => undefined,
    ssl:
      database.ssl === 'disable'
        ? false
        : database.ssl === 'require'
          ? 'require'
          : { rejectUnauthorized: true, servername: database.host },
  };
  if (database.iamAuth) {
    // One fresh token per new connection: postgres.js calls the password function on connect.
    base.password = rdsTokenSigner({ hostname: database.host, port: database.port, username: database.user, region: aws.region }, aws.credentials);
  }
  // The client's sockets are opened here so that a transaction that outlives its deadline can discard them.
  const sockets = clientSockets();
  const options = { ...base, socket: sockets.open, ...overrides } as postgres.Options<{}>;
  const client = database.url
    ? postgres(database.url, options)
    : postgres({ ...options, host: database.host, port: database.port, database: database.database, username: database.user });
  clients.set(client, { lockTimeout: `${database.lockTimeoutMs}ms`, sockets });
  return client;
}

/** What `createSql` knows of the clients it made: their lock timeout and their sockets. */
const clients = new WeakMap<object, { readonly lockTimeout: string; readonly sockets: ClientSockets }>();

/** The lock timeout a client was created with (transaction-local, set with the context). */
function lockTimeoutOf(db: Sql): string {
  return clients.get(db)?.lockTimeout ?? '2000ms';
}

let containerSql: Sql | undefined;

/** The container's client, created on first use from `config()`. */
export function sql(): Sql {
  containerSql ??= createSql(config().database, config().aws);
  return containerSql;
}

/**
 * The configuration of the control-plane login (app_control): the runtime's settings with the control
 * URL or user. A configuration that names a runtime URL but no control URL is refused rather than
 * letting platform work log in as app_runtime.
 */
export function controlDatabase(database: DatabaseConfig): DatabaseConfig {
  if (database.url !== undefined && database.control.url === undefined) {
    throw new ConfigError('CONTROL_DATABASE_URL is required when DATABASE_URL is set');
  }
  return { ...database, url: database.control.url, user: database.control.user };
}

let containerControl: Sql | undefined;

/** The container's control-plane client (platform routes, jobs), created on first use from `config()`. */
export function controlSql(): Sql {
  containerControl ??= createSql(controlDatabase(config().database), config().aws);
  return containerControl;
}

/** Closes the container's clients that were opened (the local stack's shutdown). */
export async function endContainerClients(timeout = 2): Promise<void> {
  await Promise.all([containerSql?.end({ timeout }), containerControl?.end({ timeout })]);
  containerSql = undefined;
  containerControl = undefined;
}

/** What a transaction is given besides its work. */
export interface TransactionOptions {
  /**
   * The request's deadline (core/deadline.ts). When it passes while BEGIN still waits for the server
   * (for at least {@link STALL_MS}), the server is taken for frozen and the client's connections are
   * discarded; a transaction that only reaches BEGIN after it has passed does no work.
   */
  readonly signal?: AbortSignal;
}

/**
 * How long BEGIN must have waited when the deadline passes for the server to be taken for frozen: a
 * BEGIN asked for a moment before the deadline is no stall. BEGIN is the statement that meets a
 * connection stuck on a frozen server: a transaction that stalls after it holds its connection, and the
 * next request that needs that connection waits for BEGIN, so the stall is found one request later (in
 * Lambda, the next one), while statement_timeout and lock_timeout bound every statement server-side.
 */
const STALL_MS = 1000;

/**
 * Runs `fn` in one transaction whose first statement sets `settings` with `set_config(…, true)`
 * (transaction-local), pipelined with the work so that it costs no round trip of its own. Errors leave
 * through the one database error map. With a deadline (`options.signal`), a server that does not answer
 * BEGIN within it has the client's connections discarded (core/db-sockets.ts), so that no later request
 * queues behind them. Where tracing is on, the transaction is an X-Ray subsegment `postgres <route id>`
 * of the request's handler subsegment.
 */
export function inTransaction<T>(
  db: Sql,
  settings: Readonly<Record<string, string>>,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  // One subsegment for the transaction, its retries included, named by the route and never by its SQL.
  return traced(`postgres ${currentRouteId() ?? 'transaction'}`, () => transaction(db, settings, fn, options));
}

async function transaction<T>(
  db: Sql,
  settings: Readonly<Record<string, string>>,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  const names = Object.keys(settings);
  const values = Object.values(settings);
  const { signal } = options;
  for (let attempt = 1; ; attempt++) {
    let started = false;
    const requested = performance.now();
    const giveUp = () => !started && performance.now() - requested >= STALL_MS && clients.get(db)?.sockets.destroyAll();
    signal?.addEventListener('abort', giveUp, { once: true });
    try {
      return (await db.begin(async (tx) => {
        started = true;
        // Queued behind a stalled connection until after the caller had its 503: do nothing.
        if (signal?.aborted) throw new DeadlineExceededError();
        // Sent first, before any query of `fn`, on the same connection: nothing can run without the context.
        const context = tx`
          select set_config(name, value, true) from unnest(${names}::text[], ${values}::text[]) as s(name, value)`.execute();
        const [, result] = await Promise.all([context, fn(tx as Tx)]);
        return result;
      })) as T;
    } catch (error) {
      // BEGIN itself met a connection that had been dropped while idle (a failover, RDS Proxy's idle
      // timeout, a container thawed after minutes): nothing of the work was sent, so another attempt is
      // safe (see retriesOnDrop for how many). Once the work has started, a lost connection is the
      // caller's 503: a COMMIT whose answer was lost may have committed, and running the work again
      // could count twice.
      if (!started && attempt <= retriesOnDrop(db) && isDroppedConnection(error) && !signal?.aborted) continue;
      throw fromDatabaseError(error);
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
  }
}

/**
 * How many more times a transaction whose BEGIN met a dropped connection is tried: twice the pool's size.
 * A dead connection can fail two BEGINs before the client sees its socket close (one on the destroyed
 * socket, one with its backend's last message, 57P01, read after that), and after a failover every
 * connection of the pool is dead. Each such attempt fails at once. Measured in
 * test/db/dropped-connection.test.ts and test/fault/terminated-backends.test.ts.
 */
function retriesOnDrop(db: Sql): number {
  const max = (db as { options?: { max?: unknown } }).options?.max;
  return 2 * (typeof max === 'number' && max > 0 ? Math.min(max, 10) : 1);
}

function inContext<T>(
  db: Sql,
  tenantId: string,
  ctx: Omit<RequestContext, 'tenantId'>,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  if (!isUuid(ctx.userId) || !isRole(ctx.role)) return Promise.reject(new UnauthorizedError('The caller is not valid.'));
  const settings = {
    'app.tenant_id': tenantId,
    'app.user_id': ctx.userId,
    'app.role': ctx.role,
    'app.request_id': ctx.requestId,
    lock_timeout: lockTimeoutOf(db),
  };
  return inTransaction(db, settings, fn, options);
}

/**
 * Runs `fn` in one transaction scoped to `ctx.tenantId` by row-level security. A tenant id that breaks
 * the slug rule is refused before any SQL. Rolls back when `fn` throws.
 */
export function withTenant<T>(db: Sql, ctx: RequestContext, fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  try {
    assertTenantId(ctx.tenantId);
  } catch (error) {
    return Promise.reject(error);
  }
  return inContext(db, ctx.tenantId, ctx, fn, options);
}

/**
 * Runs `fn` as a platform operator: no tenant is set, so tenant tables show no rows; only the
 * platform policies that test `app.role = 'superadmin'` (the tenants list) apply.
 */
export function withPlatform<T>(db: Sql, ctx: PlatformContext, fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  return inContext(db, '', ctx, fn, options);
}
