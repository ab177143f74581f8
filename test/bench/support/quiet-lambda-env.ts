/**
 * Import first in a benchmark that calls route handlers in-process: the container's logger and metrics
 * (functions/core/logger.ts, emf-metrics.ts) read their settings from the environment when their module loads, and a benchmark wants
 * neither a log line nor an EMF blob per request on stdout (writing them would also be measured).
 * Values already set in the environment win.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
process.env.POWERTOOLS_DEV ??= 'false';

export {};
