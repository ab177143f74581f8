/**
 * The wrapper hands the authenticator exactly one Authorization header or none: a request that carries
 * two (API Gateway's event keeps the last in `headers` and both in `multiValueHeaders`, while the
 * authorizer in front may have checked the first) is refused with 401 before anything else runs.
 */
import type { Authenticator } from '../../../functions/core/auth';
import { UnauthorizedError } from '../../../functions/core/errors';
import { route } from '../../../functions/core/handler';
import { ok } from '../../../functions/core/http';
import { routes } from '../../../functions/routes';
import { eventFor } from '../../support/api';

describe('the handler wrapper and the Authorization header', () => {
  const seen: (string | undefined)[] = [];
  const recording: Authenticator = {
    async authenticate(authorization) {
      seen.push(authorization);
      throw new UnauthorizedError('A bearer ID token is required.');
    },
  };
  const handler = route(routes.listDocuments, async () => ok({ items: [] }), {
    authenticator: () => recording,
    sql: () => {
      throw new Error('no database in this test');
    },
  });
  const caller = { userId: '00000000-0000-4000-8000-000000000001', role: 'user' as const, tenantId: 'acme' };
  const intruder = { ...caller, userId: '00000000-0000-4000-8000-000000000002', role: 'org_admin' as const };

  beforeEach(() => {
    seen.length = 0;
  });

  it('refuses with 401 a request that carries two Authorization headers, without passing either on', async () => {
    // Prepare
    const first = eventFor(routes.listDocuments, { pathParameters: { tenantId: 'acme' }, caller });
    const second = eventFor(routes.listDocuments, { pathParameters: { tenantId: 'acme' }, caller: intruder });
    const event = {
      ...second,
      multiValueHeaders: { Authorization: [first.headers.Authorization!, second.headers.Authorization!] },
    };
    // Act
    const result = await handler(event);
    // Assess
    expect(result.statusCode).toBe(401);
    expect(result.headers?.['content-type']).toBe('application/problem+json');
    expect(seen).toEqual([undefined]);
  });

  it('passes a single Authorization header on (positive control)', async () => {
    const event = eventFor(routes.listDocuments, { pathParameters: { tenantId: 'acme' }, caller });
    await handler(event);
    expect(seen).toEqual([event.headers.Authorization]);
  });
});
