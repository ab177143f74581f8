import { route } from '../core/handler';
import { routes } from '../routes';
import { ok } from '../core/http';

declare global {
  // Defined `true` in this route's bundle, where `@tenant/openapi-document` is the document built at
  // bundling time from the same manifest (lib/constructs/input-validators.ts).
  var __TENANT_OPENAPI_PREBUILT__: boolean | undefined;
}

/** Built once per container from the manifest, or, in the bundle, read from the one built at bundling. */
const document: object =
  globalThis.__TENANT_OPENAPI_PREBUILT__ === true
    ? (require('@tenant/openapi-document') as { document: object }).document
    : (require('./openapi-document') as typeof import('./openapi-document')).openApiDocument();

export const handler = route(routes.openapi, async () => ok(document));
