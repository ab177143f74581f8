/**
 * Logger, tracer and metrics, created once per container and imported by everything that reports.
 * Every log line of a request carries tenant_id, user_id, role, action_type, route and request_id
 * (appended by the handler wrapper); never a token, an email or any other PII.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

const serviceName = 'tenant-api';

export const logger = new Logger({ serviceName });
export const tracer = new Tracer({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: 'TenantSovereign' });

export { MetricUnit } from '@aws-lambda-powertools/metrics';
