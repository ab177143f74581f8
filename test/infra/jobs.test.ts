/**
 * Long work and storage upkeep deployed (synthesized offline): the job queue with its dead-letter queue
 * and alarms, the runner's event source, the sweeper and reconciler schedules, and what each of these
 * functions (and the routes that create jobs or tenant keys) may do — nothing beyond what its code calls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { JOB_FAILURE_METRIC as HANDLER_FAILURE_METRIC } from '../../functions/jobs/run';
import { LEASE_SECONDS } from '../../functions/jobs/sweep';
import { routeList } from '../../functions/routes';
import { JOB_FAILURE_METRIC, JOB_RUNNER_TIMEOUT, MAX_RECEIVE_COUNT } from '../../lib/constructs/jobs';
import { resourcesOf, synthEnvironment, type SynthesizedEnvironment } from './support/synth';

const outdir = mkdtempSync(path.join(os.tmpdir(), 'tsb-infra-jobs-'));
let synthesized: SynthesizedEnvironment | undefined;
/** prod: reserved concurrency is configured there. */
function env(): SynthesizedEnvironment {
  synthesized ??= synthEnvironment('prod', { outdir });
  return synthesized;
}
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

type Json = Record<string, any>;
const actionsOf = (statement: Json): string[] => [statement.Action].flat();

function functionByDescription(s: SynthesizedEnvironment, prefix: string): [string, Json] {
  const found = resourcesOf(s.json, 'AWS::Lambda::Function').filter(([, p]) => String(p.Description).startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one function described "${prefix}…", found ${found.length}`);
  return found[0]!;
}
const roleOf = (fn: Json): string => fn.Role['Fn::GetAtt'][0] as string;

/** Every statement of the policies attached to a role (AWS::IAM::Policy resources and inline policies). */
function statementsOfRole(s: SynthesizedEnvironment, roleId: string): Json[] {
  const attached = resourcesOf(s.json, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Roles as unknown[]).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.PolicyDocument.Statement as Json[]);
  const role = s.json.Resources[roleId]!.Properties as Json;
  const inline = ((role.Policies ?? []) as any[]).flatMap((p) => p.PolicyDocument.Statement as Json[]);
  return [...attached, ...inline];
}
/** The role's actions other than X-Ray tracing (no resource-level permissions exist for it). */
function permissions(s: SynthesizedEnvironment, roleId: string): Json[] {
  return statementsOfRole(s, roleId).filter((st) => !actionsOf(st).every((a) => a.startsWith('xray:')));
}
const logicalIdOf = (s: SynthesizedEnvironment, type: string, prefix: string): string => {
  const found = resourcesOf(s.json, type).filter(([id]) => id.startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one ${type} ${prefix}…, found ${found.length}`);
  return found[0]![0];
};
const text = (value: unknown) => JSON.stringify(value);

describe('the job queue', () => {
  it('moves a message to an encrypted, TLS-only dead-letter queue after MAX_RECEIVE_COUNT deliveries', () => {
    const s = env();
    const dlq = logicalIdOf(s, 'AWS::SQS::Queue', 'JobsDeadLetters');
    const queue = logicalIdOf(s, 'AWS::SQS::Queue', 'JobsQueue');
    expect(MAX_RECEIVE_COUNT).toBe(5);
    const props = s.json.Resources[queue]!.Properties as Json;
    expect(props).toMatchObject({
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    // The runner must finish (or time out) before the message becomes visible again.
    expect(props.VisibilityTimeout).toBeGreaterThanOrEqual(JOB_RUNNER_TIMEOUT.toSeconds());
    expect((s.json.Resources[dlq]!.Properties as Json).SqsManagedSseEnabled).toBe(true);
    for (const id of [queue, dlq]) {
      const policies = resourcesOf(s.json, 'AWS::SQS::QueuePolicy').filter(([, p]) => text(p.Queues).includes(id));
      expect(text(policies)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('alarms on any message in the dead-letter queue and on failed job steps, notifying the alarm topic', () => {
    const s = env();
    const dlq = logicalIdOf(s, 'AWS::SQS::Queue', 'JobsDeadLetters');
    const topic = logicalIdOf(s, 'AWS::SNS::Topic', 'ObservabilityAlarms');
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: topic }],
    });
    // The metric the runner publishes is the one alarmed.
    expect(HANDLER_FAILURE_METRIC).toBe(JOB_FAILURE_METRIC);
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'TenantSovereign',
      MetricName: JOB_FAILURE_METRIC,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: topic }],
    });
  });
});

describe('the job runner', () => {
  it('is triggered by the job queue with partial batch responses, within the job lease', () => {
    const s = env();
    const [runnerId, runner] = functionByDescription(s, 'Job runner:');
    const queue = logicalIdOf(s, 'AWS::SQS::Queue', 'JobsQueue');
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queue, 'Arn'] },
      FunctionName: { Ref: runnerId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: Match.anyValue() },
    });
    expect(resourcesOf(s.json, 'AWS::Lambda::EventSourceMapping')).toHaveLength(1);
    // A runner never outlives its lease: no second runner can claim a job the first is still running.
    expect(runner.Timeout).toBeLessThan(LEASE_SECONDS);
    expect(runner.Environment.Variables.JOB_QUEUE_URL).toEqual({ Ref: queue });
  });

  it('may do only what the steps do: connect as app_control, assume the tenant-access role, decrypt tenant keys, delete users of this pool, consume its queue', () => {
    const s = env();
    const [, runner] = functionByDescription(s, 'Job runner:');
    const statements = permissions(s, roleOf(runner));
    const byAction = (prefix: string) => statements.filter((st) => actionsOf(st).some((a) => a.startsWith(prefix)));
    expect(statements.flatMap(actionsOf).sort()).toEqual(
      [
        'cognito-idp:AdminDeleteUser', 'kms:Decrypt', 'rds-db:connect', 'sts:AssumeRole',
        'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
      ].sort(),
    );
    expect(text(byAction('rds-db:')[0]!.Resource)).toMatch(/dbuser.*\/app_control"/);
    expect(text(byAction('sts:')[0]!.Resource)).toContain('StorageTenantAccessRole');
    const [decrypt] = byAction('kms:');
    expect(text(decrypt!.Resource)).toContain('DatabasePiiKey');
    expect(decrypt!.Condition).toEqual({ 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'tenant_id' } });
    expect(text(byAction('cognito-idp:')[0]!.Resource)).toMatch(/IdentityUserPool[A-Za-z0-9]*","Arn"/);
    expect(text(byAction('sqs:')[0]!.Resource)).toContain('JobsQueue');
    for (const st of statements) expect([st.Resource].flat()).not.toContain('*');
  });
});

describe('the job sweeper', () => {
  it('runs on a schedule and may only read jobs as app_control and send to the job queue', () => {
    const s = env();
    const [sweeperId, sweeper] = functionByDescription(s, 'Job sweeper:');
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: Match.stringLikeRegexp('^rate\\('),
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [sweeperId, 'Arn'] } })],
    });
    const statements = permissions(s, roleOf(sweeper));
    expect(statements.flatMap(actionsOf).sort()).toEqual(['rds-db:connect', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'].sort());
    expect(text(statements.find((st) => actionsOf(st).includes('rds-db:connect'))!.Resource)).toMatch(/dbuser.*\/app_control"/);
    expect(text(statements.find((st) => actionsOf(st).includes('sqs:SendMessage'))!.Resource)).toContain('JobsQueue');
    expect(sweeper.ReservedConcurrentExecutions).toBe(1);
  });
});

describe('the storage reconciler', () => {
  it('runs on a schedule as app_runtime and may only assume the tenant-access role besides', () => {
    const s = env();
    const [reconcilerId, reconciler] = functionByDescription(s, 'Storage reconciler:');
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: Match.stringLikeRegexp('^rate\\('),
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [reconcilerId, 'Arn'] } })],
    });
    const statements = permissions(s, roleOf(reconciler));
    expect(statements.flatMap(actionsOf).sort()).toEqual(['rds-db:connect', 'sts:AssumeRole']);
    expect(text(statements.find((st) => actionsOf(st).includes('rds-db:connect'))!.Resource)).toMatch(/dbuser.*\/app_runtime"/);
    expect(text(statements.find((st) => actionsOf(st).includes('sts:AssumeRole'))!.Resource)).toContain('StorageTenantAccessRole');
    expect(reconciler.Environment.Variables.STORAGE_RECONCILE_AFTER_SECONDS).toBe('3600');
    expect(reconciler.ReservedConcurrentExecutions).toBe(1);
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: reconcilerId } }],
    });
  });
});

describe('who may connect as the control plane', () => {
  it('is only the platform route functions, the job runner and the job sweeper', () => {
    const s = env();
    const controlRoles = resourcesOf(s.json, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.PolicyDocument.Statement as Json[]).some((st) => actionsOf(st).includes('rds-db:connect') && /\/app_control"/.test(text(st.Resource))))
      .flatMap(([, p]) => (p.Roles as Json[]).map((r) => r.Ref as string));
    const functions = resourcesOf(s.json, 'AWS::Lambda::Function');
    const holders = functions.filter(([, fn]) => controlRoles.includes(roleOf(fn))).map(([, fn]) => String(fn.Description));
    const expected = [
      ...routeList.filter((r) => r.auth === 'platform').map((r) => `${r.method} ${r.path}:`),
      'Job runner:',
      'Job sweeper:',
    ];
    expect(holders).toHaveLength(expected.length);
    for (const prefix of expected) expect(holders.filter((d) => d.startsWith(prefix))).toHaveLength(1);
  });
});

describe('route permissions for the lifecycle', () => {
  const routeRole = (s: SynthesizedEnvironment, route: (typeof routeList)[number]) => roleOf(functionByDescription(s, `${route.method} ${route.path}:`)[1]);

  it('gives kms:GenerateDataKey to onboarding only; other PII routes may only decrypt, under the tenant encryption context', () => {
    const s = env();
    for (const route of routeList) {
      const kms = statementsOfRole(s, routeRole(s, route)).filter((st) => actionsOf(st).some((a) => a.startsWith('kms:')));
      const actions = kms.flatMap(actionsOf).sort();
      if (route.id === 'createTenant') expect(actions).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
      else if (route.usesPii) expect(actions).toEqual(['kms:Decrypt']);
      else expect(actions).toEqual([]);
      for (const st of kms) expect(st.Condition).toEqual({ 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'tenant_id' } });
    }
  });

  it('lets onboarding create, find and re-enable the first org_admin on this pool only', () => {
    const s = env();
    const route = routeList.find((r) => r.id === 'createTenant')!;
    const cognito = statementsOfRole(s, routeRole(s, route)).filter((st) => actionsOf(st).some((a) => a.startsWith('cognito-idp:')));
    expect(cognito).toHaveLength(1);
    expect(actionsOf(cognito[0]!).sort()).toEqual(
      ['cognito-idp:AdminCreateUser', 'cognito-idp:AdminEnableUser', 'cognito-idp:AdminGetUser', 'cognito-idp:AdminUpdateUserAttributes'],
    );
    expect(text(cognito[0]!.Resource)).toMatch(/^\{"Fn::GetAtt":\["IdentityUserPool[A-Za-z0-9]*","Arn"\]\}$/);
  });

  it('lets exactly the routes that create jobs send to the job queue', () => {
    const s = env();
    const senders = routeList.filter((route) =>
      statementsOfRole(s, routeRole(s, route)).some((st) => actionsOf(st).includes('sqs:SendMessage') && text(st.Resource).includes('JobsQueue')),
    );
    expect(senders.map((r) => r.id).sort()).toEqual(['createExport', 'deleteTenant']);
    expect(routeList.filter((r) => r.enqueuesJobs).map((r) => r.id).sort()).toEqual(['createExport', 'deleteTenant']);
  });
});
