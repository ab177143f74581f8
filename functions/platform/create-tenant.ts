import { directory } from '../core/cognito';
import { route, type PlatformRouteContext } from '../core/handler';
import { created, type Reply } from '../core/http';
import { pii } from '../core/pii';
import { routes } from '../routes';
import { onboardTenant } from '../tenants/onboarding';

/** The body, as the manifest's schema admits it. */
export interface CreateTenantBody {
  readonly id: string;
  readonly name: string;
  readonly planId: string;
  readonly admin: { readonly email: string; readonly name?: string };
}

/**
 * POST /api/tenants → 201 `{ tenant, admin }` with Location. The onboarding (functions/tenants/onboarding.ts)
 * checks the operator and writes the audit events in the new tenant; a retry of the same request
 * completes a stopped one; an id in use or ever used → 409; an unknown plan → 400.
 */
export async function work({ control, body, userId, role, requestId }: PlatformRouteContext<CreateTenantBody>): Promise<Reply> {
  const result = await onboardTenant({ db: control, pii: pii(), directory: directory() }, { userId, role, requestId }, body);
  return created(result, `/api/tenants/${result.tenant.id}`);
}

// usesPii: the wrapper requires the KMS provider at cold start (and CDK grants GenerateDataKey for it).
export const handler = route<typeof routes.createTenant, CreateTenantBody>(routes.createTenant, work, { pii });
