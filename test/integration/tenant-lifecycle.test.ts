/**
 * The tenant lifecycle's domain functions against real Postgres (app_control for the control plane,
 * app_runtime for member changes) and the emulator's Cognito, KMS and versioned S3 — reached through a
 * proxy that a test takes down to stop "AWS" between or inside steps.
 */
import { randomUUID } from 'node:crypto';
import { AdminGetUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { ListObjectVersionsCommand, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { signIn } from '../../bin/stack/identity';
import { withTenant, type RequestContext, type Sql } from '../../functions/core/db';
import { ConflictError } from '../../functions/core/errors';
import { keysFrom } from '../../functions/core/pii';
import { addMember, getMember, removeMember, updateMember, type MemberDependencies } from '../../functions/members/membership';
import { getExport, requestExport, runExport } from '../../functions/tenants/export';
import { onboardTenant } from '../../functions/tenants/onboarding';
import { runOffboarding, startOffboarding } from '../../functions/tenants/offboarding';
import { readTenant, updateTenant } from '../../functions/tenants/tenant-admin';
import { adminSql, controlSql, runtimeSql, uniqueTenantId } from '../support/db';
import { LOCAL_PASSWORD, lifecycleWorld, type LifecycleWorld } from '../support/lifecycle';

describe('tenant lifecycle', () => {
  let admin: Sql;
  let control: Sql;
  let db: Sql;
  let w: LifecycleWorld;
  let cognito: CognitoIdentityProviderClient;
  const memberDeps = (): MemberDependencies => ({ pii: w.pii, directory: w.directory });
  const lifecycleDeps = () => ({ db: control, pii: w.pii, directory: w.directory, objects: (t: string, u: string) => w.objects.forTenant(t, u) });

  const onboard = (id: string, email = `admin@${id}.example`) =>
    onboardTenant(lifecycleDeps(), w.operator, { id, name: `Tenant ${id}`, planId: 'pro', admin: { email, name: 'First Admin' } });
  const asAdmin = (tenantId: string, userId: string): RequestContext => ({ tenantId, userId, role: 'org_admin', requestId: randomUUID() });
  const inTenant = <T>(ctx: RequestContext, fn: (c: RequestContext & { tx: Parameters<Parameters<typeof withTenant>[2]>[0] }) => Promise<T>) =>
    withTenant(db, ctx, (tx) => fn({ ...ctx, tx }));
  const cognitoUser = (userId: string) =>
    cognito.send(new AdminGetUserCommand({ UserPoolId: w.userPoolId, Username: userId })).then(
      (u) => ({ enabled: u.Enabled, role: u.UserAttributes?.find((a) => a.Name === 'custom:role')?.Value }),
      (error: { name?: string }) => (error.name === 'UserNotFoundException' ? null : Promise.reject(error)),
    );
  const tokenFor = (email: string) => signIn(w.access, { clientId: w.clientId, username: email, password: LOCAL_PASSWORD });

  beforeAll(async () => {
    admin = adminSql();
    control = controlSql();
    db = runtimeSql({ max: 6 });
    w = await lifecycleWorld(admin, 'lifecycle');
    cognito = new CognitoIdentityProviderClient(w.access);
  });
  afterAll(async () => {
    cognito.destroy();
    await w.close();
    await Promise.all([admin.end(), control.end(), db.end()]);
  });

  describe('onboarding', () => {
    it('creates the tenant, its data key, and a first org_admin who can sign in at once', async () => {
      const id = uniqueTenantId('onb');
      const { tenant, admin: first } = await onboard(id);
      expect(tenant).toMatchObject({ id, planId: 'pro', status: 'active' });
      expect(first).toMatchObject({ email: `admin@${id}.example`, name: 'First Admin', role: 'org_admin', status: 'active' });
      const token = await tokenFor(`admin@${id}.example`);
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, string>;
      expect(claims).toMatchObject({ sub: first.userId, 'custom:tenant_id': id, 'custom:role': 'org_admin' });
      const [row] = await admin<{ key: Buffer | null }[]>`select data_key_ciphertext as key from app.tenants where id = ${id}`;
      expect(row!.key).toBeInstanceOf(Buffer);
      const audit = await admin`select action from app.audit_events where tenant_id = ${id} order by occurred_at`;
      expect(audit.map((a) => a.action)).toEqual(['tenant.create', 'member.add', 'tenant.onboard']);
    });

    it('refuses an id in use (409) and an unknown plan (400), creating nothing', async () => {
      const id = uniqueTenantId('dup');
      await onboard(id);
      await expect(onboard(id, `other@${id}.example`)).rejects.toBeInstanceOf(ConflictError);
      await expect(onboard(id)).rejects.toBeInstanceOf(ConflictError);
      const unknown = uniqueTenantId('noplan');
      await expect(
        onboardTenant(lifecycleDeps(), w.operator, { id: unknown, name: 'x', planId: 'no-such-plan', admin: { email: 'a@b.example' } }),
      ).rejects.toMatchObject({ status: 400 });
      expect(await admin`select 1 from app.tenants where id = ${unknown}`).toHaveLength(0);
    });

    it('is completed by a retry of the same request after Cognito was down between the steps', async () => {
      const id = uniqueTenantId('retry');
      // KMS answers, the tenant row is written; then "AWS" goes down before the Cognito user.
      const directory = w.directory;
      const stoppingDirectory = {
        ...directory,
        createUser: async (u: Parameters<typeof directory.createUser>[0]) => {
          await w.proxy.down();
          return directory.createUser(u);
        },
      };
      await expect(
        onboardTenant({ ...lifecycleDeps(), directory: stoppingDirectory }, w.operator, {
          id, name: `Tenant ${id}`, planId: 'pro', admin: { email: `admin@${id}.example`, name: 'First Admin' },
        }),
      ).rejects.toMatchObject({ status: 503 });
      await w.proxy.up();
      const [halfway] = await admin`select status, onboarded_at from app.tenants where id = ${id}`;
      expect(halfway).toEqual({ status: 'suspended', onboarded_at: null });

      const { tenant, admin: first } = await onboard(id);
      expect(tenant.status).toBe('active');
      expect(await admin`select 1 from app.members where tenant_id = ${id}`).toHaveLength(1);
      expect(await cognitoUser(first.userId)).toMatchObject({ enabled: true, role: 'org_admin' });
      // A retry after success is a used id.
      await expect(onboard(id)).rejects.toBeInstanceOf(ConflictError);
    });
  });

  describe('members', () => {
    let tenantId: string;
    let firstAdmin: string;
    beforeAll(async () => {
      tenantId = uniqueTenantId('mem');
      firstAdmin = (await onboard(tenantId)).admin.userId;
    });

    it('adds a member who can sign in at once, and refuses the same email twice (409)', async () => {
      const added = await inTenant(asAdmin(tenantId, firstAdmin), (ctx) =>
        addMember(ctx, memberDeps(), { email: `Ann@${tenantId}.example`, role: 'user', name: 'Ann' }),
      );
      expect(added).toMatchObject({ email: `ann@${tenantId}.example`, name: 'Ann', role: 'user', status: 'active' });
      expect(await tokenFor(`ann@${tenantId}.example`)).toMatch(/^ey/);
      await expect(
        inTenant(asAdmin(tenantId, firstAdmin), (ctx) => addMember(ctx, memberDeps(), { email: `ann@${tenantId}.example`, role: 'readonly' })),
      ).rejects.toBeInstanceOf(ConflictError);
      const got = await inTenant(asAdmin(tenantId, firstAdmin), (ctx) => getMember(ctx, memberDeps(), added.userId));
      expect(got).toEqual(added);
    });

    it('changes role and status in the row and in Cognito, and answers 404 for a user of another tenant', async () => {
      const bob = await inTenant(asAdmin(tenantId, firstAdmin), (ctx) => addMember(ctx, memberDeps(), { email: `bob@${tenantId}.example`, role: 'user' }));
      const changed = await inTenant(asAdmin(tenantId, firstAdmin), (ctx) => updateMember(ctx, memberDeps(), bob.userId, { role: 'readonly', status: 'inactive' }));
      expect(changed).toMatchObject({ role: 'readonly', status: 'inactive' });
      expect(await cognitoUser(bob.userId)).toEqual({ enabled: false, role: 'readonly' });

      const other = uniqueTenantId('mem-other');
      const otherAdmin = (await onboard(other)).admin.userId;
      await expect(inTenant(asAdmin(tenantId, firstAdmin), (ctx) => getMember(ctx, memberDeps(), otherAdmin))).rejects.toMatchObject({ status: 404 });
      await expect(inTenant(asAdmin(tenantId, firstAdmin), (ctx) => removeMember(ctx, memberDeps(), otherAdmin))).rejects.toMatchObject({ status: 404 });
      expect(await cognitoUser(otherAdmin)).toMatchObject({ enabled: true });
    });

    it('keeps the last active org_admin (409) and leaves Cognito as it was', async () => {
      const ctx = asAdmin(tenantId, firstAdmin);
      await expect(inTenant(ctx, (c) => updateMember(c, memberDeps(), firstAdmin, { role: 'user' }))).rejects.toMatchObject({ status: 409 });
      await expect(inTenant(ctx, (c) => updateMember(c, memberDeps(), firstAdmin, { status: 'inactive' }))).rejects.toMatchObject({ status: 409 });
      await expect(inTenant(ctx, (c) => removeMember(c, memberDeps(), firstAdmin))).rejects.toMatchObject({ status: 409 });
      expect(await cognitoUser(firstAdmin)).toEqual({ enabled: true, role: 'org_admin' });
    });

    it('never leaves zero admins when two admins demote each other at the same time', async () => {
      const id = uniqueTenantId('duel');
      const a = (await onboard(id)).admin.userId;
      const b = (await inTenant(asAdmin(id, a), (ctx) => addMember(ctx, memberDeps(), { email: `b@${id}.example`, role: 'org_admin' }))).userId;
      const results = await Promise.allSettled([
        inTenant(asAdmin(id, a), (ctx) => updateMember(ctx, memberDeps(), b, { role: 'user' })),
        inTenant(asAdmin(id, b), (ctx) => updateMember(ctx, memberDeps(), a, { role: 'user' })),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { status: 409 } });
      const admins = await admin<{ user_id: string }[]>`
        select user_id from app.members where tenant_id = ${id} and role = 'org_admin' and status = 'active'`;
      expect(admins).toHaveLength(1);
      // Cognito agrees with the database for both.
      for (const userId of [a, b]) {
        const isAdmin = admins[0]!.user_id === userId;
        expect(await cognitoUser(userId)).toMatchObject({ role: isAdmin ? 'org_admin' : 'user' });
      }
    });

    it('removes a member: the row and the Cognito user are gone, and sign-in fails', async () => {
      const carl = await inTenant(asAdmin(tenantId, firstAdmin), (ctx) => addMember(ctx, memberDeps(), { email: `carl@${tenantId}.example`, role: 'user' }));
      await inTenant(asAdmin(tenantId, firstAdmin), (ctx) => removeMember(ctx, memberDeps(), carl.userId));
      expect(await admin`select 1 from app.members where user_id = ${carl.userId}`).toHaveLength(0);
      expect(await cognitoUser(carl.userId)).toBeNull();
      await expect(tokenFor(`carl@${tenantId}.example`)).rejects.toThrow();
      const audit = await admin`select action from app.audit_events where tenant_id = ${tenantId} and resource_id = ${carl.userId} order by occurred_at`;
      expect(audit.map((a) => a.action)).toEqual(['member.add', 'member.remove']);
    });
  });

  describe('plan change and suspension', () => {
    it('changes plan and status, audited, and refuses to change an offboarding tenant (409)', async () => {
      const id = uniqueTenantId('patch');
      await onboard(id);
      const changed = await updateTenant(control, w.operator, id, { planId: 'free', status: 'suspended' });
      expect(changed).toMatchObject({ planId: 'free', status: 'suspended' });
      await expect(updateTenant(control, w.operator, id, { planId: 'nope' })).rejects.toMatchObject({ status: 400 });
      await startOffboarding(control, w.operator, id);
      await expect(updateTenant(control, w.operator, id, { status: 'active' })).rejects.toMatchObject({ status: 409 });
      const audit = await admin`select action from app.audit_events where tenant_id = ${id} and action like 'tenant.%' order by occurred_at`;
      expect(audit.map((a) => a.action)).toEqual(['tenant.create', 'tenant.onboard', 'tenant.update', 'tenant.offboard']);
    });
  });

  describe('exports', () => {
    it("writes a bundle of the tenant's data that only that tenant can fetch", async () => {
      const id = uniqueTenantId('exp');
      const first = (await onboard(id)).admin;
      const ctx = asAdmin(id, first.userId);
      const documentId = randomUUID();
      await admin`insert into app.documents (tenant_id, id, name, content_type, size_bytes, status, created_by)
                  values (${id}, ${documentId}, 'notes.txt', 'text/plain', 5, 'available', ${first.userId})`;
      await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: `tenants/${id}/documents/${documentId}`, Body: 'hello' }));

      const requested = await inTenant(ctx, (c) => requestExport(c));
      expect(requested.export.status).toBe('pending');
      const job = await runExport(lifecycleDeps(), requested.jobId);
      expect(job).toMatchObject({ status: 'done', step: 'done' });

      const { export: ready } = await inTenant(ctx, (c) => getExport(c, w.objects.forTenant(id, first.userId), requested.export.id));
      expect(ready.status).toBe('ready');
      const lines = (await (await fetch(ready.download!.url)).text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.type === 'member')).toMatchObject({ email: `admin@${id}.example`, role: 'org_admin' });
      expect(lines.find((l) => l.type === 'document')).toMatchObject({ id: documentId, bytesBase64: Buffer.from('hello').toString('base64') });
      expect(lines.filter((l) => l.type === 'audit_event').length).toBeGreaterThan(0);

      const other = uniqueTenantId('exp-other');
      const otherAdmin = (await onboard(other)).admin.userId;
      await expect(
        inTenant(asAdmin(other, otherAdmin), (c) => getExport(c, w.objects.forTenant(other, otherAdmin), requested.export.id)),
      ).rejects.toMatchObject({ status: 404 });
    });
  });

  describe('offboarding', () => {
    it('stops at its step with the error recorded when AWS is down, resumes, and removes rows, object versions, users and the key', async () => {
      const id = uniqueTenantId('off');
      const first = (await onboard(id)).admin;
      const ctx = asAdmin(id, first.userId);
      const second = await inTenant(ctx, (c) => addMember(c, memberDeps(), { email: `second@${id}.example`, role: 'user' }));
      // Objects with several versions and a delete marker, and one key of a neighbour that must stay.
      const key = `tenants/${id}/documents/${randomUUID()}`;
      await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: key, Body: 'v1' }));
      await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: key, Body: 'v2' }));
      await w.s3.send(new DeleteObjectCommand({ Bucket: w.bucket, Key: key }));
      const neighbour = `tenants/${id}x/documents/${randomUUID()}`;
      await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: neighbour, Body: 'keep' }));
      // The copy a backup would hold.
      const copy = await admin<{ email_ciphertext: Buffer }[]>`select email_ciphertext from app.members where tenant_id = ${id}`;
      expect(copy).toHaveLength(2);

      const { tenant, jobId } = await startOffboarding(control, w.operator, id);
      expect(tenant.status).toBe('offboarding');
      await w.proxy.down();
      const stopped = await runOffboarding(lifecycleDeps(), jobId);
      expect(stopped).toMatchObject({ status: 'failed', step: 'objects', attempts: 1 });
      expect(stopped.lastError).toMatch(/ServiceUnavailable|not reachable/);
      expect(await admin`select 1 from app.members where tenant_id = ${id}`).toHaveLength(2);

      await w.proxy.up();
      // Calling DELETE again finds the same job and resumes it.
      expect((await startOffboarding(control, w.operator, id)).jobId).toBe(jobId);
      const finished = await runOffboarding(lifecycleDeps(), jobId);
      expect(finished).toMatchObject({ status: 'done', step: 'done', lastError: null });

      const after = await readTenant(control, w.operator, id);
      expect(after.status).toBe('deleted');
      expect(after.deletionReport).toMatchObject({
        objects: { versions: 2, deleteMarkers: 1 },
        users: 2,
        dataKey: 'destroyed',
        rows: expect.objectContaining({ members: 2, audit_events: expect.any(Number) }),
      });
      expect(JSON.stringify(after.deletionReport)).not.toMatch(/@/);

      const versions = await w.s3.send(new ListObjectVersionsCommand({ Bucket: w.bucket, Prefix: `tenants/${id}/` }));
      expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toHaveLength(0);
      const neighbours = await w.s3.send(new ListObjectVersionsCommand({ Bucket: w.bucket, Prefix: `tenants/${id}x/` }));
      expect(neighbours.Versions).toHaveLength(1);
      for (const userId of [first.userId, second.userId]) expect(await cognitoUser(userId)).toBeNull();
      const [row] = await admin<{ key: Buffer | null }[]>`select data_key_ciphertext as key from app.tenants where id = ${id}`;
      expect(row!.key).toBeNull();
      expect(await admin`select 1 from app.members where tenant_id = ${id}`).toHaveLength(0);

      // Crypto-shredding: no key of this tenant exists any more; a new key for the same tenant id does not open the copy.
      const [reborn] = [keysFrom(id, Buffer.alloc(32, 7))];
      for (const r of copy) expect(() => reborn!.decrypt('email', r.email_ciphertext)).toThrow();
      await expect(inTenant(ctx, (c) => getMember(c, memberDeps(), first.userId))).rejects.toMatchObject({ status: 404 });
      // The id is never reused.
      await expect(onboard(id)).rejects.toBeInstanceOf(ConflictError);
    });
  });
});
