/** Shared between global setup and teardown, which run in the same process. */
const key = Symbol.for('tenant-sovereign.test-handles');
type Handles = { stop?: () => Promise<void> };
export const handles: Handles = ((globalThis as Record<symbol, Handles>)[key] ??= {});
