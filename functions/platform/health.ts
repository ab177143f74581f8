import { route } from '../core/handler';
import { routes } from '../routes';
import { ok } from '../core/http';

/** Liveness: answers without touching any dependency, so a database outage does not hide the function. */
export const handler = route(routes.health, async () => ok({ status: 'ok' }));
