import { route } from '../core/handler';
import { routes } from '../routes';
import { JsonText, ok } from '../core/http';

declare global {
  // Defined `true` in this route's bundle, where `@tenant/openapi-document` is the document built at
  // bundling time from the same manifest (lib/constructs/input-validators.ts).
  var __TENANT_OPENAPI_PREBUILT__: boolean | undefined;
}

/**
 * The document as JSON text, served as it is: built once per container from the manifest, or, in the
 * bundle, the text built at bundling time (never parsed, never serialized again).
 */
const document = new JsonText(
  globalThis.__TENANT_OPENAPI_PREBUILT__ === true
    ? (require('@tenant/openapi-document') as { json: string }).json
    : JSON.stringify((require('./openapi-document') as typeof import('./openapi-document')).openApiDocument()),
);

export const handler = route(routes.openapi, async () => ok(document));
