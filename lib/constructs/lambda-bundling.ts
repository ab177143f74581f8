/**
 * How every Lambda bundle resolves its modules: the one definition that `TenantFunction` (deployed
 * bundles), the bundling test and the API benchmark share, so that what is measured and tested is what
 * ships.
 *
 * - `mainFields: module, main`: the SDK clients' ES module builds, so that esbuild tree-shakes the
 *   `@smithy/core` and `@aws-sdk/core` barrels the clients import (their CommonJS builds keep every
 *   export: a CommonJS `require` of a barrel cannot be shaken).
 * - `alias`: `@aws-sdk/credential-provider-node` (the SDK's default credential chain) is replaced by
 *   `functions/core/env-credential-provider.ts`, the environment link alone. In Lambda the function's
 *   credentials are always in the environment, where the default chain's first link finds them; the
 *   other links never run there. No route bundle carries an SDK client any more (the migration function
 *   takes Secrets Manager's from the runtime): KMS, Cognito and SQS are called through
 *   `functions/core/aws-json.ts`, S3 and STS through `aws-s3.ts` and `aws-sts.ts`, all on the one small
 *   transport `aws-client.ts`, which reads the function's credentials from the environment alone; so every
 *   route without S3 stays within 250 KiB and every S3 route within 270 KiB. Proved by
 *   `test/infra/bundling.test.ts`, which runs the synthesized bundles in a child node with credentials
 *   only in the environment against the emulator.
 * - No X-Ray SDK: tracing is functions/core/xray.ts, so the SDK's dependencies (`semver`, once replaced
 *   here by a stand-in, cls-hooked) are in no bundle.
 * - `alias`: aws-jwt-verify's `#node-web-compat` (its Node layer: key handling, signature checks and its
 *   default HTTPS fetcher) is replaced by `functions/core/jwt-web-compat.ts`, the same checks without that
 *   fetcher, which the functions never use (auth.ts gives the verifier its own): no bundle loads
 *   `node:https` for it at import.
 * - `alias`: `perf_hooks` is replaced by `functions/core/perf-hooks.ts`, `performance.now()` from
 *   `functions/core/clock.ts`: postgres.js, the one bundled module that requires it, uses nothing else of
 *   it, and loading it costs about a millisecond of every cold start (the functions' own code uses the
 *   clock directly). The bundling test checks that no bundle requires it.
 */

/** esbuild `mainFields` of every Lambda bundle. */
export const LAMBDA_MAIN_FIELDS: readonly string[] = ['module', 'main'];

/** esbuild `alias` of every Lambda bundle; paths relative to the repository root (esbuild's working directory). */
export const LAMBDA_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': './functions/core/env-credential-provider.ts',
  '#node-web-compat': './functions/core/jwt-web-compat.ts',
  perf_hooks: './functions/core/perf-hooks.ts',
};
