import { route, type RouteContext, type WithPii } from '../core/handler';
import { ok, type Reply } from '../core/http';
import { pii as containerPii } from '../core/pii';
import { routes } from '../routes';
import { boundPii } from './deps';
import { getMember } from './membership';

/** One member of the request's tenant; another tenant's user id is 404 like an unknown one. */
export async function work(ctx: RouteContext & WithPii): Promise<Reply> {
  return ok(await getMember(ctx, { pii: boundPii(ctx) }, ctx.params.userId!));
}

export const handler = route(routes.getMember, work, { pii: containerPii });
