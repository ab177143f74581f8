/**
 * Postgres access for the runtime. One postgres.js client per container; every piece of tenant work runs
 * in `withTenant`: one transaction whose first statement sets the tenant, the user, the role and the
 * request id with `set_config(…, true)` (transaction-local, never session-level), pipelined with BEGIN and
 * the work that follows: a read declared as one flush costs one round trip (see `inTransaction`).
 */
import postgres from 'postgres';
import { monotonicMs } from './clock';
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
   * discarded; a transaction that only gets its connection after it has passed sends nothing.
   */
  readonly signal?: AbortSignal;
  /**
   * The work sends every statement it will ever send before it waits for any answer (e.g. one read, or
   * reads under one `Promise.all`): COMMIT is queued right behind them and the whole transaction is one
   * round trip. Same as calling `end.commitAfterBurst()` first thing in the work. A statement the work
   * sends later is refused (a {@link TransactionShapeError}), never run outside the transaction.
   */
  readonly oneFlush?: boolean;
}

/**
 * What the work of a transaction is told about its end (the second argument of the work). By default
 * COMMIT is sent when the work's promise resolves: one round trip of its own.
 */
export interface TransactionEnd {
  /**
   * Declares that the statements the work sends from now until it next waits for something (the rest of
   * this turn of the event loop: up to the first `setImmediate`) are its last. At the end of that turn
   * `last` runs (it may send the last statements itself, e.g. the request meter; if it throws, the
   * transaction rolls back with its error instead) and COMMIT is queued behind them, so that COMMIT
   * leaves in the same flush as the work's last statements and costs no round trip of its own. Any
   * statement sent after that is refused with a {@link TransactionShapeError} and never reaches the
   * server. Resolves once `last` has run. At most once per transaction.
   */
  commitAfterBurst(last?: () => void): Promise<void>;
}

/**
 * A statement sent after its transaction's COMMIT or ROLLBACK was queued, or after the transaction
 * ended: a programming error (a work that declared its last statements too early, or kept a transaction
 * after it ended). The statement is never sent: it would run outside the transaction, without its
 * tenant context.
 */
export class TransactionShapeError extends Error {
  constructor() {
    super('a statement was sent after its transaction had queued COMMIT or ROLLBACK; it was not run');
    this.name = 'TransactionShapeError';
  }
}

/**
 * A transaction that was asked to commit but whose COMMIT the server answered with ROLLBACK: one of its
 * statements failed and the work went on (it caught the error, or never awaited the statement).
 */
export class TransactionRolledBackError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the transaction was rolled back: one of its statements failed', options);
    this.name = 'TransactionRolledBackError';
  }
}

/**
 * How long BEGIN must have waited when the deadline passes for the server to be taken for frozen: a
 * BEGIN asked for a moment before the deadline is no stall. BEGIN is the statement that meets a
 * connection stuck on a frozen server: a transaction that stalls after it holds its connection, and the
 * next request that needs that connection waits for it, so the stall is found one request later (in
 * Lambda, the next one), while statement_timeout and lock_timeout bound every statement server-side.
 */
const STALL_MS = 1000;

/**
 * Runs `fn` in one transaction whose first statement sets `settings` with `set_config(…, true)`
 * (transaction-local). Errors leave through the one database error map. With a deadline
 * (`options.signal`), a server that does not answer BEGIN within it has the client's connections
 * discarded (core/db-sockets.ts), so that no later request queues behind them. Where tracing is on, the
 * transaction is an X-Ray subsegment `postgres <route id>` of the request's handler subsegment.
 *
 * Round trips. The transaction runs on a connection reserved for it (`sql.reserve()`, not `sql.begin`,
 * which waits for BEGIN's answer before it runs any of the work and for COMMIT's after it: three round
 * trips for one read). BEGIN, the context and the work's first statements leave in one flush; COMMIT
 * leaves when the work's promise resolves, or, when the work declared its last statements
 * ({@link TransactionEnd.commitAfterBurst}, {@link TransactionOptions.oneFlush}), in the same flush as
 * them. So: a single-flush read costs one round trip, a read with a dependent query two, a write whose
 * work waits for one answer two (three with one more dependent step). Why a declaration rather than
 * guessing: COMMIT can only be pipelined when the runner knows that no statement follows, and only the
 * work knows that. A wrong declaration fails closed: every statement the work sends goes through a
 * gate that refuses it once COMMIT or ROLLBACK has been handed to the connection
 * ({@link TransactionShapeError}), so nothing ever runs after the transaction, without its context.
 *
 * Fail-closed semantics kept: the context is the first statement after BEGIN on the same connection,
 * before any statement of the work; a statement that fails aborts the transaction on the server, so
 * every later statement fails (25P02) and a COMMIT behind them is answered ROLLBACK (reported as the
 * first statement's error, or {@link TransactionRolledBackError}); a work that throws before COMMIT was
 * queued gets ROLLBACK. One thing a pipelined COMMIT cannot do: undo a transaction that committed because
 * the work's code failed only after the answers came back (its statements all succeeded). Work that
 * declares its end therefore keeps its effects in its statements (reads, the meter, the audit row).
 *
 * The reserved connection is released on every path, once its last statement has been answered or the
 * connection is known lost (a statement of a lost connection can wait for ever in postgres.js's queue of
 * a reserved connection: the transaction does not wait for those).
 */
export function inTransaction<T>(
  db: Sql,
  settings: Readonly<Record<string, string>>,
  fn: (tx: Tx, end: TransactionEnd) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  // One subsegment for the transaction, its retries included, named by the route and never by its SQL.
  return traced(`postgres ${currentRouteId() ?? 'transaction'}`, () => transaction(db, settings, fn, options));
}

async function transaction<T>(
  db: Sql,
  settings: Readonly<Record<string, string>>,
  fn: (tx: Tx, end: TransactionEnd) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  const { signal } = options;
  for (let attempt = 1; ; attempt++) {
    const begun = { answered: false };
    const requested = monotonicMs();
    const giveUp = () => !begun.answered && monotonicMs() - requested >= STALL_MS && clients.get(db)?.sockets.destroyAll();
    signal?.addEventListener('abort', giveUp, { once: true });
    try {
      return await attemptTransaction(db, settings, fn, options, begun);
    } catch (error) {
      // BEGIN itself met a connection that had been dropped while idle (a failover, RDS Proxy's idle
      // timeout, a container thawed after minutes): the server ran none of what followed it (its answers
      // come in order; and COMMIT is never sent before the work has had answers, unless the work declared
      // one flush: then a COMMIT whose answer was lost with BEGIN's may have committed the read and its
      // meter), so another attempt is safe (see retriesOnDrop for how many). The work is called again; the
      // first call's statements were all refused or failed. Once BEGIN has been answered, a lost
      // connection is the caller's 503: a COMMIT whose answer was lost may have committed, and running
      // the work again could count twice.
      if (!begun.answered && attempt <= retriesOnDrop(db) && isDroppedConnection(error) && !signal?.aborted) continue;
      throw fromDatabaseError(error);
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
  }
}

/** Errors after which the connection is gone (the server rolls back on its own; nothing more to wait for). */
function isLostConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return isDroppedConnection(error) || code === 'CONNECTION_ENDED' || (typeof code === 'string' && /^E[A-Z]+$/.test(code));
}

type Statement = Promise<unknown> & { handler?: (query: Statement & { reject(error: unknown): void }) => void };

/** One attempt: a reserved connection, BEGIN + context + the work, COMMIT or ROLLBACK, released. */
async function attemptTransaction<T>(
  db: Sql,
  settings: Readonly<Record<string, string>>,
  fn: (tx: Tx, end: TransactionEnd) => Promise<T>,
  options: TransactionOptions,
  begun: { answered: boolean },
): Promise<T> {
  const reserved = await db.reserve();
  // Until COMMIT or ROLLBACK is handed to the connection: the gate of every statement of the work.
  let open = true;
  let firstError: unknown;
  // Set only by what a statement of this connection answered, never by the work's own errors (an AWS
  // error of the work may carry a network code too): a connection that is not known lost always gets
  // its ROLLBACK, so that it never goes back to the pool inside a transaction.
  let isLost = false;
  let lost: (error: unknown) => void = () => undefined;
  const connectionLost = new Promise<never>((_, reject) => (lost = reject));
  connectionLost.catch(() => undefined);
  const watch = <S extends Promise<unknown>>(statement: S): S => {
    statement.then(undefined, (error: unknown) => {
      firstError ??= error;
      if (isLostConnection(error)) {
        isLost = true;
        lost(error);
      }
    });
    return statement;
  };
  /** Gates a query: run only while the transaction is open, else refused and never sent. */
  const gate = <Q>(query: Q): Q => {
    const statement = query as Statement;
    if (statement instanceof Promise && typeof statement.handler === 'function') {
      const send = statement.handler;
      statement.handler = (q) => (open ? (watch(q), send(q)) : q.reject(new TransactionShapeError()));
    }
    return query;
  };
  const tx = new Proxy(reserved, {
    apply: (target, self, args) => gate(Reflect.apply(target, self, args)),
    get: (target, key, receiver) => {
      const value = Reflect.get(target, key, receiver) as unknown;
      return key === 'unsafe' || key === 'file' ? (...args: unknown[]) => gate((value as (...a: unknown[]) => unknown)(...args)) : value;
    },
  }) as unknown as Tx;
  /** COMMIT or ROLLBACK; the gate closes as it is handed to the connection, before it is sent. */
  const finish = (command: 'commit' | 'rollback') => {
    const query = reserved.unsafe(command) as unknown as Statement;
    const send = query.handler!;
    query.handler = (q) => {
      open = false;
      send(q);
    };
    const sent = watch((query as unknown as postgres.PendingQuery<postgres.Row[]>).execute());
    sent.catch(() => undefined);
    return sent;
  };

  let ending: Promise<postgres.RowList<postgres.Row[]>> | undefined;
  let lastError: { error: unknown } | undefined;
  let burst: Promise<void> | undefined;
  const end: TransactionEnd = {
    commitAfterBurst(last) {
      if (burst) throw new Error('commitAfterBurst was called twice in one transaction');
      // The burst ends with this turn of the event loop; `last` runs then. COMMIT is handed to the
      // connection one `setImmediate` later, behind every statement sent meanwhile: a statement reaches
      // the connection some microtasks after it is sent (more when it is awaited), and all of those run
      // before the next `setImmediate`. postgres.js writes what it was handed in a `setImmediate` too,
      // so COMMIT leaves with them or right behind them, without waiting for any answer.
      const settle = (command: 'commit' | 'rollback', resolve: () => void) =>
        setImmediate(() => {
          ending ??= finish(command);
          resolve();
        });
      burst = new Promise((resolve) =>
        setImmediate(() => {
          if (ending) return resolve();
          try {
            last?.();
          } catch (error) {
            lastError = { error };
            return settle('rollback', resolve);
          }
          settle('commit', resolve);
        }),
      );
      return burst;
    },
  };

  try {
    // Reached a connection only after the deadline: the caller has had its 503, send nothing.
    if (options.signal?.aborted) throw new DeadlineExceededError();
    const names = Object.keys(settings);
    const values = Object.values(settings);
    const begin = watch(reserved.unsafe('begin').execute());
    begin.then(() => (begun.answered = true), () => undefined);
    // Handed to the connection right behind BEGIN and before any query of `fn` (queries reach the
    // connection in the order they are run): nothing of the work can run without the context.
    const context = watch(
      reserved`select set_config(name, value, true) from unnest(${names}::text[], ${values}::text[]) as s(name, value)`.execute(),
    );
    if (options.oneFlush) void end.commitAfterBurst();
    const work = (async () => {
      const [, result] = await Promise.all([context, fn(tx, end)]);
      return result;
    })();
    // Raced against a lost connection below: its own rejection may come after the race is decided.
    work.catch(() => undefined);
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await Promise.race([work, connectionLost]) };
      if (burst) await burst;
      ending ??= finish('commit');
      const [answer] = await Promise.race([Promise.all([ending, begin]), connectionLost]);
      if (lastError) throw lastError.error;
      // COMMIT in an aborted transaction is answered ROLLBACK, not an error.
      if (answer.command !== 'COMMIT') throw firstError ?? new TransactionRolledBackError();
      return outcome.value;
    } catch (error) {
      outcome = { error };
    }
    // Failed: roll back unless COMMIT or ROLLBACK is already on its way or the connection is gone.
    const failure = outcome.error;
    if (!ending && !isLost) ending = finish('rollback');
    else open = false;
    await Promise.race([ending?.catch(() => undefined), connectionLost.catch(() => undefined)]);
    // BEGIN's own failure (a dropped connection) is what the retry looks at; then the first statement
    // that failed (the others only say "transaction aborted", 25P02), as sql.begin does.
    const beginError = await begin.then(() => undefined, (error: unknown) => error);
    if (beginError !== undefined) throw beginError;
    // The work's own error wins over one thrown by its `last` (e.g. the status guard's over the work's).
    const code = (failure as { code?: unknown } | null)?.code;
    throw code === '25P02' && firstError !== undefined ? firstError : failure;
  } finally {
    open = false;
    reserved.release();
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
  fn: (tx: Tx, end: TransactionEnd) => Promise<T>,
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
export function withTenant<T>(db: Sql, ctx: RequestContext, fn: (tx: Tx, end: TransactionEnd) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
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
export function withPlatform<T>(db: Sql, ctx: PlatformContext, fn: (tx: Tx, end: TransactionEnd) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  return inContext(db, '', ctx, fn, options);
}
