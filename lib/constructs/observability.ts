/**
 * A dashboard and alarms per environment, all notifying one encrypted SNS topic:
 *  - API 5xx rate and p99 latency (API Gateway metrics of the stage);
 *  - throttles: API Gateway 429s answered by stage throttling or WAF, and Lambda throttles of any route;
 *  - quota rejections (the functions' EMF metric `QuotaRejections`, see functions/core/handler.ts);
 *  - RDS Proxy session pinning (`DatabaseConnectionsCurrentlySessionPinned` above 0): functions keep
 *    postgres.js prepared statements on (DB_PREPARE=true: a one-flush read is 1 round trip, 5 with them
 *    off, `npm run bench:db`), which the proxy may pin on; this alarm says when it does;
 *  - AssumeRole errors of the tenant-access role, counted from the storage routes' logs.
 *
 * Per-tenant views are Logs Insights queries over the functions' one `request` log line per request
 * (functions/core/request-log.ts), saved as query definitions and shown on the dashboard: the tenant is
 * a log field and EMF metadata, never a metric dimension, so metrics do not grow with tenants.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME } from './tenant-function';

export interface ObservabilityProps {
  readonly environmentName: string;
  readonly apiName: string;
  readonly stageName: string;
  readonly proxyName: string;
  /** Route functions by route id. */
  readonly functions: ReadonlyMap<string, lambda.IFunction>;
  /** Log groups of every route function: the per-tenant queries read them all. */
  readonly routeLogGroups: readonly logs.ILogGroup[];
  /** Log groups of routes that assume the tenant-access role. */
  readonly storageLogGroups: readonly logs.ILogGroup[];
  /** Ids of the metered routes (the only ones that can answer 429 for a quota). */
  readonly meteredRouteIds: readonly string[];
  readonly p99LatencyMs: number;
  readonly serverErrorRatePercent: number;
}

export const ASSUME_ROLE_ERROR_METRIC = 'TenantAssumeRoleErrors';

const REQUEST_LINE = 'message = "request" and ispresent(tenant_id)';

/** The per-tenant views: Logs Insights queries over the request lines, by name. */
export const TENANT_QUERIES: Readonly<Record<string, logs.QueryStringProps>> = {
  'Top tenants by requests': {
    filterStatements: [REQUEST_LINE],
    statsStatements: ['count(*) as requests by tenant_id'],
    sort: 'requests desc',
    limit: 25,
  },
  'Tenants by errors': {
    filterStatements: [REQUEST_LINE, 'status >= 400'],
    statsStatements: ['count(*) as errors by tenant_id, status'],
    sort: 'errors desc',
    limit: 50,
  },
  'Tenants by latency': {
    filterStatements: [REQUEST_LINE],
    statsStatements: ['count(*) as requests, avg(duration_ms) as avg_ms, pct(duration_ms, 99) as p99_ms by tenant_id'],
    sort: 'p99_ms desc',
    limit: 25,
  },
  'Tenants by quota refusals': {
    filterStatements: [REQUEST_LINE, 'status = 429'],
    statsStatements: ['count(*) as refusals by tenant_id, reason'],
    sort: 'refusals desc',
    limit: 25,
  },
};

export class Observability extends Construct {
  public readonly alarmTopic: sns.Topic;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const topicKey = new kms.Key(this, 'AlarmTopicKey', { enableKeyRotation: true, description: 'Encrypts alarm notifications' });
    // CloudWatch alarms publish to the encrypted topic.
    topicKey.grantEncryptDecrypt(new iam.ServicePrincipal('cloudwatch.amazonaws.com'));
    this.alarmTopic = new sns.Topic(this, 'Alarms', { masterKey: topicKey, enforceSSL: true });
    const api = { ApiName: props.apiName, Stage: props.stageName };
    const period = Duration.minutes(5);

    const requests = new cloudwatch.Metric({ namespace: 'AWS/ApiGateway', metricName: 'Count', dimensionsMap: api, statistic: 'Sum', period });
    const errors5xx = new cloudwatch.Metric({ namespace: 'AWS/ApiGateway', metricName: '5XXError', dimensionsMap: api, statistic: 'Sum', period });
    const errorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: errors5xx },
      label: '5xx rate (%)',
      period,
    });
    const latencyP99 = new cloudwatch.Metric({ namespace: 'AWS/ApiGateway', metricName: 'Latency', dimensionsMap: api, statistic: 'p99', period });
    const throttlesOf = [...props.functions].map(([route, fn]) => [route, fn.metricThrottles({ period, statistic: 'Sum', label: route })] as const);
    const quota = new cloudwatch.MathExpression({
      expression: `SUM(SEARCH('{${METRICS_NAMESPACE},route,service} MetricName="QuotaRejections" service="${POWERTOOLS_SERVICE_NAME}"', 'Sum', 300))`,
      label: 'Quota rejections',
      period,
    });
    // CloudWatch alarms take at most 10 metrics per math expression: one alarm per group of 10 routes.
    const quotaGroups: string[][] = [];
    for (let i = 0; i < props.meteredRouteIds.length; i += 10) quotaGroups.push(props.meteredRouteIds.slice(i, i + 10));
    const quotaAlarmMetrics = quotaGroups.map(
      (group, g) =>
        new cloudwatch.MathExpression({
          expression: group.map((_, i) => `q${i}`).join(' + '),
          usingMetrics: Object.fromEntries(
            group.map((route, i) => [
              `q${i}`,
              new cloudwatch.Metric({
                namespace: METRICS_NAMESPACE,
                metricName: 'QuotaRejections',
                dimensionsMap: { service: POWERTOOLS_SERVICE_NAME, route },
                statistic: 'Sum',
                period,
              }),
            ]),
          ),
          label: `Quota rejections (alarm${g === 0 ? '' : ` ${g + 1}`})`,
          period,
        }),
    );
    const pinned = new cloudwatch.Metric({
      namespace: 'AWS/RDS',
      metricName: 'DatabaseConnectionsCurrentlySessionPinned',
      dimensionsMap: { ProxyName: props.proxyName },
      statistic: 'Maximum',
      period: Duration.minutes(1),
    });
    props.storageLogGroups.forEach((logGroup, i) => {
      new logs.MetricFilter(this, `AssumeRoleErrorFilter${i}`, {
        logGroup,
        // An STS refusal names the action; an incomplete answer has its own message (functions/core/storage-credentials.ts).
        filterPattern: logs.FilterPattern.anyTerm('sts:AssumeRole', 'AssumeRole answered'),
        metricNamespace: METRICS_NAMESPACE,
        metricName: ASSUME_ROLE_ERROR_METRIC,
        metricValue: '1',
        defaultValue: 0,
      });
    });
    const assumeRoleErrors = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: ASSUME_ROLE_ERROR_METRIC,
      statistic: 'Sum',
      period,
    });
    const apiThrottles = new cloudwatch.Metric({ namespace: 'AWS/ApiGateway', metricName: '4XXError', dimensionsMap: api, statistic: 'Sum', period });

    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string, evaluationPeriods = 1): void => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${props.environmentName}: ${description}`,
      });
      a.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      this.alarms.push(a);
    };
    alarm('ServerErrorRate', errorRate, props.serverErrorRatePercent, `API 5xx rate above ${props.serverErrorRatePercent}%`, 2);
    alarm('LatencyP99', latencyP99, props.p99LatencyMs, `API p99 latency above ${props.p99LatencyMs} ms`, 3);
    for (const [route, metric] of throttlesOf) {
      alarm(`Throttles${route.charAt(0).toUpperCase()}${route.slice(1)}`, metric, 0, `the ${route} function was throttled (concurrency limit)`);
    }
    quotaAlarmMetrics.forEach((metric, g) =>
      alarm(`QuotaRejections${g === 0 ? '' : g + 1}`, metric, 100, `more than 100 quota rejections in 5 minutes${g === 0 ? '' : ` (routes group ${g + 1})`}`),
    );
    alarm('ProxySessionPinning', pinned, 0, 'RDS Proxy connections are pinned (DatabaseConnectionsCurrentlySessionPinned > 0)');
    alarm('AssumeRoleErrors', assumeRoleErrors, 0, 'AssumeRole of the tenant-access role failed');

    const queryFolder = `${props.environmentName}/tenants`;
    const tenantViews = Object.entries(TENANT_QUERIES).map(([name, query]) => {
      const queryString = new logs.QueryString(query);
      new logs.QueryDefinition(this, `Query${name.replace(/[^A-Za-z]/g, '')}`, {
        queryDefinitionName: `${queryFolder}/${name}`,
        queryString,
        logGroups: [...props.routeLogGroups],
      });
      return new cloudwatch.LogQueryWidget({
        title: name,
        logGroupNames: props.routeLogGroups.map((g) => g.logGroupName),
        queryString: queryString.toString(),
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 12,
        height: 6,
      });
    });
    const insights = `https://console.aws.amazon.com/cloudwatch/home?region=${Stack.of(this).region}#logsV2:logs-insights`;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new cloudwatch.GraphWidget({ title: 'Requests and 5xx', left: [requests, errors5xx], width: 8 }),
          new cloudwatch.GraphWidget({ title: '5xx rate (%)', left: [errorRate], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'Latency p99 (ms)', left: [latencyP99], width: 8 }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Throttles (Lambda) and 4xx (API)', left: throttlesOf.map(([, m]) => m), right: [apiThrottles], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'Quota rejections', left: [quota], width: 8 }),
          new cloudwatch.GraphWidget({ title: 'Proxy pinned connections / AssumeRole errors', left: [pinned], right: [assumeRoleErrors], width: 8 }),
        ],
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
        [
          new cloudwatch.TextWidget({
            markdown: [
              '## Per tenant (last 3 hours, from the request log lines)',
              `Saved queries in [CloudWatch Logs Insights](${insights}) (folder \`${queryFolder}\`): ` +
                Object.keys(TENANT_QUERIES).join(' · ') +
                '. The tenant is a log field, not a metric dimension.',
            ].join('\n\n'),
            width: 24,
            height: 2,
          }),
        ],
        tenantViews.slice(0, 2),
        tenantViews.slice(2),
      ],
    });
  }
}
