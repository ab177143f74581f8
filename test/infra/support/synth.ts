/**
 * Synthesizes environments of the CDK app for the infra tests, offline: the context of cdk.json, no
 * account or region (environment-agnostic), and, unless asked, no bundling (CDK's
 * `aws:cdk:bundling-stacks` = [] stages each function's source instead of running esbuild; one test
 * bundles for real).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { environments, type EnvironmentName, withCorsOrigin } from '../../../lib/config';
import type { BackendStack } from '../../../lib/stacks/backend-stack';
import { createEnvironment } from '../../../lib/stacks/environment';

export const ROOT = path.resolve(__dirname, '..', '..', '..');

export interface SynthesizedEnvironment {
  readonly name: EnvironmentName;
  /** The environment's stack (what cdk-nag walks). */
  readonly stack: BackendStack;
  readonly template: Template;
  /** The raw template, for whole-document scans. */
  readonly json: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> } & Record<string, unknown>;
  readonly assembly: CloudAssembly;
}

export function cdkContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

export function synthEnvironment(
  name: EnvironmentName,
  options: { bundle?: boolean; outdir?: string; smokeTestPrincipalArn?: string; corsOrigin?: string } = {},
): SynthesizedEnvironment {
  const app = new App({
    outdir: options.outdir,
    context: { ...cdkContext(), ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
  });
  const stack = createEnvironment(app, { settings: withCorsOrigin(environments[name], options.corsOrigin), smokeTestPrincipalArn: options.smokeTestPrincipalArn });
  const assembly = app.synth();
  const template = Template.fromStack(stack);
  return { name, stack, template, json: template.toJSON() as SynthesizedEnvironment['json'], assembly };
}

/** Resources of one type in a raw template, by logical id. */
export function resourcesOf(json: SynthesizedEnvironment['json'], type: string): [string, Record<string, any>][] {
  return Object.entries(json.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, (r.Properties ?? {}) as Record<string, any>]);
}

/** The route functions: those with the runtime configuration whose description names a route (`GET /…: …`). */
export function routeFunctionsOf(json: SynthesizedEnvironment['json']): [string, Record<string, any>][] {
  return resourcesOf(json, 'AWS::Lambda::Function').filter(
    ([, p]) => p.Environment?.Variables?.DB_HOST !== undefined && /^(GET|POST|PUT|PATCH|DELETE) \//.test(String(p.Description ?? '')),
  );
}
