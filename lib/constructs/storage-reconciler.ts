/**
 * The storage reconciler deployed (functions/documents/reconcile.ts): a function run by an EventBridge
 * schedule that removes abandoned uploads (with their quota) and objects without a document. It logs in
 * through the proxy as the runtime role (`app_runtime`: tenant rows only through row-level security,
 * counters only through the metering functions) and may assume the tenant-access role, whose sessions
 * it always narrows to one tenant's prefix; nothing else. An alarm fires when a run fails.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { Database } from './database';
import type { TenantStorage } from './storage';
import { TenantFunction } from './tenant-function';

/** How often the reconciler runs. */
export const RECONCILE_EVERY = Duration.hours(1);

export interface StorageReconcilerProps {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly database: Database;
  readonly storage: TenantStorage;
  /** Reserve one concurrent execution (one run at a time) where the account has concurrency to reserve. */
  readonly reserveConcurrency: boolean;
  readonly logRetention: logs.RetentionDays;
  readonly environmentName: string;
  /** The functions' configuration (functions/core/config.ts). */
  readonly environment: Record<string, string>;
}

export class StorageReconciler extends Construct {
  public readonly reconciler: TenantFunction;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: StorageReconcilerProps) {
    super(scope, id);
    this.reconciler = new TenantFunction(this, 'Function', {
      entry: 'functions/documents/reconcile-scheduled.ts',
      description: 'Storage reconciler: removes abandoned uploads (releasing their quota) and objects without a document',
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.database.clientSecurityGroup],
      memoryMiB: 512,
      timeout: Duration.minutes(10),
      logRetention: props.logRetention,
      reservedConcurrency: props.reserveConcurrency ? 1 : undefined,
      environment: props.environment,
    });
    props.database.grantRuntimeConnect(this.reconciler);
    props.storage.trust(this.reconciler.role!);
    new events.Rule(this, 'Schedule', {
      description: `${props.environmentName}: storage reconciler`,
      schedule: events.Schedule.rate(RECONCILE_EVERY),
      targets: [new targets.LambdaFunction(this.reconciler, { retryAttempts: 1 })],
    });
    this.alarms.push(
      new cloudwatch.Alarm(this, 'Errors', {
        metric: this.reconciler.metricErrors({ period: Duration.hours(1), statistic: 'Sum' }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${props.environmentName}: the storage reconciler failed`,
      }),
    );
  }
}
