/**
 * The one place that sets the defaults of every Lambda function in this project (route handlers and the
 * migration custom resource alike): NodejsFunction bundled by the local esbuild (never Docker), ARM64,
 * Node.js 22, minified (source maps built, not loaded at run time), X-Ray active tracing, a log group with retention, Powertools'
 * settings (functions/core/logger.ts and emf-metrics.ts read the same variables), and a VPC placement.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ValidatorBundling } from './input-validators';
import { LAMBDA_ALIASES, LAMBDA_MAIN_FIELDS } from './lambda-bundling';

/** The repository root: entries, the lock file and db/migrations are found from here. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Powertools' service name and metrics namespace, as functions/core/observability.ts sets them. */
export const POWERTOOLS_SERVICE_NAME = 'tenant-api';
export const METRICS_NAMESPACE = 'TenantSovereign';

export interface TenantFunctionProps {
  /** Entry file, relative to the repository root (`functions/documents/list.ts`). */
  readonly entry: string;
  readonly description: string;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  readonly memoryMiB: number;
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  /** @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** Added to (and overriding) the defaults below. */
  readonly environment?: Record<string, string>;
  /**
   * Modules left out of the bundle because the Lambda runtime provides them. Empty by default: the
   * routes rely on the pinned SDK versions of package.json, so the SDK is bundled.
   * @default []
   */
  readonly externalModules?: string[];
  /** esbuild command hooks (e.g. copying SQL files next to the bundle). */
  readonly commandHooks?: nodejs.ICommandHooks;
  /** Concurrent executions reserved for, and capping, this function. @default none reserved */
  readonly reservedConcurrency?: number;
  /**
   * The route's input validators generated at bundling time (`writeInputValidators`); without them a
   * route handler would compile its schemas at cold start. @default none (not a route)
   */
  readonly inputValidators?: ValidatorBundling;
}

export class TenantFunction extends nodejs.NodejsFunction {
  /** The function's own log group (retention set), for metric filters and alarms. */
  public readonly functionLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TenantFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    super(scope, id, {
      entry: path.join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment: {
        // No NODE_OPTIONS=--enable-source-maps: Node then parses the bundle's map at every cold start, which
        // measured 9–25 ms of a 35 ms import budget (npm run bench:api, "source maps on"). The map still ships
        // beside the bundle (no sources content), so a minified stack trace from the logs can be resolved
        // offline against the exact build, or by running the bundle locally with the flag.
        // The Lambda image's bundle includes the RDS certificate authorities: TLS verify-full to RDS.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        AWS_NODEJS_CONNECTION_REUSE_ENABLED: '1',
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node22',
        format: nodejs.OutputFormat.CJS,
        // esbuild's per-bundle size table is noise in every synth; warnings and errors still show.
        logLevel: nodejs.LogLevel.WARNING,
        externalModules: props.externalModules ?? [],
        mainFields: [...LAMBDA_MAIN_FIELDS],
        commandHooks: props.commandHooks,
        define: props.inputValidators?.define,
        // One `--alias` list: the bundles' own substitutions and, for a route, its generated validators.
        esbuildArgs: {
          '--alias': Object.entries({ ...LAMBDA_ALIASES, ...props.inputValidators?.alias }).map(([from, to]) => `${from}=${to}`),
        },
      },
    });
    this.functionLogs = logGroup;

    // What every function built here has, acknowledged once, next to the defaults that cause it.
    const managed = 'arn:<AWS::Partition>:iam::aws:policy/service-role';
    Validations.of(this).acknowledge(
      {
        id: `AwsSolutions-IAM4[Policy::${managed}/AWSLambdaBasicExecutionRole]`,
        reason: 'The AWS basic execution policy lets the function write its own logs; nothing else.',
      },
      {
        id: `AwsSolutions-IAM4[Policy::${managed}/AWSLambdaVPCAccessExecutionRole]`,
        reason: "The AWS VPC access policy lets Lambda manage the function's network interfaces.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.',
      },
      {
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime this project targets and tests (engines, esbuild target node22).',
      },
    );
  }
}
