/**
 * The fault tests' traffic: a tenant's `user` listing documents and recording usage events through the
 * real handler wrapper, with the dependencies the test gives (its own database client, a short deadline).
 * Every usage event carries a fresh idempotency key, and the keys answered 202 are kept, so that a test
 * can compare what committed with what was accepted.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { route, type HandlerDependencies } from '../../../functions/core/handler';
import { work as listDocuments } from '../../../functions/documents/list';
import { work as recordUsageEvent } from '../../../functions/usage/record-event';
import { routes } from '../../../functions/routes';
import { eventFor, trustingAuthenticator } from '../../support/api';
import type { TenantFixture } from '../../support/db';

export interface MixedTraffic {
  /** GET documents. */
  list(): Promise<APIGatewayProxyResult>;
  /** POST one usage event (1 ai_token) under `key`; a 202 adds `key` to {@link accepted}. */
  record(key?: string): Promise<APIGatewayProxyResult>;
  /** Request `i` of a stream: even ones list, odd ones record. */
  send(i: number): Promise<APIGatewayProxyResult>;
  /** The idempotency keys of the usage events answered 202, in order. */
  readonly accepted: string[];
}

/** Traffic of `tenant`'s user through the wrapper with `deps` (the trusting test authenticator by default). */
export function mixedTraffic(
  tenant: TenantFixture,
  deps: Partial<HandlerDependencies>,
  accepted: string[] = [],
): MixedTraffic {
  const withAuth: Partial<HandlerDependencies> = { authenticator: () => trustingAuthenticator, ...deps };
  const caller = { userId: tenant.members.user, role: 'user' as const, tenantId: tenant.tenantId };
  const listRoute = route(routes.listDocuments, listDocuments, withAuth);
  const recordRoute = route(routes.recordUsageEvent, recordUsageEvent, withAuth);
  const list = () => listRoute(eventFor(routes.listDocuments, { pathParameters: { tenantId: tenant.tenantId }, caller }));
  const record = async (key: string = randomUUID()) => {
    const result = await recordRoute(
      eventFor(routes.recordUsageEvent, {
        pathParameters: { tenantId: tenant.tenantId },
        caller,
        body: { metric: 'ai_tokens', quantity: 1, idempotencyKey: key },
      }),
    );
    if (result.statusCode === 202) accepted.push(key);
    return result;
  };
  return { list, record, send: (i) => (i % 2 === 0 ? list() : record()), accepted };
}
