/**
 * How to create one resource of each kind, by the name of the path parameter that carries its id. The
 * isolation matrix fills every `{somethingId}` of a route from this table: a real resource of the
 * caller's own tenant for the positive controls, and one of another tenant for the foreign-id cases.
 * A route whose id parameter has no entry here fails the matrix (fail closed): add one beside it.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { Role } from '../../../functions/core/tenant';
import type { E2eStack } from './stack';

export interface ResourceFixture {
  /** Creates one resource in `tenantId` through the API, as `role` when it may create one, and returns its id. */
  create(stack: E2eStack, tenantId: string, role: Role): Promise<string>;
  /** Whether the resource is still there (read as the superuser, past row-level security). */
  exists(admin: postgres.Sql, tenantId: string, id: string): Promise<boolean>;
}

export type ResourceFixtures = Readonly<Record<string, ResourceFixture>>;

/** A document, created through `POST /api/{tenantId}/documents`. */
export const documentFixture: ResourceFixture = {
  async create(stack, tenantId, role) {
    const creator: Role = role === 'org_admin' || role === 'user' ? role : 'org_admin';
    const response = await stack.call(`/api/${tenantId}/documents`, {
      method: 'POST',
      as: { role: creator, tenantId },
      json: { name: 'matrix.txt', contentType: 'text/plain', sizeBytes: 4 },
    });
    if (response.status !== 201) throw new Error(`creating a document in ${tenantId} answered ${response.status}`);
    return ((await response.json()) as { document: { id: string } }).document.id;
  },
  async exists(admin, tenantId, id) {
    return (await admin`select 1 from app.documents where tenant_id = ${tenantId} and id = ${id}`).length === 1;
  },
};

/** A member (a Cognito user of the tenant with role `user`), created through `POST /api/{tenantId}/members`. */
export const memberFixture: ResourceFixture = {
  async create(stack, tenantId) {
    // Only an org_admin adds members; the id is the same whoever asks for it later.
    const response = await stack.call(`/api/${tenantId}/members`, {
      method: 'POST',
      as: { role: 'org_admin', tenantId },
      json: { email: `matrix-${randomUUID()}@${tenantId}.example`, role: 'user' },
    });
    if (response.status !== 201) throw new Error(`adding a member to ${tenantId} answered ${response.status}`);
    return ((await response.json()) as { userId: string }).userId;
  },
  async exists(admin, tenantId, id) {
    return (await admin`select 1 from app.members where tenant_id = ${tenantId} and user_id = ${id}`).length === 1;
  },
};

/** An export, requested through `POST /api/{tenantId}/exports`. */
export const exportFixture: ResourceFixture = {
  async create(stack, tenantId) {
    const response = await stack.call(`/api/${tenantId}/exports`, { method: 'POST', as: { role: 'org_admin', tenantId } });
    if (response.status !== 202) throw new Error(`requesting an export of ${tenantId} answered ${response.status}`);
    return ((await response.json()) as { export: { id: string } }).export.id;
  },
  async exists(admin, tenantId, id) {
    return (await admin`select 1 from app.exports where tenant_id = ${tenantId} and id = ${id}`).length === 1;
  },
};

/** The manifest's id parameters. */
export const RESOURCE_FIXTURES: ResourceFixtures = {
  documentId: documentFixture,
  userId: memberFixture,
  exportId: exportFixture,
};

/** The path parameters of a route that carry a resource id (every one but `{tenantId}`). */
export function idParameters(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!).filter((name) => name !== 'tenantId');
}

/** The fixture for a path parameter; throws, naming the parameter, when the table has none. */
export function fixtureFor(fixtures: ResourceFixtures, parameter: string): ResourceFixture {
  const fixture = Object.hasOwn(fixtures, parameter) ? fixtures[parameter] : undefined;
  if (!fixture) {
    throw new Error(`no resource fixture for {${parameter}}: add one to RESOURCE_FIXTURES in test/e2e/support/resource-fixtures.ts`);
  }
  return fixture;
}
