/**
 * Build-time input validators: for one route, the ajv standalone code of its manifest schemas
 * (functions/core/validate-compile.ts), written where esbuild can resolve ajv's small runtime helpers,
 * and the esbuild settings that make functions/core/validate.ts use it instead of compiling at cold
 * start (which would bundle ajv: ~124 KB and 50–80 ms of init).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RouteSpec } from '../../functions/core/route-spec';
import { standaloneInputValidators } from '../../functions/core/validate-compile';

/** What validate.ts imports in a bundle, aliased to the generated module. */
export const VALIDATORS_MODULE = '@tenant/input-validators';
/** The flag validate.ts tests; defined as `true` in bundles only. */
export const STANDALONE_FLAG = 'globalThis.__TENANT_STANDALONE_VALIDATORS__';

/**
 * The flag functions/routes.ts tests: defined as `false` in every route's bundle but the OpenAPI
 * route's, which alone reads the manifest's response schemas; esbuild then leaves them out.
 */
export const ROUTE_DOCS_FLAG = 'globalThis.__TENANT_ROUTE_DOCS__';
/** The handler that serves the OpenAPI document. */
const OPENAPI_HANDLER = 'platform/openapi';

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
  return {
    dir,
    define: { [STANDALONE_FLAG]: 'true', ...(spec.handler === OPENAPI_HANDLER ? {} : { [ROUTE_DOCS_FLAG]: 'false' }) },
    alias: { [VALIDATORS_MODULE]: path.join(dir, 'index.js') },
  };
}
