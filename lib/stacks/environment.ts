/**
 * One environment (dev, staging or prod): its stack, named `<Env>-Backend` (`Dev-Backend`), tagged, in
 * the account and region of the CDK environment (the credentials `cdk deploy` runs with).
 *
 * The stack sits at the top level of the app rather than inside a `cdk.Stage`: `cdk deploy --all`
 * selects top-level stacks only, and the app holds exactly one environment per run (`-c env=…`), so
 * each environment is still deployed, named and torn down on its own.
 */
import { Environment, Tags } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { EnvironmentSettings } from '../config';
import { BackendStack } from './backend-stack';

export interface EnvironmentOptions {
  readonly settings: EnvironmentSettings;
  /** Account and region; undefined values synthesize an environment-agnostic stack. */
  readonly env?: Environment;
  /** Changing it re-fetches the Cognito JWKS snapshot on the next deploy. */
  readonly jwksRefreshToken?: string;
  /** A role ARN the tenant-access role also trusts, for the deployed smoke test. */
  readonly smokeTestPrincipalArn?: string;
}

/** The stack id of an environment: `dev` → `Dev-Backend`. */
export function stackId(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}-Backend`;
}

export function createEnvironment(scope: Construct, options: EnvironmentOptions): BackendStack {
  const { settings } = options;
  const stack = new BackendStack(scope, stackId(settings.name), {
    settings,
    env: options.env,
    jwksRefreshToken: options.jwksRefreshToken,
    smokeTestPrincipalArn: options.smokeTestPrincipalArn,
    description: `Tenant-sovereign backend (${settings.name})`,
    terminationProtection: settings.name === 'prod',
  });
  // CDK deems these taggable; their CloudFormation schema has no Tags.
  const excludeResourceTypes = ['AWS::RDS::DBProxyTargetGroup', 'AWS::CloudWatch::Dashboard'];
  Tags.of(stack).add('app', 'tenant-sovereign-backend', { excludeResourceTypes });
  Tags.of(stack).add('environment', settings.name, { excludeResourceTypes });
  return stack;
}
