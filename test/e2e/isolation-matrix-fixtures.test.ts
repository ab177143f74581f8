/**
 * The isolation matrix fills any id parameter from its fixture table, and fails closed without one.
 * Proven with a test-only route whose id parameter ({probeId}) the manifest does not have: wrapped by
 * the real wrapper and served by the local server beside the manifest's routes.
 */
import postgres from 'postgres';
import { wrap, type RouteContext } from '../../functions/core/handler';
import { NotFoundError } from '../../functions/core/errors';
import { ok, type Reply } from '../../functions/core/http';
import { isUuid } from '../../functions/core/tenant';
import { routes, type RouteSpec } from '../../functions/routes';
import type { LocalRoute } from '../../bin/stack/http-server';
import { describeIsolationMatrix, OWN, pathFor } from './support/isolation-matrix';
import { documentFixture, RESOURCE_FIXTURES } from './support/resource-fixtures';
import { startE2eStack, type E2eStack } from './support/stack';

/** A probe is a document seen through another path: only row-level security decides what it finds. */
const probeRoute: LocalRoute = {
  // A valid spec to start from; the local server is given this route's handler (extraRoutes), so the
  // manifest's module named in `handler` is never loaded for it.
  ...routes.getDocument,
  id: 'getMatrixProbe',
  path: '/api/{tenantId}/matrix-probes/{probeId}',
  summary: 'Test-only: a document by id, through row-level security alone',
  usesStorage: false,
  // Its own id parameter, with the manifest's UUID rule.
  params: { probeId: routes.getDocument.params.documentId },
  response: { status: 200, schema: { type: 'object' } },
};

async function getProbe({ tx, params }: RouteContext): Promise<Reply> {
  const probeId = params.probeId;
  if (!isUuid(probeId)) throw new NotFoundError('Not found.');
  // No tenant predicate on purpose: the policy alone must hide another tenant's row.
  const [found] = await tx<{ id: string }[]>`select id from app.documents where id = ${probeId}`;
  if (!found) throw new NotFoundError('Not found.');
  return ok({ id: found.id });
}

const probeHandler = wrap(probeRoute.id, probeRoute as RouteSpec, getProbe as (ctx: never) => Promise<Reply>);

let stack: E2eStack;
let admin: postgres.Sql;

beforeAll(async () => {
  stack = await startE2eStack({ extraRoutes: [{ route: probeRoute, handler: probeHandler }] });
  admin = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined });
});
afterAll(async () => {
  await admin?.end();
  await stack?.stop();
});

it('fails closed on an id parameter the fixture table does not name', async () => {
  await expect(pathFor({ stack: () => stack, fixtures: RESOURCE_FIXTURES }, probeRoute, OWN, 'org_admin')).rejects.toThrow(
    /no resource fixture for \{probeId\}/,
  );
  // Positive control: with an entry, the same call yields a path with a real id of the tenant.
  const path = await pathFor({ stack: () => stack, fixtures: { ...RESOURCE_FIXTURES, probeId: documentFixture } }, probeRoute, OWN, 'org_admin');
  expect(path).toMatch(/^\/api\/acme\/matrix-probes\/[0-9a-f-]{36}$/);
});

// The whole matrix for the test-only route, from one fixture entry and no other test code.
describeIsolationMatrix([probeRoute], {
  stack: () => stack,
  admin: () => admin,
  fixtures: { ...RESOURCE_FIXTURES, probeId: documentFixture },
});
