import { fromDatabaseError, isConnectionError, SQLSTATE, tenantContentionError } from '../../../functions/core/db-errors';
import {
  ForbiddenError,
  NotFoundError,
  QuotaExceededError,
  ServiceUnavailableError,
  UnauthorizedError,
} from '../../../functions/core/errors';

describe('the database error map', () => {
  it.each([
    [SQLSTATE.callerUnknown, UnauthorizedError, 401],
    [SQLSTATE.callerForbidden, ForbiddenError, 403],
    [SQLSTATE.tenantNotFound, NotFoundError, 404],
    [SQLSTATE.quotaExceeded, QuotaExceededError, 429],
    [SQLSTATE.lockNotAvailable, ServiceUnavailableError, 503],
    [SQLSTATE.adminShutdown, ServiceUnavailableError, 503],
    [SQLSTATE.cannotConnectNow, ServiceUnavailableError, 503],
    ['08006', ServiceUnavailableError, 503],
    ['53300', ServiceUnavailableError, 503],
    ['ECONNREFUSED', ServiceUnavailableError, 503],
    ['CONNECTION_CLOSED', ServiceUnavailableError, 503],
  ])('maps %s to a typed error with status %s', (code, type, status) => {
    const mapped = fromDatabaseError(Object.assign(new Error('from postgres'), { code }));
    expect(mapped).toBeInstanceOf(type);
    expect((mapped as { status: number }).status).toBe(status);
  });

  it('asks a caller refused on a lock wait to retry after a second', () => {
    const mapped = fromDatabaseError({ code: SQLSTATE.lockNotAvailable }) as ServiceUnavailableError;
    expect(mapped.headers['Retry-After']).toBe('1');
  });

  it('answers 429 only for a lock wait on the tenant\'s own counter row', () => {
    const own = tenantContentionError({ code: SQLSTATE.lockNotAvailable });
    expect(own).toBeInstanceOf(QuotaExceededError);
    expect(own?.headers['Retry-After']).toBe('1');
    expect(tenantContentionError({ code: SQLSTATE.statementTimeout })).toBeUndefined();
  });

  it('leaves query errors and typed errors unchanged', () => {
    const syntax = Object.assign(new Error('syntax'), { code: '42601' });
    expect(fromDatabaseError(syntax)).toBe(syntax);
    const typed = new NotFoundError('Not found.');
    expect(fromDatabaseError(typed)).toBe(typed);
  });
});

describe('isConnectionError', () => {
  it('recognises connection failures and overload, and not query errors', () => {
    expect(isConnectionError({ code: 'ECONNREFUSED' })).toBe(true);
    expect(isConnectionError({ code: 'CONNECT_TIMEOUT' })).toBe(true);
    expect(isConnectionError({ code: '53300' })).toBe(true);
    expect(isConnectionError({ code: '08006' })).toBe(true);
    expect(isConnectionError({ code: '42501' })).toBe(false);
    expect(isConnectionError({ code: '23505' })).toBe(false);
    expect(isConnectionError(new Error('x'))).toBe(false);
    expect(isConnectionError(null)).toBe(false);
  });

  it("treats the runtime role's statement and idle-in-transaction timeouts as overload (503), not as a bug (500)", () => {
    expect(isConnectionError({ code: SQLSTATE.statementTimeout })).toBe(true);
    expect(isConnectionError({ code: SQLSTATE.idleInTransactionTimeout })).toBe(true);
  });
});
