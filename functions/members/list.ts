import { route, type RouteContext, type WithPii } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { pageOf, parsePage } from '../core/pagination';
import { pii as containerPii } from '../core/pii';

interface MemberRow {
  user_id: string;
  role: string;
  status: string;
  email_ciphertext: Buffer;
  created_at: Date;
  cursor_at: string;
  data_key: Buffer | null;
}

/** Members with their email, decrypted with the tenant's own data key (unwrapped by KMS, cached). */
export async function work({ tx, query, tenantId, pii }: RouteContext & WithPii): Promise<Reply> {
  const page = parsePage(query);
  const rows = await tx<MemberRow[]>`
    select m.user_id, m.role, m.status, m.email_ciphertext, m.created_at,
           to_char(m.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at,
           t.data_key_ciphertext as data_key
      from app.members m
      join app.tenants t on t.id = m.tenant_id
     where m.tenant_id = ${tenantId}
       and ${page.after ? tx`(m.created_at, m.user_id) > (${page.after.at}::timestamptz, ${page.after.id}::uuid)` : tx`true`}
     order by m.created_at, m.user_id
     limit ${page.limit + 1}`;
  const wrapped = rows[0]?.data_key;
  const keys = wrapped ? await pii.keys(wrapped) : undefined;
  return ok(
    pageOf(
      rows,
      page.limit,
      (r) => ({ at: r.cursor_at, id: r.user_id }),
      (r) => ({
        userId: r.user_id,
        // Without the tenant's key (offboarded) the email is unrecoverable by design.
        email: keys ? keys.decrypt('email', r.email_ciphertext) : null,
        role: r.role,
        status: r.status,
      }),
    ),
  );
}

export const handler = route(routes.listMembers, work, { pii: containerPii });
