/**
 * The deployed sealer's run (functions/audit/anchor.ts) against real Postgres, logged in as app_sealer,
 * and the emulator's S3 with a bucket under object lock: it chains the committed events and writes each
 * tenant's chain head, and nothing else of the trail, to a locked object.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectLockConfigurationCommand,
} from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { anchorKey, sealAndAnchor, type AnchorDocument } from '../../functions/audit/anchor';
import { withTenant, type Sql } from '../../functions/core/db';
import { adminSql, audit, contextFor, createTenant, runtimeSql, uniqueTenantId, type TenantFixture } from '../support/db';
import { S3Client } from '../../functions/core/aws-s3';
import { emulatorS3, emulatorStorage } from '../support/storage';

describe('the scheduled audit sealer and anchor', () => {
  let admin: Sql;
  let runtime: Sql;
  let sealer: Sql;
  const s3 = emulatorS3();
  // The sealer's own client (the small S3 client of the bundles), with the test process's emulator keys.
  const anchorS3 = new S3Client({ region: emulatorStorage().region, endpoint: emulatorStorage().endpoint });
  const bucket = `audit-anchors-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    admin = adminSql();
    runtime = runtimeSql();
    // The sealer login, as deployed (DB_USER=app_sealer): the admin's connection with the role set at start.
    sealer = postgres(process.env.TEST_ADMIN_DATABASE_URL!, { max: 1, onnotice: () => undefined, connection: { role: 'app_sealer' } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } },
      }),
    );
  });
  afterAll(async () => {
    await Promise.all([admin.end(), runtime.end(), sealer.end()]);
    s3.destroy();
    anchorS3.destroy();
  });

  const writeEvents = async (t: TenantFixture, count: number) => {
    for (let i = 0; i < count; i++) {
      const ctx = contextFor(t, 'org_admin');
      await withTenant(runtime, ctx, (tx) => audit(tx, ctx, `document.create.${i}`, randomUUID()));
    }
  };
  const head = async (tenantId: string) => {
    const [row] = await admin<{ seq: string; event_id: string; hash: string }[]>`
      select seq::text, event_id::text, encode(hash, 'hex') as hash from app.audit_chain
       where tenant_id = ${tenantId} order by seq desc limit 1`;
    return row;
  };
  const unsealed = async (tenantId: string) => {
    const [{ left }] = await admin<[{ left: number }]>`
      select count(*)::int as left from app.audit_events e where e.tenant_id = ${tenantId}
         and not exists (select 1 from app.audit_chain c where c.tenant_id = e.tenant_id and c.event_id = e.id)`;
    return left;
  };

  it('runs as app_sealer, which may seal but not write audit events', async () => {
    const [{ role }] = await sealer<[{ role: string }]>`select current_user as role`;
    expect(role).toBe('app_sealer');
    await expect(sealer`insert into app.audit_events (tenant_id, action) values ('x', 'y')`).rejects.toThrow(/permission denied/);
  });

  it('chains the committed events and anchors every tenant\'s head in a locked object, with no field of the events', async () => {
    const a = await createTenant(admin, uniqueTenantId('anchor-a'));
    const b = await createTenant(admin, uniqueTenantId('anchor-b'));
    await writeEvents(a, 3);
    await writeEvents(b, 2);

    // Another test's open transaction can hold the sealing window: run until both tenants are chained.
    let run = await sealAndAnchor(sealer, anchorS3, bucket);
    for (let i = 0; i < 100 && ((await unsealed(a.tenantId)) > 0 || (await unsealed(b.tenantId)) > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      run = await sealAndAnchor(sealer, anchorS3, bucket);
    }
    expect(run.key).toMatch(/^audit-heads\/\d{4}\/\d{2}\/\d{2}\/\d{4}-\d{2}-\d{2}T[\d:.]+Z\.json$/);

    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: run.key }));
    const document = JSON.parse(await object.Body!.transformToString()) as AnchorDocument;
    expect(document.format).toBe('audit-chain-heads-v1');
    for (const t of [a, b]) {
      const expected = (await head(t.tenantId))!;
      const anchored = document.heads.find((h) => h.tenantId === t.tenantId);
      expect(anchored).toEqual({ tenantId: t.tenantId, seq: Number(expected.seq), eventId: expected.event_id, hash: expected.hash, sealedAt: expect.any(String) });
    }
    expect(document.heads.find((h) => h.tenantId === a.tenantId)!.seq).toBe(3);
    // Only the head's own fields: no actor, action, detail, request or user ids.
    for (const h of document.heads) expect(Object.keys(h).sort()).toEqual(['eventId', 'hash', 'sealedAt', 'seq', 'tenantId']);
    expect(JSON.stringify(document)).not.toContain(a.members.org_admin);

    // Locked by the bucket's default retention (HeadObject: the emulator's GetObjectRetention answer is
    // not XML the SDK parses).
    const locked = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: run.key }));
    expect(locked.ObjectLockMode).toBe('COMPLIANCE');
    expect(locked.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now());
  });

  it('names each anchor by its time, one object per run', () => {
    expect(anchorKey(new Date('2026-12-01T12:05:00.123Z'))).toBe('audit-heads/2026/12/01/2026-12-01T12:05:00.123Z.json');
  });
});
