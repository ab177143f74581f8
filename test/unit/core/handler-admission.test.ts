/**
 * The rate admission (functions/core/rate-admission.ts) is told how every admitted request ended, also when
 * the request fails before its transaction starts: an admission never told keeps the request in flight and
 * its token taken, and the process would refuse the tenant's later requests for nothing.
 */
import { wrap } from '../../../functions/core/handler';
import type { RateAdmission } from '../../../functions/core/rate-admission';
import { work as listDocuments } from '../../../functions/documents/list';
import { routes, type RouteSpec } from '../../../functions/routes';
import { eventFor, trustingAuthenticator } from '../../support/api';

describe('rate admission of a request that fails before its transaction', () => {
  it('is told the request ended uncounted when getting the database client throws', async () => {
    // Arrange: an admission that admits and records what it is told; a client that cannot be made.
    const done = jest.fn();
    const admission = { admit: jest.fn(() => ({ done })) } as unknown as RateAdmission;
    const handler = wrap('listDocuments', routes.listDocuments as RouteSpec, listDocuments as unknown as (ctx: never) => Promise<never>, {
      sql: () => {
        throw new Error('DB_PROXY_ENDPOINT is not set');
      },
      authenticator: () => trustingAuthenticator,
      admission: () => admission,
    });
    const tenantId = 'acme';
    const caller = { userId: '6f1c1c1e-6a55-4c1e-9f55-2f7c0b0b9c01', role: 'user' as const, tenantId };
    // Act
    const result = await handler(eventFor(routes.listDocuments, { pathParameters: { tenantId }, caller }));
    // Assess
    expect(result.statusCode).toBeGreaterThanOrEqual(500);
    expect(admission.admit).toHaveBeenCalledTimes(1);
    expect(done).toHaveBeenCalledTimes(1);
    expect(done).toHaveBeenCalledWith({ counted: false, rate: undefined });
  });
});
