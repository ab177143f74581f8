/**
 * The local seed (API.md): tenants `acme` (plan `pro`) and `globex` (plan `free`), one member per role
 * `org_admin`, `user`, `readonly` in each, and one platform `superadmin`. Emails are `<role>@<tenant>.example`,
 * stored as the runtime stores them: ciphertext under the tenant's data key plus a blind index.
 *
 * Idempotent and reconciling: the emulator is in-memory, so each start may bring new Cognito `sub`s and a
 * new KMS key while Postgres keeps its data. Members are found by the blind index of their email and
 * moved to the current `sub`; a tenant whose wrapped data key no longer unwraps (the KMS key of an
 * earlier emulator is gone, and with it, by design, every copy of that PII) gets a new data key and its
 * members are written again. Runs as the Postgres superuser: the seed plays the onboarding control plane
 * and must remove unreadable member rows, which even `app_control` may not delete.
 */
import postgres from 'postgres';
import { createPii, kmsClient, type TenantKeys } from '../../functions/core/pii';
import type { Role, TenantRole } from '../../functions/core/tenant';
import type { EmulatorAccess, IdentitySpec } from './identity';

export interface SeedTenant {
  readonly id: string;
  readonly name: string;
  readonly planId: string;
}

/** The tenants API.md promises. */
export const SEED_TENANTS: readonly SeedTenant[] = [
  { id: 'acme', name: 'Acme Corporation', planId: 'pro' },
  { id: 'globex', name: 'Globex', planId: 'free' },
];

export const TENANT_ROLES: readonly TenantRole[] = ['org_admin', 'user', 'readonly'];

/** One seed user per tenant and role, and the platform operator. Usernames are the emails. */
export function seedUsers(tenants: readonly SeedTenant[] = SEED_TENANTS): IdentitySpec[] {
  const users: IdentitySpec[] = tenants.flatMap((t) =>
    TENANT_ROLES.map((role) => ({ username: `${role}@${t.id}.example`, email: `${role}@${t.id}.example`, role, tenantId: t.id })),
  );
  users.push({ username: 'superadmin@platform.example', email: 'superadmin@platform.example', role: 'superadmin' as Role });
  return users;
}

/** Names of KMS errors that mean "this wrapped key will never unwrap here", as opposed to "KMS is down". */
// AccessDenied is how moto (like KMS) answers a ciphertext whose key it does not have.
const KEY_GONE = /AccessDenied|NotFound|InvalidCiphertext|IncorrectKey|KMSInvalidState|InvalidKeyUsage/;

function keyGone(error: unknown): boolean {
  const e = error as { name?: string; cause?: { name?: string } } | null;
  return KEY_GONE.test(e?.cause?.name ?? '') || KEY_GONE.test(e?.name ?? '');
}

/**
 * Writes the seed through `adminUrl` in one transaction, serialised with other seeders of the same
 * database by a transaction-scoped advisory lock. `subs` maps usernames to their current Cognito `sub`.
 * `provision` runs inside the lock first (the emulator side), so concurrent stacks agree on one pool.
 */
export async function seedDatabase(options: {
  adminUrl: string;
  access: EmulatorAccess;
  tenants: readonly SeedTenant[];
  users: readonly IdentitySpec[];
  provision: () => Promise<{ subs: ReadonlyMap<string, string>; piiKeyId: string }>;
}): Promise<void> {
  const sql = postgres(options.adminUrl, { max: 1, onnotice: () => undefined });
  const kms = kmsClient(options.access);
  try {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('tenant-sovereign local seed'))`;
      const { subs, piiKeyId } = await options.provision();
      const pii = createPii({ kms, keyId: piiKeyId, cacheSeconds: 0 });
      const subOf = (username: string) => {
        const sub = subs.get(username);
        if (!sub) throw new Error(`the emulator has no user ${username}`);
        return sub;
      };

      for (const tenant of options.tenants) {
        await tx`
          insert into app.tenants (id, name, plan_id) values (${tenant.id}, ${tenant.name}, ${tenant.planId})
          on conflict (id) do nothing`;
        const [row] = await tx<{ data_key_ciphertext: Buffer | null }[]>`
          select data_key_ciphertext from app.tenants where id = ${tenant.id}`;
        let keys: TenantKeys | undefined;
        if (row?.data_key_ciphertext) {
          keys = await pii.tenantKeys(tenant.id, row.data_key_ciphertext).catch((error: unknown) => {
            if (keyGone(error)) return undefined;
            throw error;
          });
        }
        if (!keys) {
          const fresh = await pii.newTenantKey(tenant.id);
          keys = fresh.keys;
          await tx`update app.tenants set data_key_ciphertext = ${fresh.wrapped}, updated_at = now() where id = ${tenant.id}`;
          // Ciphertexts and blind indexes under the lost key can never be read again: start the members over.
          await tx`delete from app.members where tenant_id = ${tenant.id}`;
        }
        for (const user of options.users.filter((u) => u.tenantId === tenant.id)) {
          const sub = subOf(user.username);
          const hmac = keys.blindIndex('email', user.email);
          // Drop a stale row that holds the current sub for another email (a reused emulator), then upsert by email.
          await tx`delete from app.members where tenant_id = ${tenant.id} and user_id = ${sub} and email_hmac <> ${hmac}`;
          await tx`
            insert into app.members (tenant_id, user_id, role, status, email_ciphertext, email_hmac)
            values (${tenant.id}, ${sub}, ${user.role}, 'active', ${keys.encrypt('email', user.email)}, ${hmac})
            on conflict (tenant_id, email_hmac) do update
               set user_id = excluded.user_id, role = excluded.role, status = 'active', updated_at = now()`;
        }
      }
      for (const user of options.users.filter((u) => u.role === 'superadmin')) {
        await tx`
          insert into app.platform_operators (user_id, status) values (${subOf(user.username)}, 'active')
          on conflict (user_id) do update set status = 'active'`;
      }
    });
  } finally {
    kms.destroy();
    await sql.end({ timeout: 5 });
  }
}
