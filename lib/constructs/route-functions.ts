/**
 * One Lambda function per route of the manifest (functions/routes.ts), each with only the permissions
 * its manifest entry implies:
 *  - `rds-db:connect` through the proxy as `app_runtime` for tenant routes and as `app_control` (the
 *    control plane) for platform routes, never both (public routes, health and the OpenAPI document,
 *    touch no dependency);
 *  - `sts:AssumeRole` on the tenant-access role (and a place in its trust policy): `usesStorage` routes;
 *  - `kms:Decrypt` on the PII key with a tenant encryption context: `usesPii` routes; `kms:GenerateDataKey`
 *    too only for a route that `createsDataKeys` (onboarding);
 *  - `cognito-idp:Admin*`: exactly the actions a route's `directory` lists, on this user pool only;
 *  - `sqs:SendMessage` on the job queue: routes that `enqueuesJobs`.
 */
import { Duration } from 'aws-cdk-lib';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { RouteId, RouteSpec } from '../../functions/routes';
import type { Database } from './database';
import type { TenantStorage } from './storage';
import { writeInputValidators } from './input-validators';
import { PROJECT_ROOT, TenantFunction } from './tenant-function';

export type ManifestRoute = RouteSpec & { readonly id: RouteId };

export interface RouteFunctionsProps {
  /** The manifest (`routeList`). */
  readonly routes: readonly ManifestRoute[];
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly database: Database;
  readonly storage: TenantStorage;
  readonly piiKey: kms.IKey;
  /** The pool whose users the member routes manage. */
  readonly userPool: cognito.IUserPool;
  /** The queue the deployed job runner consumes (routes that create jobs send their ids there). */
  readonly jobQueue: sqs.IQueue;
  readonly memoryMiB: number;
  readonly timeout: Duration;
  /** Concurrent executions reserved for, and capping, each route function. @default none reserved */
  readonly reservedConcurrency?: number;
  readonly logRetention: logs.RetentionDays;
  /** Environment shared by every route (the settings functions/core/config.ts reads). */
  readonly environment: Record<string, string>;
}

/** True when the route reaches the database (everything but the dependency-free public routes). */
export function usesDatabase(route: ManifestRoute): boolean {
  return route.auth !== 'public';
}

export class RouteFunctions extends Construct {
  /** By route id. */
  public readonly functions: ReadonlyMap<RouteId, TenantFunction>;

  constructor(scope: Construct, id: string, props: RouteFunctionsProps) {
    super(scope, id);
    const functions = new Map<RouteId, TenantFunction>();
    for (const route of props.routes) {
      const fn = new TenantFunction(this, pascal(route.id), {
        entry: `functions/${route.handler}.ts`,
        description: `${route.method} ${route.path}: ${route.summary}`.slice(0, 256),
        vpc: props.vpc,
        vpcSubnets: props.vpcSubnets,
        securityGroups: [props.database.clientSecurityGroup],
        memoryMiB: props.memoryMiB,
        timeout: props.timeout,
        logRetention: props.logRetention,
        reservedConcurrency: props.reservedConcurrency,
        environment: props.environment,
        inputValidators: writeInputValidators(PROJECT_ROOT, route.id, route),
      });
      if (route.auth === 'platform') props.database.grantControlConnect(fn);
      else if (usesDatabase(route)) props.database.grantRuntimeConnect(fn);
      if (route.usesStorage) props.storage.trust(fn.role!);
      if (route.usesPii) {
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: route.createsDataKeys ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
            resources: [props.piiKey.keyArn],
            // Every PII data key is wrapped with the encryption context {tenant_id}.
            conditions: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'tenant_id' } },
          }),
        );
      }
      if (route.directory && route.directory.length > 0) {
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: route.directory.map((action) => `cognito-idp:${action}`),
            resources: [props.userPool.userPoolArn],
          }),
        );
      }
      if (route.enqueuesJobs) props.jobQueue.grantSendMessages(fn);
      functions.set(route.id, fn);
    }
    this.functions = functions;
  }
}

function pascal(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1);
}
