import { route } from '../core/handler';
import { routes } from '../routes';
import { ok } from '../core/http';
import { openApiDocument } from './openapi-document';

const document = openApiDocument(); // built once per container

export const handler = route(routes.openapi, async () => ok(document));
