import { route } from '../core/handler';
import { ok } from '../core/http';
import { openApiDocument } from './openapi-document';

const document = openApiDocument(); // built once per container

export const handler = route('openapi', async () => ok(document));
