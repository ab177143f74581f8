/**
 * The local stack for e2e tests, started in-process by each test file on top of what the Jest global
 * setup runs (its Postgres and its moto_server, bucket and tenant-access role). The seed is the one
 * `npm start` uses (tenants acme and globex); seeding is idempotent and serialised, and stacks in several
 * workers share one Cognito pool (found by name), so every file sees the same users with the same subs.
 */
import { createHash } from 'node:crypto';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../../bin/stack/local-stack';
import type { Role } from '../../../functions/core/tenant';
import { documentedFetch } from './openapi-conformance';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the Jest global setup did not run`);
  return value;
}

export interface E2eStack extends LocalStack {
  /** An ID token for the seed user (cached per file: tokens live an hour). */
  token(tenantId: string | undefined, role: Role): Promise<string>;
  /**
   * `fetch` of a path of the API; every answer is checked against the OpenAPI document first
   * (./openapi-conformance.ts), so a test that receives an undocumented answer fails.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** `stack.fetch` with that user's token (and a JSON body when `json` is given). */
  call(path: string, init?: { method?: string; as?: { tenantId?: string; role: Role }; json?: unknown }): Promise<Response>;
}

export async function startE2eStack(options: Pick<LocalStackOptions, 'extraRoutes'> = {}): Promise<E2eStack> {
  const adminUrl = required('TEST_ADMIN_DATABASE_URL');
  const stack = await startLocalStack({
    database: { adminUrl, runtimeUrl: required('TEST_RUNTIME_DATABASE_URL'), controlUrl: required('TEST_CONTROL_DATABASE_URL') },
    emulatorEndpoint: required('TEST_AWS_ENDPOINT_URL'),
    storage: { bucket: required('TEST_TENANT_BUCKET'), roleArn: required('TEST_TENANT_ACCESS_ROLE_ARN') },
    name: 'tenant-sovereign-e2e',
    extraRoutes: options.extraRoutes,
    // The same in every worker of this run (the admin URL holds the run's random password), so one
    // worker's seeding never invalidates another's password.
    password: `E2e-${createHash('sha256').update(adminUrl).digest('base64url').slice(0, 20)}-1a`,
  });
  const tokens = new Map<string, Promise<string>>();
  const token = (tenantId: string | undefined, role: Role) => {
    const key = `${tenantId ?? ''}/${role}`;
    let cached = tokens.get(key);
    if (!cached) {
      cached = stack.token(tenantId, role);
      cached.catch(() => tokens.delete(key));
      tokens.set(key, cached);
    }
    return cached;
  };
  const checked = documentedFetch(stack.url, (options.extraRoutes ?? []).map((r) => r.route));
  return {
    ...stack,
    token,
    fetch: checked,
    async call(path, init = {}) {
      const headers: Record<string, string> = {};
      if (init.as) headers.authorization = `Bearer ${await token(init.as.tenantId, init.as.role)}`;
      if (init.json !== undefined) headers['content-type'] = 'application/json';
      return checked(path, {
        method: init.method ?? 'GET',
        headers,
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
      });
    },
  };
}
