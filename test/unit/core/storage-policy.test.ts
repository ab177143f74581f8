/**
 * Policy proofs. The emulator does not enforce session policies, so the effective permission of a tenant
 * session (the tenant-access role's identity policy ∩ the tenant's session policy) is proved here by IAM
 * policy simulation, with the very documents that `lib/` attaches to the role and that every AssumeRole
 * sends. @cloud-copilot/iam-simulate is AGPL: a devDependency used only by tests, never bundled.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { InvalidTenantIdError } from '../../../functions/core/errors';
import {
  TENANT_LISTING_ACTIONS,
  TENANT_OBJECT_ACTIONS,
  tenantAccessRolePolicy,
  tenantSessionPolicy,
  type PolicyDocument,
} from '../../../functions/core/storage-policy';

const ACCOUNT = '123456789012';
const BUCKET = 'tenant-documents-prod';
const DOC = 'documents/0b6f2c1e-8a3d-4c5e-9f10-1a2b3c4d5e6f';
const principal = `arn:aws:sts::${ACCOUNT}:assumed-role/tenant-access/acme.0b6f2c1e8a3d4c5e9f101a2b3c4d5e6f`;

interface Attempt {
  readonly action: string;
  readonly resource: string;
  readonly prefix?: string;
}

async function decide(
  attempt: Attempt,
  policies: { role?: PolicyDocument; session?: PolicyDocument } = {},
): Promise<string> {
  const role = 'role' in policies ? policies.role : tenantAccessRolePolicy(BUCKET);
  const session = 'session' in policies ? policies.session : tenantSessionPolicy(BUCKET, 'acme');
  const simulation: Simulation = {
    request: {
      principal,
      action: attempt.action,
      resource: { resource: attempt.resource, accountId: ACCOUNT },
      contextVariables: attempt.prefix === undefined ? {} : { 's3:prefix': attempt.prefix },
    },
    identityPolicies: role ? [{ name: 'tenant-access', policy: role }] : [],
    sessionPolicy: session,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  const result = await runSimulation(simulation, {});
  // An invalid policy or request must fail the test, never read as "denied".
  if (result.resultType === 'error') throw new Error(`simulation error: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

const object = (key: string, bucket = BUCKET) => `arn:aws:s3:::${bucket}/${key}`;
const bucket = (name = BUCKET) => `arn:aws:s3:::${name}`;

describe('tenant session ∩ tenant-access role (policy simulation)', () => {
  describe.each(TENANT_OBJECT_ACTIONS)('%s', (action) => {
    it("is allowed on the tenant's own prefix", async () => {
      expect(await decide({ action, resource: object(`tenants/acme/${DOC}`) })).toBe('Allowed');
    });

    it.each([
      ["another tenant's prefix", object(`tenants/globex/${DOC}`)],
      ['the prefix of a tenant whose id extends the own (acme-evil)', object(`tenants/acme-evil/${DOC}`)],
      ['a key named like the tenant without the slash', object('tenants/acme')],
      ['the bucket root', object('report.pdf')],
      ['the tenants/ root', object('tenants/report.pdf')],
      ['the own prefix in another bucket', object(`tenants/acme/${DOC}`, 'someone-elses-bucket')],
    ])('is denied on %s', async (_label, resource) => {
      // Positive control in the same shape: the own key is allowed (see above); here only the key differs.
      expect(await decide({ action, resource })).toMatch(/Denied$/);
    });
  });

  describe.each(TENANT_LISTING_ACTIONS)('%s', (action) => {
    it.each(['tenants/acme/', 'tenants/acme/documents/'])('is allowed with the own prefix %j', async (prefix) => {
      expect(await decide({ action, resource: bucket(), prefix })).toBe('Allowed');
    });

    it.each([
      ['without a prefix', undefined],
      ['with an empty prefix', ''],
      ['with the tenants/ root', 'tenants/'],
      ["with another tenant's prefix", 'tenants/globex/'],
      ['with the tenant id without the slash (would list acme-evil too)', 'tenants/acme'],
      ['with the prefix of a tenant whose id extends the own', 'tenants/acme-evil/'],
    ])('is denied %s', async (_label, prefix) => {
      expect(await decide({ action, resource: bucket(), prefix })).toMatch(/Denied$/);
    });

    it('is denied on another bucket even with the own prefix', async () => {
      expect(await decide({ action, resource: bucket('someone-elses-bucket'), prefix: 'tenants/acme/' })).toMatch(/Denied$/);
    });
  });

  it.each([
    ['s3:PutObjectAcl', object(`tenants/acme/${DOC}`)],
    ['s3:GetObjectVersion', object(`tenants/acme/${DOC}`)],
    ['s3:PutBucketVersioning', bucket()],
    ['s3:PutLifecycleConfiguration', bucket()],
    ['s3:PutBucketPolicy', bucket()],
  ])('grants nothing beyond the object actions and listing: %s on own data is denied', async (action, resource) => {
    expect(await decide({ action, resource, prefix: 'tenants/acme/' })).toMatch(/Denied$/);
  });

  it('needs both layers: the role alone reaches every tenant, the session policy is what narrows it', async () => {
    // Without a session policy the role's own bound applies: another tenant is reachable.
    expect(await decide({ action: 's3:GetObject', resource: object(`tenants/globex/${DOC}`) }, { session: undefined })).toBe(
      'Allowed',
    );
    // The role's bound holds even where a session policy would allow more (a session cannot widen a role).
    const wideSession: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Sid: 'Everything', Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    };
    expect(await decide({ action: 's3:GetObject', resource: object('outside/x') }, { session: wideSession })).toMatch(/Denied$/);
    expect(await decide({ action: 's3:GetObject', resource: object(`tenants/acme/${DOC}`) }, { session: wideSession })).toBe(
      'Allowed',
    );
  });

  it("bounds the role itself to tenants/ of its bucket", async () => {
    const roleOnly = { session: undefined };
    expect(await decide({ action: 's3:GetObject', resource: object('outside/x') }, roleOnly)).toMatch(/Denied$/);
    expect(await decide({ action: 's3:ListBucket', resource: bucket(), prefix: '' }, roleOnly)).toMatch(/Denied$/);
    expect(await decide({ action: 's3:ListBucket', resource: bucket(), prefix: 'tenants/' }, roleOnly)).toBe('Allowed');
  });
});

describe('tenantSessionPolicy', () => {
  it('refuses a tenant id that breaks the slug rule, and builds one for a valid id', () => {
    expect(() => tenantSessionPolicy(BUCKET, 'acme')).not.toThrow();
    for (const bad of ['Acme', 'acme/evil', 'acme*', '*', '', 'a', 'acme-', '../acme']) {
      expect(() => tenantSessionPolicy(BUCKET, bad)).toThrow(InvalidTenantIdError);
    }
  });

  it('refuses a bucket name that could widen the policy', () => {
    expect(() => tenantSessionPolicy('tenant-documents-prod', 'acme')).not.toThrow();
    for (const bad of ['*', 'bucket*', 'bucket/tenants', '', 'Bucket']) {
      expect(() => tenantSessionPolicy(bad, 'acme')).toThrow(/not an S3 bucket name/);
    }
  });

  it('stays far below the packed policy size limit for the longest tenant id', () => {
    // STS packs session policies into 2,048 bytes of plain text before compression.
    const longest = 'a'.repeat(40);
    expect(JSON.stringify(tenantSessionPolicy('b'.repeat(63), longest)).length).toBeLessThan(1024);
  });
});

describe('tenantAccessRolePolicy', () => {
  it('accepts a CDK token as the bucket name and refuses wildcards', () => {
    expect(JSON.stringify(tenantAccessRolePolicy('${Token[TOKEN.123]}'))).toContain('arn:aws:s3:::${Token[TOKEN.123]}/tenants/*');
    expect(() => tenantAccessRolePolicy('*')).toThrow(/not an S3 bucket name/);
    expect(() => tenantAccessRolePolicy('')).toThrow(/not an S3 bucket name/);
  });
});
