/**
 * The one map from database errors to typed errors. `withTenant`/`withPlatform` apply it to whatever
 * leaves their transaction, so a SQLSTATE raised by the request guard, the metering SQL, a lock wait or
 * a lost connection becomes the same problem+json wherever in the request it was raised.
 */
import { AppError, BadRequestError, ConflictError, ForbiddenError, NotFoundError, QuotaExceededError, ServiceUnavailableError, UnauthorizedError } from './errors';
import { quotaHeaders, rateLimitHeaders, secondsUntilReset } from './metering-period';
import { isNetworkErrorCode } from './network-errors';

/** SQLSTATEs this project raises (migrations 0003 and 0005) or relies on. */
export const SQLSTATE = {
  /** app.assert_request_allowed(): the caller is no member of the tenant. */
  callerUnknown: 'TS401',
  /** app.assert_request_allowed(): the member is inactive, holds another role, or the tenant is suspended. */
  callerForbidden: 'TS403',
  /** app.assert_request_allowed(): the tenant does not exist. */
  tenantNotFound: 'TS404',
  /** Lifecycle rules (migration 0007): the last active org_admin, a deleted or offboarding tenant. */
  lifecycleConflict: 'TS409',
  /** A unique constraint: an email already a member (its blind index), a tenant id in use or ever used. */
  uniqueViolation: '23505',
  /** A foreign key: a referenced row (e.g. a plan) does not exist. */
  foreignKeyViolation: '23503',
  /** app.meter_request() / app.consume(): a quota or the rate limit is used up; detail is JSON. */
  quotaExceeded: 'TS429',
  /**
   * lock_timeout. On the tenant's own counter row (raised by the metering SQL, core/metering.ts) it means
   * the tenant's requests are busier than its share: 429. Anywhere else (a table-wide lock, a migration)
   * it is the service that cannot serve now: 503.
   */
  lockNotAvailable: '55P03',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  /** app_runtime's statement_timeout (migration 0006): the database is overloaded. */
  statementTimeout: '57014',
  /** app_runtime's idle_in_transaction_session_timeout ended the session. */
  idleInTransactionTimeout: '25P03',
} as const;

/** SQLSTATE classes that mean "the server cannot serve now": connection exception, insufficient resources. */
const UNAVAILABLE_CLASSES = ['08', '53'] as const;
const UNAVAILABLE_STATES: ReadonlySet<string> = new Set([
  SQLSTATE.adminShutdown,
  SQLSTATE.crashShutdown,
  SQLSTATE.cannotConnectNow,
  SQLSTATE.statementTimeout,
  SQLSTATE.idleInTransactionTimeout,
]);
/** postgres.js's own codes for a connection it lost or could not open. */
const CLIENT_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for errors that mean "the database cannot be reached or is overloaded", not "the query is wrong". */
export function isConnectionError(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false;
  return (
    CLIENT_CONNECTION_CODES.has(code) ||
    isNetworkErrorCode(code) ||
    UNAVAILABLE_STATES.has(code) ||
    UNAVAILABLE_CLASSES.some((c) => code.startsWith(c))
  );
}

/**
 * Errors that say a connection the client already had was dropped (a backend terminated by a failover,
 * RDS Proxy closing an idle client, a reset socket), as opposed to a server that cannot be reached at all
 * (refused, timed out) or is overloaded. A fresh connection can serve the same request.
 */
const DROPPED_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'ECONNRESET',
  'EPIPE',
  SQLSTATE.adminShutdown,
]);

/** True when `error` means "the connection this query was sent on had been dropped". */
export function isDroppedConnection(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && DROPPED_CONNECTION_CODES.has(code);
}

/**
 * The 429 for a lock wait on the tenant's own counter row: its concurrent requests are ahead of this one.
 * Refuse fast rather than queue.
 */
export function tenantContentionError(error: unknown): QuotaExceededError | undefined {
  if (codeOf(error) !== SQLSTATE.lockNotAvailable) return undefined;
  return new QuotaExceededError('Too many concurrent requests for this tenant; retry shortly.', { 'Retry-After': '1' });
}

/**
 * The 429 of a tenant over its per-second rate, whoever refuses it: the metering SQL, or the process on
 * its copy of the tenant's bucket (core/rate-admission.ts). `level`: the bucket as the SQL saw it.
 */
export function rateLimitedError(rps: number | undefined, level?: number): QuotaExceededError {
  return new QuotaExceededError(
    'Too many requests for this tenant; slow down.',
    { 'Retry-After': '1', ...(rps !== undefined ? rateLimitHeaders(rps) : {}) },
    rps !== undefined && level !== undefined ? { tokens: level, rps } : undefined,
  );
}

/** The 429 for a TS429 raised by the metering SQL, or undefined for any other error. */
export function quotaError(error: unknown, now = new Date()): QuotaExceededError | undefined {
  const e = error as { code?: unknown; detail?: unknown } | null;
  if (e?.code !== SQLSTATE.quotaExceeded) return undefined;
  let detail: { metric?: string; limit?: number | null; used?: number; period?: string; tokens?: number } = {};
  try {
    detail = JSON.parse(String(e.detail)) as typeof detail;
  } catch {
    // keep the defaults: still a 429
  }
  if (detail.metric === 'rate') {
    const rps = typeof detail.limit === 'number' ? detail.limit : undefined;
    return rateLimitedError(rps, typeof detail.tokens === 'number' ? detail.tokens : undefined);
  }
  const reset = detail.period ? secondsUntilReset(detail.period, now) : null;
  const headers: Record<string, string> = {
    // Standing totals (documents, storage) free up only when something is deleted: ask to retry later.
    'Retry-After': String(reset ?? 3600),
  };
  if (typeof detail.limit === 'number' && detail.metric) {
    Object.assign(headers, quotaHeaders(detail.metric, { used: detail.used ?? 0, limit: detail.limit, period: detail.period ?? 'total' }, now));
  }
  return new QuotaExceededError(`The plan's ${detail.metric ?? 'usage'} quota is used up.`, headers);
}

/** The client-facing words for a TS409: the rule, never the row that broke it. */
function lifecycleConflictDetail(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  const text = typeof message === 'string' ? message : '';
  if (/last active org_admin/.test(text)) return 'The last active org_admin of a tenant cannot be demoted, deactivated or removed.';
  if (/offboard|deleted/.test(text)) return 'The tenant is offboarded or being offboarded.';
  return 'The change conflicts with the current state.';
}

/** Maps a database error to its typed error; anything unknown is returned unchanged (it becomes a 500). */
export function fromDatabaseError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const quota = quotaError(error);
  if (quota) return quota;
  switch (codeOf(error)) {
    case SQLSTATE.lockNotAvailable:
      // Not the tenant's counter row (core/metering.ts answers that one 429): a wait nobody tenant-side caused.
      return new ServiceUnavailableError('The service is busy; try again shortly.', { cause: error });
    case SQLSTATE.callerUnknown:
      return new UnauthorizedError('The caller is not known.');
    case SQLSTATE.callerForbidden:
      return new ForbiddenError('The caller may not act in this tenant now.');
    case SQLSTATE.tenantNotFound:
      return new NotFoundError('Not found.');
    case SQLSTATE.lifecycleConflict:
      return new ConflictError(lifecycleConflictDetail(error));
    case SQLSTATE.uniqueViolation:
      return new ConflictError('It exists already.');
    case SQLSTATE.foreignKeyViolation:
      return new BadRequestError('A referenced resource does not exist.');
  }
  if (isConnectionError(error)) {
    return new ServiceUnavailableError('The database is not reachable; try again shortly.', { cause: error });
  }
  return error;
}
