/**
 * What the bundles get for `perf_hooks` (lib/constructs/lambda-bundling.ts aliases it here): the one
 * member any bundled module uses, postgres.js's `performance.now()` (reconnect delays), from our clock.
 * The bundling test checks that no bundle requires `perf_hooks` any more.
 */
import { monotonicMs } from './clock';

export const performance = { now: monotonicMs };
