import { directory as containerDirectory, type UserDirectory } from '../core/cognito';
import { route, type RouteContext, type WithPii } from '../core/handler';
import { ok, type Reply } from '../core/http';
import { pii as containerPii } from '../core/pii';
import { routes } from '../routes';
import { memberCall } from './deps';
import { updateMember } from './membership';

interface MemberChangeBody {
  readonly role?: 'org_admin' | 'user' | 'readonly';
  readonly status?: 'active' | 'inactive';
}

/** Changes role and/or status; the member's next request sees it. The last active org_admin → 409. */
export function work(directory: () => UserDirectory) {
  return async (ctx: RouteContext<MemberChangeBody> & WithPii): Promise<Reply> => {
    const { mctx, deps } = memberCall(ctx, directory());
    return ok(await updateMember(mctx, deps, ctx.params.userId!, ctx.body));
  };
}

export const handler = route(routes.updateMember, work(containerDirectory), { pii: containerPii });
