/**
 * Build-time input validators: for one route, the ajv standalone code of its manifest schemas
 * (functions/core/validate-compile.ts), written where esbuild can resolve ajv's small runtime helpers,
 * and the esbuild settings that make functions/core/validate.ts use it instead of compiling at cold
 * start (which would bundle ajv: ~124 KB and 50–80 ms of init).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { RouteSpec } from '../../functions/core/route-spec';
import { standaloneInputValidators } from '../../functions/core/validate-compile';
import { openApiDocument } from '../../functions/platform/openapi-document';

/** What validate.ts imports in a bundle, aliased to the generated module. */
export const VALIDATORS_MODULE = '@tenant/input-validators';
/** The flag validate.ts tests; defined as `true` in bundles only. */
export const STANDALONE_FLAG = 'globalThis.__TENANT_STANDALONE_VALIDATORS__';

/**
 * The flag functions/routes.ts tests: defined as `false` in every route's bundle (the OpenAPI route's
 * too, whose document is built at bundling time); esbuild then leaves the response schemas out.
 */
export const ROUTE_DOCS_FLAG = 'globalThis.__TENANT_ROUTE_DOCS__';
/** The handler that serves the OpenAPI document. */
const OPENAPI_HANDLER = 'platform/openapi';
/**
 * What functions/platform/openapi.ts requires in its bundle, aliased to the document built here, and the
 * flag it tests: the document is built once at bundling time (from the same manifest), not at each cold
 * start (~4.6 ms), and its bundle leaves the response schemas out like every other.
 */
export const OPENAPI_DOCUMENT_MODULE = '@tenant/openapi-document';
export const OPENAPI_PREBUILT_FLAG = 'globalThis.__TENANT_OPENAPI_PREBUILT__';

/** The esbuild settings for a bundle that validates with generated code. */
export interface ValidatorBundling {
  /** The generated module's directory (its `index.js` is the entry). */
  readonly dir: string;
  readonly define: Record<string, string>;
  readonly alias: Record<string, string>;
}

/**
 * Writes the standalone validators of `spec` under `<projectRoot>/node_modules/.cache/input-validators/<routeId>`
 * (inside the project, so that `require("ajv/dist/runtime/…")` in the generated code resolves).
 */
export function writeInputValidators(projectRoot: string, routeId: string, spec: RouteSpec): ValidatorBundling {
  const dir = path.join(projectRoot, 'node_modules', '.cache', 'input-validators', routeId);
  mkdirSync(dir, { recursive: true });
  for (const [name, code] of Object.entries(standaloneInputValidators(routeId, spec))) {
    writeFileSync(path.join(dir, name), code);
  }
  const define: Record<string, string> = { [STANDALONE_FLAG]: 'true', [ROUTE_DOCS_FLAG]: 'false' };
  const alias: Record<string, string> = { [VALIDATORS_MODULE]: path.join(dir, 'index.js') };
  if (spec.handler === OPENAPI_HANDLER) {
    const file = path.join(dir, 'openapi-document.js');
    // Gzipped (134 KB of JSON in ~15 KB of base64, so the bundle keeps within its budget), unpacked
    // once at load into the text the route serves: never parsed (functions/platform/openapi.ts).
    const packed = gzipSync(JSON.stringify(openApiDocument()), { level: 9 }).toString('base64');
    writeFileSync(
      file,
      `'use strict';\nexports.json = require('node:zlib').gunzipSync(Buffer.from('${packed}', 'base64')).toString('utf8');\n`,
    );
    define[OPENAPI_PREBUILT_FLAG] = 'true';
    alias[OPENAPI_DOCUMENT_MODULE] = file;
  }
  return { dir, define, alias };
}
