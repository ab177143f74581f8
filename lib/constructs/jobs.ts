/**
 * Long work deployed: exports and offboarding run as jobs (functions/lifecycle/jobs.ts: the job row is
 * the truth, every step idempotent). What drives them:
 *  - an SQS queue (SQS-managed encryption, TLS only) whose messages carry only a job id; the routes that
 *    create jobs send to it after their commit (RouteFunctions grants them sqs:SendMessage);
 *  - the job runner, a function triggered by the queue with partial batch responses: a job stopped at a
 *    failed step is reported failed and SQS delivers it again after the visibility timeout, up to
 *    {@link MAX_RECEIVE_COUNT} times, then moves it to the dead-letter queue;
 *  - the job sweeper, run by an EventBridge schedule, which sends again every job whose message was lost
 *    (pending for minutes, or running with an expired lease);
 *  - alarms: any message in the dead-letter queue, and the runner's `JobStepFailures` metric.
 *
 * Both functions log in through the proxy as the control-plane role (`app_control`) and nothing else.
 * The runner may in addition do exactly what the steps do: assume the tenant-access role (every session
 * narrowed to one tenant's prefix by its session policy), `kms:Decrypt` of tenant data keys (an export
 * decrypts the members' emails; the shred deletes the wrapped key in the database and needs no KMS call)
 * and `cognito-idp:AdminDeleteUser` on this user pool (offboarding's users step).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Database } from './database';
import type { TenantStorage } from './storage';
import { METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, TenantFunction } from './tenant-function';

/** Deliveries of one message before it moves to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;
/** The runner's timeout: under the job lease (300 s, functions/jobs/sweep.ts), so two runners never hold one job. */
export const JOB_RUNNER_TIMEOUT = Duration.minutes(4);
/** Runners at once (the event source's maxConcurrency): bounds the control-plane connections jobs hold. */
export const MAX_RUNNERS = 5;
/** How often the sweeper looks for stranded jobs. */
export const SWEEP_EVERY = Duration.minutes(5);
/** The runner's metric for a job stopped at a failed step (functions/jobs/run.ts JOB_FAILURE_METRIC). */
export const JOB_FAILURE_METRIC = 'JobStepFailures';

export interface JobsProps {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly database: Database;
  readonly storage: TenantStorage;
  readonly piiKey: kms.IKey;
  readonly userPool: cognito.IUserPool;
  readonly memoryMiB: number;
  /**
   * Concurrency reserved for the runner (the sweeper gets 1 when this is set); unset where the account
   * has no concurrency to reserve (dev). The queue never runs more than {@link MAX_RUNNERS} at once anyway.
   */
  readonly reservedConcurrency?: number;
  readonly logRetention: logs.RetentionDays;
  readonly environmentName: string;
  /** The functions' configuration (functions/core/config.ts), JOB_QUEUE_URL included. */
  readonly environment: Record<string, string>;
}

/** The job queue; created before the route functions, which send to it. */
export class JobQueue extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Long enough for an operator to read the alarm, fix the cause and redrive.
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // At least the runner's timeout (Lambda requires it), with room: also the back-off between retries.
      visibilityTimeout: JOB_RUNNER_TIMEOUT.plus(Duration.minutes(2)),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
  }
}

/** The runner, the sweeper and their alarms. */
export class JobRunner extends Construct {
  public readonly runner: TenantFunction;
  public readonly sweeper: TenantFunction;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, queue: JobQueue, props: JobsProps) {
    super(scope, id);
    const environment = props.environment;
    const common = {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.database.clientSecurityGroup],
      logRetention: props.logRetention,
      environment,
    };

    this.runner = new TenantFunction(this, 'Runner', {
      ...common,
      entry: 'functions/jobs/run.ts',
      description: 'Job runner: runs exports and offboardings from the job queue, step by step',
      // An export bundle is built in memory.
      memoryMiB: Math.max(props.memoryMiB, 1024),
      timeout: JOB_RUNNER_TIMEOUT,
      reservedConcurrency: props.reservedConcurrency === undefined ? undefined : Math.min(props.reservedConcurrency, MAX_RUNNERS),
    });
    this.runner.addEventSource(
      new sources.SqsEventSource(queue.queue, { batchSize: 1, reportBatchItemFailures: true, maxConcurrency: MAX_RUNNERS }),
    );
    props.database.grantControlConnect(this.runner);
    props.storage.trust(this.runner.role!);
    this.runner.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [props.piiKey.keyArn],
        // Every PII data key is wrapped with the encryption context {tenant_id}.
        conditions: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'tenant_id' } },
      }),
    );
    this.runner.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['cognito-idp:AdminDeleteUser'], resources: [props.userPool.userPoolArn] }),
    );

    this.sweeper = new TenantFunction(this, 'Sweeper', {
      ...common,
      entry: 'functions/jobs/sweep.ts',
      description: 'Job sweeper: sends stranded jobs (lost message, expired lease) to the job queue again',
      memoryMiB: 256,
      timeout: Duration.minutes(1),
      // One sweep at a time.
      reservedConcurrency: props.reservedConcurrency === undefined ? undefined : 1,
    });
    props.database.grantControlConnect(this.sweeper);
    queue.queue.grantSendMessages(this.sweeper);
    new events.Rule(this, 'SweepSchedule', {
      description: `${props.environmentName}: job sweeper`,
      schedule: events.Schedule.rate(SWEEP_EVERY),
      targets: [new targets.LambdaFunction(this.sweeper, { retryAttempts: 2 })],
    });

    const period = Duration.minutes(5);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, description: string) => {
      this.alarms.push(
        new cloudwatch.Alarm(this, alarmId, {
          metric,
          threshold: 0,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription: `${props.environmentName}: ${description}`,
        }),
      );
    };
    alarm(
      'DeadLetters',
      queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      `a job failed ${MAX_RECEIVE_COUNT} times and waits in the dead-letter queue (see the job row's last_error; redrive once fixed)`,
    );
    alarm(
      'JobStepFailures',
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: JOB_FAILURE_METRIC,
        dimensionsMap: { service: POWERTOOLS_SERVICE_NAME },
        statistic: 'Sum',
        period,
      }),
      'a job stopped at a failed step (retried by the queue)',
    );
    alarm('SweeperErrors', this.sweeper.metricErrors({ period, statistic: 'Sum' }), 'the job sweeper failed');
  }
}
