import { directory as containerDirectory, type UserDirectory } from '../core/cognito';
import { route, type RouteContext, type WithPii } from '../core/handler';
import { created, type Reply } from '../core/http';
import { pii as containerPii } from '../core/pii';
import { routes } from '../routes';
import { memberCall } from './deps';
import { addMember } from './membership';

interface NewMemberBody {
  readonly email: string;
  readonly role: 'org_admin' | 'user' | 'readonly';
  readonly name?: string;
}

/** Adds a member who can sign in (Cognito user with the tenant and role) → 201 with Location. */
export function work(directory: () => UserDirectory) {
  return async (ctx: RouteContext<NewMemberBody> & WithPii): Promise<Reply> => {
    const { mctx, deps } = memberCall(ctx, directory());
    const member = await addMember(mctx, deps, ctx.body);
    return created(member, `/api/${ctx.tenantId}/members/${member.userId}`);
  };
}

export const handler = route(routes.createMember, work(containerDirectory), { pii: containerPii });
