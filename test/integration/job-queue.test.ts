/**
 * The deployed job driver against real Postgres (app_control) and the emulator (SQS, S3, KMS, Cognito):
 * the queue-triggered runner runs the job each message names and reports only the failed ones (SQS
 * partial batch response), a message delivered twice changes nothing, an offboarding stopped by an
 * outage resumes on redelivery; routes' messages carry the job id only; the sweeper re-sends the jobs
 * whose message was lost.
 */
import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { Sql } from '../../functions/core/db';
import { createJobQueue, parseJobMessage, sqsClient, type JobQueue } from '../../functions/core/job-queue';
import { createJobHandler } from '../../functions/jobs/run';
import type { JobRunners } from '../../functions/jobs/runners';
import { sweepJobs } from '../../functions/jobs/sweep';
import { runExport } from '../../functions/tenants/export';
import { onboardTenant } from '../../functions/tenants/onboarding';
import { runOffboarding, startOffboarding } from '../../functions/tenants/offboarding';
import { adminSql, controlSql, createTenant, uniqueTenantId } from '../support/db';
import { lifecycleWorld, type LifecycleWorld } from '../support/lifecycle';

describe('the deployed job driver', () => {
  let admin: Sql;
  let control: Sql;
  let w: LifecycleWorld;
  let sqs: SQSClient;
  let queueUrl: string;

  const objects = (tenantId: string, userId: string) => w.objects.forTenant(tenantId, userId);
  const runners = (db: Sql): JobRunners => ({
    export: (jobId) => runExport({ db, pii: w.pii, objects }, jobId),
    offboard: (jobId) => runOffboarding({ db, pii: w.pii, directory: w.directory, objects }, jobId),
  });
  const handler = () => createJobHandler({ db: () => control, runners });
  const record = (body: string): SQSRecord =>
    ({ messageId: randomUUID(), body, attributes: { ApproximateReceiveCount: '1' }, eventSource: 'aws:sqs' }) as unknown as SQSRecord;
  const event = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
  const message = (jobId: string) => JSON.stringify({ jobId });

  const job = async (id: string) => {
    const [row] = await admin<{ status: string; step: string; attempts: number; last_error: string | null; result: Record<string, unknown>; updated_at: Date }[]>`
      select status, step, attempts, last_error, result, updated_at from app.jobs where id = ${id}`;
    return row!;
  };
  /** An export job of `tenantId`, written as the export route writes it (fixture: as the owner). */
  const exportJob = async (tenantId: string, requestedBy: string) => {
    const [exp] = await admin<{ id: string }[]>`insert into app.exports (tenant_id, requested_by) values (${tenantId}, ${requestedBy}) returning id`;
    const [row] = await admin<{ id: string }[]>`
      insert into app.jobs (tenant_id, kind, export_id, requested_by, request_id)
      values (${tenantId}, 'export', ${exp!.id}, ${requestedBy}, ${`req-${randomUUID()}`}) returning id`;
    return { jobId: row!.id, exportId: exp!.id };
  };
  const onboard = async (prefix: string) => {
    const id = uniqueTenantId(prefix);
    const { admin: first } = await onboardTenant({ db: control, pii: w.pii, directory: w.directory }, w.operator, {
      id, name: `Tenant ${id}`, planId: 'pro', admin: { email: `admin@${id}.example` },
    });
    return { tenantId: id, adminId: first.userId };
  };

  beforeAll(async () => {
    admin = adminSql();
    control = controlSql();
    w = await lifecycleWorld(admin, 'jobqueue');
    sqs = new SQSClient(w.access);
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `jobs-${randomUUID().slice(0, 8)}` }))).QueueUrl!;
  });
  afterAll(async () => {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    sqs.destroy();
    await w.close();
    await Promise.all([admin.end(), control.end()]);
  });

  it('runs the job each message names and reports only the messages whose job stopped at a failed step', async () => {
    const good = await onboard('qok');
    const done = await exportJob(good.tenantId, good.adminId);
    // A tenant without a data key: its export's first step fails.
    const broken = await createTenant(admin, uniqueTenantId('qbad'));
    const failing = await exportJob(broken.tenantId, broken.members.org_admin);
    const records = [record(message(done.jobId)), record(message(failing.jobId)), record('not json'), record(message(randomUUID()))];

    const response = await handler()(event(...records));

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[1]!.messageId }]);
    expect(await job(done.jobId)).toMatchObject({ status: 'done', step: 'done' });
    const [exported] = await admin<{ status: string }[]>`select status from app.exports where id = ${done.exportId}`;
    expect(exported!.status).toBe('ready');
    expect(await job(failing.jobId)).toMatchObject({ status: 'failed', step: 'start', attempts: 1, last_error: expect.stringMatching(/no data to export/) });
  });

  it('changes nothing when a message is delivered a second time', async () => {
    const t = await onboard('qtwice');
    const { jobId } = await exportJob(t.tenantId, t.adminId);
    expect((await handler()(event(record(message(jobId))))).batchItemFailures).toEqual([]);
    const first = await job(jobId);
    const bundles = async () =>
      (await w.s3.send(new ListObjectVersionsCommand({ Bucket: w.bucket, Prefix: `tenants/${t.tenantId}/exports/` }))).Versions ?? [];
    const versionsBefore = (await bundles()).length;
    const auditBefore = await admin`select id from app.audit_events where tenant_id = ${t.tenantId}`;

    const again = await handler()(event(record(message(jobId))));

    expect(again.batchItemFailures).toEqual([]);
    expect(await job(jobId)).toEqual(first);
    expect(versionsBefore).toBe(1);
    expect(await bundles()).toHaveLength(1);
    expect(await admin`select id from app.audit_events where tenant_id = ${t.tenantId}`).toHaveLength(auditBefore.length);
  });

  it('reports an offboarding stopped by an outage as failed, with the error on its job, and finishes it on redelivery', async () => {
    const t = await onboard('qoff');
    const { jobId } = await startOffboarding(control, w.operator, t.tenantId);
    const delivery = record(message(jobId));

    await w.proxy.down();
    let response;
    try {
      response = await handler()(event(delivery));
    } finally {
      await w.proxy.up();
    }
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: delivery.messageId }]);
    const stopped = await job(jobId);
    expect(stopped).toMatchObject({ status: 'failed', step: 'objects', attempts: 1 });
    expect(stopped.last_error).toBeTruthy();

    // SQS delivers the same message again after the visibility timeout.
    expect((await handler()(event(delivery))).batchItemFailures).toEqual([]);
    expect(await job(jobId)).toMatchObject({ status: 'done', step: 'done' });
    const [tenant] = await admin<{ status: string }[]>`select status from app.tenants where id = ${t.tenantId}`;
    expect(tenant!.status).toBe('deleted');
  });

  describe('the queue', () => {
    let queue: JobQueue;
    beforeAll(() => {
      queue = createJobQueue({ sqs: sqsClient(w.access), queueUrl });
    });
    const received = async (): Promise<string[]> => {
      const ids: string[] = [];
      for (;;) {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        if (!out.Messages?.length) return ids;
        for (const m of out.Messages) ids.push(parseJobMessage(m.Body ?? '')!.jobId);
      }
    };

    it('carries the job id and nothing else', async () => {
      const jobId = randomUUID();
      await queue.enqueue(jobId);
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
      expect(out.Messages?.map((m) => JSON.parse(m.Body!))).toEqual([{ jobId }]);
    });

    it('is sent again by the sweeper for a job left pending or with an expired lease, never for a fresh, failed or done one', async () => {
      const t = await createTenant(admin, uniqueTenantId('sweep'));
      const make = async (status: string, ageSeconds: number) => {
        const { jobId } = await exportJob(t.tenantId, t.members.org_admin);
        await admin`update app.jobs set status = ${status}, updated_at = now() - make_interval(secs => ${ageSeconds}) where id = ${jobId}`;
        return jobId;
      };
      const lost = await make('pending', 600);
      const expired = await make('running', 3600);
      const fresh = await make('pending', 5);
      const leased = await make('running', 60);
      const failed = await make('failed', 3600);
      const finished = await make('done', 3600);
      await received();

      const sent = await sweepJobs(control, queue);

      const mine = new Set([lost, expired, fresh, leased, failed, finished]);
      expect(sent.filter((id) => mine.has(id)).sort()).toEqual([lost, expired].sort());
      expect((await received()).filter((id) => mine.has(id)).sort()).toEqual([lost, expired].sort());
    });
  });
});
