import { directory as containerDirectory, type UserDirectory } from '../core/cognito';
import { route, type RouteContext, type WithPii } from '../core/handler';
import { noContent, type Reply } from '../core/http';
import { pii as containerPii } from '../core/pii';
import { routes } from '../routes';
import { memberCall } from './deps';
import { removeMember } from './membership';

/** Removes a member: Cognito user disabled then deleted, row gone. The last active org_admin → 409. */
export function work(directory: () => UserDirectory) {
  return async (ctx: RouteContext & WithPii): Promise<Reply> => {
    const { mctx, deps } = memberCall(ctx, directory());
    await removeMember(mctx, deps, ctx.params.userId!);
    return noContent();
  };
}

export const handler = route(routes.deleteMember, work(containerDirectory), { pii: containerPii });
