/**
 * The usage metrics the platform meters. They live in core (not in the route manifest) because the
 * metering, billing and the manifest all name them, and core must never depend on the manifest.
 */
export const METRICS = ['api_requests', 'documents', 'storage_bytes', 'ai_tokens'] as const;
/** One metered quantity (a column value of app.usage_counters.metric). */
export type Metric = (typeof METRICS)[number];
