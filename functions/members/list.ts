import { route, type RouteContext, type WithPii } from '../core/handler';
import { routes } from '../routes';
import { ok, type Reply } from '../core/http';
import { keyset, parsePage, type PositionColumns } from '../core/pagination';
import { pii as containerPii } from '../core/pii';

interface MemberRow extends PositionColumns {
  user_id: string;
  role: string;
  status: string;
  email_ciphertext: Buffer;
  created_at: Date;
  data_key: Buffer | null;
}

/** Members with their email, decrypted with the tenant's own data key (unwrapped by KMS, cached). */
export async function work({ tx, query, tenantId, pii }: RouteContext & WithPii): Promise<Reply> {
  const page = keyset(tx, parsePage(query), { at: 'm.created_at', id: 'm.user_id', idType: 'uuid', order: 'oldest first' });
  const rows = await tx<MemberRow[]>`
    select m.user_id, m.role, m.status, m.email_ciphertext, m.created_at, ${page.position},
           t.data_key_ciphertext as data_key
      from app.members m
      join app.tenants t on t.id = m.tenant_id
     where m.tenant_id = ${tenantId} and ${page.after}
     order by ${page.orderBy}
     limit ${page.fetch}`;
  const wrapped = rows[0]?.data_key;
  const keys = wrapped ? await pii.keys(wrapped) : undefined;
  return ok(
    page.page(
      rows,
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
