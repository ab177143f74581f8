/**
 * The deployed side of the security review's findings, per environment (synthesized offline): users
 * write only harmless attributes and OAuth is off without configured callbacks (reproduction 6); a
 * per-path WAF rate rule in front of the tenant routes and reserved concurrency per route function
 * (reproduction 2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Stack } from 'aws-cdk-lib';
import { routeList } from '../../functions/routes';
import { ENVIRONMENT_NAMES, environments, type EnvironmentName } from '../../lib/config';
import { EMULATOR_WRITABLE_ATTRIBUTES } from '../../bin/stack/identity';
import { Identity } from '../../lib/constructs/identity';
import { resourcesOf, routeFunctionsOf, synthEnvironment, type SynthesizedEnvironment } from './support/synth';

const outdir = mkdtempSync(path.join(os.tmpdir(), 'tsb-infra-hardening-'));
const synthesized = new Map<EnvironmentName, SynthesizedEnvironment>();
function env(name: EnvironmentName): SynthesizedEnvironment {
  let s = synthesized.get(name);
  if (!s) {
    s = synthEnvironment(name, { outdir: path.join(outdir, name) });
    synthesized.set(name, s);
  }
  return s;
}
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** Attributes whose value authorizes or identifies a member: never writable by the user. */
const TRUSTED_ATTRIBUTES = ['custom:role', 'custom:tenant_id', 'email', 'email_verified'];

describe.each(ENVIRONMENT_NAMES)('the %s environment', (name) => {
  const settings = environments[name];

  it('lets users write only harmless attributes of their own, never the role, the tenant or the email', () => {
    const [[, client]] = resourcesOf(env(name).json, 'AWS::Cognito::UserPoolClient') as [[string, Record<string, any>]];
    const writable = client.WriteAttributes as string[];
    // Not empty: Cognito reads an empty list as "not specified", i.e. every mutable attribute.
    expect(writable.length).toBeGreaterThan(0);
    expect(writable.filter((a) => TRUSTED_ATTRIBUTES.includes(a) || a.startsWith('custom:'))).toEqual([]);
    // The local emulator's client is configured alike.
    expect([...writable].sort()).toEqual([...EMULATOR_WRITABLE_ATTRIBUTES].sort());
  });

  it('switches the app client OAuth flows off when the environment configures no callback URL', () => {
    expect(settings.identity.oauthCallbackUrls ?? []).toEqual([]);
    const [[, client]] = resourcesOf(env(name).json, 'AWS::Cognito::UserPoolClient') as [[string, Record<string, any>]];
    expect(client.AllowedOAuthFlowsUserPoolClient).toBe(false);
    expect(client.AllowedOAuthFlows).toBeUndefined();
    expect(client.CallbackURLs).toBeUndefined();
  });

  it('reserves concurrency for every route function as configured', () => {
    const routeFunctions = routeFunctionsOf(env(name).json);
    expect(routeFunctions).toHaveLength(routeList.length);
    expect(routeFunctions.length).toBeGreaterThan(0);
    for (const [, fn] of routeFunctions) {
      expect((fn as Record<string, any>).ReservedConcurrentExecutions).toBe(settings.functions.reservedConcurrency);
    }
  });

  it('blocks, where WAF is on, more requests per minute to one tenant path than configured', () => {
    const acls = resourcesOf(env(name).json, 'AWS::WAFv2::WebACL') as [string, Record<string, any>][];
    if (!settings.waf.enabled) {
      expect(acls).toEqual([]);
      return;
    }
    const rule = (acls[0]![1].Rules as Record<string, any>[]).find((r) => r.Name === 'RatePerTenantPath');
    expect(rule).toMatchObject({
      Action: { Block: {} },
      Statement: {
        RateBasedStatement: {
          Limit: settings.waf.requestsPerMinutePerPath,
          EvaluationWindowSec: 60,
          AggregateKeyType: 'CUSTOM_KEYS',
          CustomKeys: [{ UriPath: { TextTransformations: expect.arrayContaining([{ Priority: 1, Type: 'NORMALIZE_PATH' }]) } }],
          ScopeDownStatement: { ByteMatchStatement: { SearchString: '/api/', FieldToMatch: { UriPath: {} } } },
        },
      },
    });
  });
});

describe('the identity construct', () => {
  it('turns the authorization code flow on, and only it, for configured callback URLs', () => {
    const stack = new Stack(new App(), 'IdentityWithCallbacks');
    new Identity(stack, 'Identity', {
      mfa: 'optional',
      advancedSecurity: false,
      logRetention: logs.RetentionDays.ONE_DAY,
      oauthCallbackUrls: ['https://app.example.com/callback'],
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Cognito::UserPoolClient', {
      AllowedOAuthFlowsUserPoolClient: true,
      AllowedOAuthFlows: ['code'],
      CallbackURLs: ['https://app.example.com/callback'],
    });
  });
});
