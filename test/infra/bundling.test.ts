/**
 * One real synth with bundling (dev): every function is bundled by the local esbuild, offline and
 * without Docker (CDK_DOCKER points at a binary that does not exist, so any attempt to use Docker
 * fails the synth). The other infra tests skip bundling to stay fast. The synthesized bundles of the S3
 * document routes (create, get, delete) and of the KMS and Cognito routes are then run as Lambda runs
 * them: in a fresh `node`, the function's own credentials only in the environment (S3 and STS are called
 * through functions/core/aws-s3.ts and aws-sts.ts, KMS and Cognito through aws-json.ts, all on the small
 * transport aws-client.ts, which reads the environment alone), against the emulator and the test database;
 * one of them also with Lambda's tracing environment, sending its X-Ray subsegments to a UDP listener.
 */
import { runNodeScript } from '../support/node-script';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdminGetUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { randomUUID } from 'node:crypto';
import { provisionIdentity, provisionPiiKey } from '../../bin/stack/identity';
import { routeList, routes, type RouteId } from '../../functions/routes';
import { openApiDocument } from '../../functions/platform/openapi-document';
import { eventFor } from '../support/api';
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { emulatorS3, storedVersions } from '../support/storage';
import { adminSql, createTenant, uniqueTenantId } from '../support/db';
import { sampledTraceHeader, startXrayDaemon } from '../support/xray-daemon';
import { resourcesOf, ROOT, routeFunctionsOf, synthEnvironment, type SynthesizedEnvironment } from './support/synth';

const outdir = mkdtempSync(path.join(os.tmpdir(), 'tsb-bundle-'));
let dev: SynthesizedEnvironment;
const docker = process.env.CDK_DOCKER;

beforeAll(() => {
  process.env.CDK_DOCKER = path.join(outdir, 'no-docker-here');
  // CDK announces each asset on stderr ("Bundling asset …"); keep the test run's output to the tests'.
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).startsWith('Bundling asset ') ? true : (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest)) as typeof write;
  try {
    dev = synthEnvironment('dev', { bundle: true, outdir });
  } finally {
    process.stderr.write = write;
  }
}, 240_000);
afterAll(() => {
  if (docker === undefined) delete process.env.CDK_DOCKER;
  else process.env.CDK_DOCKER = docker;
  rmSync(outdir, { recursive: true, force: true });
});

/** The asset directory of a Lambda function resource. */
function assetDir(fn: Record<string, any>): string {
  const key = JSON.stringify(fn.Code.S3Key);
  const hash = /([a-f0-9]{64})\.zip/.exec(key)?.[1];
  if (!hash) throw new Error(`no asset hash in ${key}`);
  return path.join(outdir, `asset.${hash}`);
}

/** The asset directory of a route's function. */
function routeAsset(routeId: string): string {
  const spec = routeList.find((r) => r.id === routeId)!;
  const functions = routeFunctionsOf(dev.json);
  const found = functions.filter(([, p]) => String(p.Description ?? '').startsWith(`${spec.method} ${spec.path}: `));
  if (found.length !== 1) throw new Error(`cannot tell the function of ${routeId} (${found.length} candidates)`);
  return assetDir(found[0]![1]);
}

describe('bundling with the local esbuild', () => {
  it('bundles every route handler, the job runner and sweeper, the storage reconciler and the audit sealer into a minified index.js with a source map', () => {
    const functions = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) => p.Environment?.Variables?.DB_HOST);
    expect(routeFunctionsOf(dev.json)).toHaveLength(routeList.length);
    expect(functions).toHaveLength(routeList.length + 4);
    for (const [, fn] of functions) {
      const dir = assetDir(fn);
      expect(readdirSync(dir).sort()).toEqual(['index.js', 'index.js.map']);
      const code = readFileSync(path.join(dir, 'index.js'), 'utf8');
      // The SDK is bundled (pinned versions), not taken from the runtime; the only require left is the
      // SDK's own optional, try/catch-guarded CRT signer, which these functions never use.
      const unbundled = new Set(code.match(/require\("@aws-sdk\/[a-z0-9-]+"\)/g) ?? []);
      unbundled.delete('require("@aws-sdk/signature-v4-crt")');
      expect([...unbundled]).toEqual([]);
      expect(code).toContain('sourceMappingURL=index.js.map');
      // The map is for resolving stack traces offline: loading it would cost every cold start.
      expect(String(fn.Environment.Variables.NODE_OPTIONS ?? '')).not.toContain('--enable-source-maps');
    }
  });

  it('bundles the migration function with the SQL files and the runtime SDK for Secrets Manager only', async () => {
    const [[, fn]] = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) =>
      String(p.Description).startsWith('Deploy time: applies db/migrations'),
    ) as [[string, Record<string, any>]];
    const dir = assetDir(fn);
    const sql = readdirSync(path.join(ROOT, 'db', 'migrations')).filter((f) => f.endsWith('.sql')).sort();
    expect(readdirSync(path.join(dir, 'migrations')).sort()).toEqual(sql);
    const code = readFileSync(path.join(dir, 'index.js'), 'utf8');
    expect(code.match(/require\("@aws-sdk\/[a-z-]+"\)/g)).toEqual(['require("@aws-sdk/client-secrets-manager")']);
    // The bundle loads, and a Delete (stack removal) never touches the database: forward-only.
    const bundle = require(path.join(dir, 'index.js')) as { handler: (e: unknown) => Promise<unknown> };
    await expect(
      bundle.handler({ RequestType: 'Delete', PhysicalResourceId: 'migrations-app', ResourceProperties: {} }),
    ).resolves.toEqual({ PhysicalResourceId: 'migrations-app' });
  });

  it('keeps every route within its budget: 270 KiB with S3 (the small S3 and STS clients), 250 KiB for every other route (KMS, Cognito and SQS included)', () => {
    const sizes = routeList.map((spec) => ({
      route: spec.id,
      bytes: readFileSync(path.join(routeAsset(spec.id), 'index.js')).length,
      budget: (spec.usesStorage ? 270 : 250) * 1024,
    }));
    // Positive control: the budget is applied to every route, the S3 ones and the others.
    expect(sizes).toHaveLength(routeList.length);
    expect(sizes.filter((b) => b.budget === 250 * 1024).length).toBeGreaterThan(0);
    expect(sizes.filter((b) => b.budget === 270 * 1024).length).toBeGreaterThan(0);
    expect(sizes.filter((b) => b.bytes > b.budget)).toEqual([]);
  });

  it('requires neither perf_hooks nor node:console in any function (functions/core/clock.ts and console-line.ts stand in for them: about a millisecond each at import)', () => {
    const functions = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) => p.Environment?.Variables?.DB_HOST);
    expect(functions).toHaveLength(routeList.length + 4);
    for (const [, fn] of functions) {
      const required = readFileSync(path.join(assetDir(fn), 'index.js'), 'utf8').match(/require\("[a-z_:/]+"\)/g) ?? [];
      // Positive control: the pattern finds the built-ins a bundle loads (observability.ts's AsyncLocalStorage).
      expect(required).toContain('require("node:async_hooks")');
      expect(required.filter((r) => /perf_hooks|console/.test(r))).toEqual([]);
    }
  });

  it('leaves the response schemas (documentation) out of every route bundle, the OpenAPI one too (its document is built at bundling time)', () => {
    // A phrase that only a response schema holds (the tenant's deletion report, in the tenant schema).
    const phrase = 'Once deleted: counts of what was removed';
    expect(JSON.stringify(openApiDocument())).toContain(phrase); // positive control: the document has it
    const withDocs = routeList.filter((spec) => readFileSync(path.join(routeAsset(spec.id), 'index.js'), 'utf8').includes(phrase));
    expect(withDocs.map((spec) => spec.id)).toEqual([]);
  });

  it('bundles the environment credential provider in place of the SDK default chain', () => {
    const code = readFileSync(path.join(routeAsset('createDocument'), 'index.js'), 'utf8');
    // Markers of the default chain's links: the SSO / ini / process providers and instance metadata.
    for (const marker of ['defaultProvider::fromSSO', 'defaultProvider::fromIni', 'credential-provider-imds', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
      expect(code).not.toContain(marker);
    }
    expect(code).toContain('AWS_SECRET_ACCESS_KEY');
  });

  it('calls KMS, Cognito and SQS without the SDK clients: the member, tenant and export routes carry the JSON-protocol client', () => {
    for (const id of ['createTenant', 'listMembers', 'createMember', 'deleteTenant', 'createExport'] as const) {
      const code = readFileSync(path.join(routeAsset(id), 'index.js'), 'utf8');
      // The SDK's schema serde and its default credential chain are not in these bundles at all.
      for (const marker of ['defaultProvider::fromSSO', 'AwsJson1_1Protocol', 'AwsJson1_0Protocol', 'smithy.api#']) expect([id, code.includes(marker)]).toEqual([id, false]);
      expect(code).toContain('x-amz-content-sha256');
      expect(code).toContain('Unable to find environment variable credentials.');
    }
    expect(readFileSync(path.join(routeAsset('listMembers'), 'index.js'), 'utf8')).toContain('TrentService');
    expect(readFileSync(path.join(routeAsset('createMember'), 'index.js'), 'utf8')).toContain('AWSCognitoIdentityProviderService');
    expect(readFileSync(path.join(routeAsset('createExport'), 'index.js'), 'utf8')).toContain('AmazonSQS');
  });

  it('calls S3 and STS without the SDK clients: every storage route and the audit sealer carry the small REST-XML and Query clients', () => {
    const storageRoutes = routeList.filter((spec) => spec.usesStorage);
    expect(storageRoutes.map((spec) => spec.id)).toEqual(expect.arrayContaining(['createDocument', 'getDocument', 'deleteDocument', 'getExport']));
    for (const spec of storageRoutes) {
      const code = readFileSync(path.join(routeAsset(spec.id), 'index.js'), 'utf8');
      // The SDK's REST-XML and Query protocols, its schema serde and its default credential chain are not there.
      for (const marker of ['aws.protocols#restXml', 'aws.protocols#awsQuery', 'smithy.api#', 'defaultProvider::fromSSO']) expect([spec.id, marker, code.includes(marker)]).toEqual([spec.id, marker, false]);
      expect(code).toContain('UNSIGNED-PAYLOAD');
      expect(code).toContain('2011-06-15');
      expect(code).toContain('Unable to find environment variable credentials.');
    }
    const [[, sealer]] = resourcesOf(dev.json, 'AWS::Lambda::Function').filter(([, p]) => String(p.Description).startsWith('Scheduled: seals the audit chains')) as [[string, Record<string, any>]];
    const sealerCode = readFileSync(path.join(assetDir(sealer), 'index.js'), 'utf8');
    expect(sealerCode).not.toContain('aws.protocols#restXml');
    expect(sealerCode).toContain('x-amz-checksum-');
  });

  describe('an S3 route bundle run as Lambda runs it', () => {
    const home = path.join(outdir, 'home');
    const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pool = 'us-east-1_Bundled';
    const client = 'bundled-client';
    const jwks = { keys: [{ ...(signing.publicKey.export({ format: 'jwk' }) as object), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    let tenantId: string;
    let userId: string;
    // A versioned bucket of its own, so that a delete removes older versions (ListObjectVersions, DeleteObjects).
    const bucket = `bundled-${randomUUID().slice(0, 8)}`;

    beforeAll(async () => {
      mkdirSync(home, { recursive: true });
      const s3 = emulatorS3();
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
        await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
      } finally {
        s3.destroy();
      }
      const admin = adminSql();
      try {
        const tenant = await createTenant(admin, uniqueTenantId('bundled'));
        tenantId = tenant.tenantId;
        userId = tenant.members.user;
      } finally {
        await admin.end({ timeout: 5 });
      }
    });

    function invoke(env: Record<string, string>): Promise<{ statusCode: number; body: string; output: string }> {
      return invokeRoute('createDocument', { body: { name: 'bundled.txt', contentType: 'text/plain', sizeBytes: 5 } }, env);
    }

    /** One request of the tenant's user to a route's bundle. */
    function invokeRoute(id: RouteId, request: { pathParameters?: Record<string, string>; body?: object }, env: Record<string, string>) {
      const event = eventFor(routes[id], { ...request, pathParameters: { tenantId, ...request.pathParameters } } as never);
      event.headers.Authorization = `Bearer ${idToken(signing, pool, client, { sub: userId, 'custom:tenant_id': tenantId, 'custom:role': 'user' })}`;
      return runBundle(id, event, env);
    }

    /** What Lambda gives a function, plus its configuration: no profile, no config files, no metadata. */
    function lambdaEnv(credentials: Record<string, string>): Record<string, string> {
      return {
        ...lambdaBase(home, credentials, pool, client, jwks),
        DATABASE_URL: process.env.TEST_RUNTIME_DATABASE_URL!,
        TENANT_BUCKET: bucket,
        TENANT_ACCESS_ROLE_ARN: process.env.TEST_TENANT_ACCESS_ROLE_ARN!,
      };
    }

    it('answers 201 with a presigned upload when the credentials are only in the environment', async () => {
      const result = await invoke(
        lambdaEnv({ AWS_ACCESS_KEY_ID: 'ASIABUNDLED', AWS_SECRET_ACCESS_KEY: 'bundled-secret', AWS_SESSION_TOKEN: 'bundled-session' }),
      );
      expect(result.statusCode).toBe(201);
      const body = JSON.parse(result.body) as { upload: { url: string; method: string } };
      expect(body.upload.method).toBe('PUT');
      expect(body.upload.url).toContain(`tenants/${tenantId}/documents/`);
      expect(body.upload.url).toContain('X-Amz-Security-Token=');
    }, 60_000);

    it('serves, from the OpenAPI bundle, the document built at bundling time: the same as openApiDocument() builds from the manifest', async () => {
      const env = lambdaEnv({ AWS_ACCESS_KEY_ID: 'ASIABUNDLED', AWS_SECRET_ACCESS_KEY: 'bundled-secret', AWS_SESSION_TOKEN: 'bundled-session' });
      const served = await runBundle('openapi', eventFor(routes.openapi, {} as never), env);
      expect(served.statusCode).toBe(200);
      expect(JSON.parse(served.body)).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    }, 60_000);

    it('loads no node:https in a route that calls no AWS service (aws-jwt-verify\'s fetcher is not bundled)', () => {
      const code = readFileSync(path.join(routeAsset('listDocuments'), 'index.js'), 'utf8');
      expect(code).not.toMatch(/require\("(node:)?https"\)/);
      // Positive control: a route that calls Cognito does load it (functions/core/aws-client.ts).
      expect(readFileSync(path.join(routeAsset('createMember'), 'index.js'), 'utf8')).toMatch(/require\("(node:)?https"\)/);
    });

    it('refuses with 401 a token signed by a key not in the JWKS (the bundles check signatures with functions/core/jwt-web-compat.ts)', async () => {
      const env = lambdaEnv({ AWS_ACCESS_KEY_ID: 'ASIABUNDLED', AWS_SECRET_ACCESS_KEY: 'bundled-secret', AWS_SESSION_TOKEN: 'bundled-session' });
      const event = eventFor(routes.listDocuments, { pathParameters: { tenantId } } as never);
      const claims = { sub: userId, 'custom:tenant_id': tenantId, 'custom:role': 'user' };
      event.headers.Authorization = `Bearer ${idToken(generateKeyPairSync('rsa', { modulusLength: 2048 }), pool, client, claims)}`;
      const forged = await runBundle('listDocuments', event, env);
      expect(forged.statusCode).toBe(401);
      // Positive control: the same request with the pool's key is served.
      event.headers.Authorization = `Bearer ${idToken(signing, pool, client, claims)}`;
      expect((await runBundle('listDocuments', event, env)).statusCode).toBe(200);
    }, 60_000);

    it('uploads through the presigned URL, then the get and delete bundles read and remove the object (STS, GetObject, presigned GET, PutObject, ListObjectVersions, DeleteObjects)', async () => {
      const env = lambdaEnv({ AWS_ACCESS_KEY_ID: 'ASIABUNDLED', AWS_SECRET_ACCESS_KEY: 'bundled-secret', AWS_SESSION_TOKEN: 'bundled-session' });
      const created = await invoke(env);
      expect([created.statusCode, created.body]).toEqual([201, expect.any(String)]);
      const { document, upload } = JSON.parse(created.body) as { document: { id: string }; upload: { url: string; headers: Record<string, string> } };
      const put = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: 'hello' });
      expect([put.status, await put.text()]).toEqual([200, '']);

      // A fresh container reads the object (a ranged GetObject) and signs a download that the emulator honours.
      const fetched = await invokeRoute('getDocument', { pathParameters: { documentId: document.id } }, env);
      expect([fetched.statusCode, fetched.body]).toEqual([200, expect.any(String)]);
      const { document: available, download } = JSON.parse(fetched.body) as { document: { status: string }; download: { url: string } };
      expect(available.status).toBe('available');
      const downloaded = await fetch(download.url);
      expect([downloaded.status, await downloaded.text()]).toEqual([200, 'hello']);

      // Another removes it: a tombstone, then every other version (the uploaded bytes), in the versioned bucket.
      const deleted = await invokeRoute('deleteDocument', { pathParameters: { documentId: document.id } }, env);
      expect([deleted.statusCode, deleted.body]).toEqual([204, expect.anything()]);
      const versions = (await storedVersions(tenantId, bucket)).filter((v) => v.documentId === document.id);
      expect(versions).toEqual([expect.objectContaining({ sizeBytes: 0, isLatest: true, deleteMarker: false })]);
    }, 90_000);

    it('does not look past the environment: a credentials file alone is not used', async () => {
      // The SDK's default chain would read this file; the bundle's own STS client must not.
      mkdirSync(path.join(home, '.aws'), { recursive: true });
      writeFileSync(path.join(home, '.aws', 'credentials'), '[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n');
      try {
        const result = await invoke({ ...lambdaEnv({}), POWERTOOLS_LOG_LEVEL: 'ERROR' });
        // The SDK chain would have signed with the file's keys and answered 201 (the emulator takes any).
        expect(result.statusCode).not.toBe(201);
        expect(result.body).not.toContain('upload');
        expect(result.output).toContain('Unable to find environment variable credentials');
      } finally {
        rmSync(path.join(home, '.aws'), { recursive: true, force: true });
      }
    }, 60_000);
  });

  describe('the tenant and member route bundles (KMS and Cognito) run as Lambda runs them', () => {
    const home = path.join(outdir, 'home-kms');
    const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwks = { keys: [{ ...(signing.publicKey.export({ format: 'jwk' }) as object), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    const client = 'bundled-client';
    const access = { endpoint: process.env.TEST_AWS_ENDPOINT_URL!, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const operatorId = randomUUID();
    const tenantId = uniqueTenantId('bundledkms');
    const email = `admin@${tenantId}.example`;
    let pool: string;
    let keyId: string;
    /** The tenant's admin, once onboarded. */
    let adminUserId: string | undefined;

    beforeAll(async () => {
      mkdirSync(home, { recursive: true });
      const suffix = randomUUID().slice(0, 8);
      pool = (await provisionIdentity(access, { poolName: `bundled-${suffix}`, users: [], password: 'Bundled-Passw0rd-1' })).userPoolId;
      keyId = await provisionPiiKey(access, `alias/bundled-${suffix}`);
      const admin = adminSql();
      try {
        await admin`insert into app.platform_operators (user_id, status) values (${operatorId}, 'active')`;
      } finally {
        await admin.end({ timeout: 5 });
      }
    }, 60_000);

    function lambdaEnv(credentials: Record<string, string>): Record<string, string> {
      return {
        ...lambdaBase(home, credentials, pool, client, jwks),
        DATABASE_URL: process.env.TEST_RUNTIME_DATABASE_URL!,
        CONTROL_DATABASE_URL: process.env.TEST_CONTROL_DATABASE_URL!,
        PII_KMS_KEY_ID: keyId,
      };
    }
    const credentials = { AWS_ACCESS_KEY_ID: 'ASIABUNDLED', AWS_SECRET_ACCESS_KEY: 'bundled-secret', AWS_SESSION_TOKEN: 'bundled-session' };

    function createTenantEvent() {
      const event = eventFor(routes.createTenant, { body: { id: tenantId, name: 'Bundled', planId: 'pro', admin: { email } } });
      event.headers.Authorization = `Bearer ${idToken(signing, pool, client, { sub: operatorId, 'custom:role': 'superadmin' })}`;
      return event;
    }

    it('does not look past the environment: with a credentials file alone, onboarding makes nothing', async () => {
      mkdirSync(path.join(home, '.aws'), { recursive: true });
      writeFileSync(path.join(home, '.aws', 'credentials'), '[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n');
      try {
        const result = await runBundle('createTenant', createTenantEvent(), { ...lambdaEnv({}), POWERTOOLS_LOG_LEVEL: 'ERROR' });
        expect(result.statusCode).toBeGreaterThanOrEqual(500);
        expect(result.output).toContain('Unable to find environment variable credentials');
      } finally {
        rmSync(path.join(home, '.aws'), { recursive: true, force: true });
      }
    }, 60_000);

    it('onboards a tenant (KMS GenerateDataKey, Cognito AdminGetUser and AdminCreateUser), then lists its members (KMS Decrypt)', async () => {
      const created = await runBundle('createTenant', createTenantEvent(), lambdaEnv(credentials));
      expect([created.statusCode, created.body]).toEqual([201, expect.any(String)]);
      const body = JSON.parse(created.body) as { tenant: { id: string }; admin: { userId: string; email: string; role: string } };
      expect(body.tenant.id).toBe(tenantId);
      expect(body.admin).toMatchObject({ email, role: 'org_admin' });
      adminUserId = body.admin.userId;
      // The user is in the emulator's pool, made by the bundle's Cognito calls.
      const cognito = new CognitoIdentityProviderClient(access);
      try {
        const user = await cognito.send(new AdminGetUserCommand({ UserPoolId: pool, Username: body.admin.userId }));
        expect(user.UserAttributes).toEqual(expect.arrayContaining([{ Name: 'custom:tenant_id', Value: tenantId }, { Name: 'email', Value: email }]));
      } finally {
        cognito.destroy();
      }
      // A fresh container of the member list unwraps the tenant's key with KMS and decrypts the email.
      const event = eventFor(routes.listMembers, { pathParameters: { tenantId } });
      event.headers.Authorization = `Bearer ${idToken(signing, pool, client, { sub: body.admin.userId, 'custom:tenant_id': tenantId, 'custom:role': 'org_admin' })}`;
      const listed = await runBundle('listMembers', event, lambdaEnv(credentials));
      expect([listed.statusCode, listed.body]).toEqual([200, expect.any(String)]);
      expect((JSON.parse(listed.body) as { items: { userId: string; email: string }[] }).items).toEqual([
        expect.objectContaining({ userId: body.admin.userId, email }),
      ]);
    }, 90_000);
    it('traces as deployed: with Lambda\'s tracing environment the member list bundle sends its subsegments (handler, Postgres, KMS) to the daemon', async () => {
      expect(adminUserId).toBeDefined();
      const daemon = await startXrayDaemon();
      const { header, root, parent } = sampledTraceHeader();
      try {
        const event = eventFor(routes.listMembers, { pathParameters: { tenantId } });
        event.headers.Authorization = `Bearer ${idToken(signing, pool, client, { sub: adminUserId!, 'custom:tenant_id': tenantId, 'custom:role': 'org_admin' })}`;
        const listed = await runBundle('listMembers', event, {
          ...lambdaEnv(credentials),
          AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
          AWS_LAMBDA_FUNCTION_NAME: 'tenant-api-listMembers',
          LAMBDA_TASK_ROOT: routeAsset('listMembers'),
          AWS_XRAY_DAEMON_ADDRESS: daemon.address,
          _X_AMZN_TRACE_ID: header,
        });
        expect(listed.statusCode).toBe(200);
      } finally {
        await daemon.close(200);
      }
      const documents = daemon.documents();
      expect(documents).toHaveLength(1);
      const [handler] = documents;
      expect(handler).toMatchObject({ name: '## listMembers', type: 'subsegment', trace_id: root, parent_id: parent });
      expect(handler!.annotations).toMatchObject({ route: 'listMembers', ColdStart: true, status: 200, tenant_id: tenantId });
      // Every subsegment under the handler's, with its parent's name (the KMS call is made in the transaction).
      const nested: [string, Record<string, any>][] = [];
      const visit = (doc: Record<string, any>) => {
        for (const sub of (doc.subsegments ?? []) as Record<string, any>[]) {
          nested.push([doc.name as string, sub]);
          visit(sub);
        }
      };
      visit(handler!);
      expect(nested.map(([under, sub]) => `${under} > ${sub.name}`).sort()).toEqual(['## listMembers > postgres listMembers', 'postgres listMembers > KMS']);
      const kms = nested.find(([, sub]) => sub.name === 'KMS')![1];
      expect(kms).toMatchObject({ namespace: 'aws', aws: { operation: 'Decrypt', region: 'us-east-1', retries: 1 }, http: { response: { status: 200 } } });
    }, 60_000);
  });

  /** A Cognito-shaped ID token for `claims`, signed with `signing`'s key `k1`. */
  function idToken(signing: { privateKey: import('node:crypto').KeyObject }, pool: string, client: string, claims: Record<string, string>): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const all = { iss: `https://cognito-idp.us-east-1.amazonaws.com/${pool}`, aud: client, token_use: 'id', iat: now, auth_time: now, exp: now + 600, ...claims };
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(all)}`;
    return `${input}.${sign('RSA-SHA256', Buffer.from(input), signing.privateKey).toString('base64url')}`;
  }

  /** What Lambda gives every function: no profile, no config files, no metadata; the region and the emulator. */
  function lambdaBase(home: string, credentials: Record<string, string>, pool: string, client: string, jwks: object): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '',
      HOME: home,
      ...credentials,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: process.env.TEST_AWS_ENDPOINT_URL!,
      USER_POOL_ID: pool,
      USER_POOL_CLIENT_ID: client,
      JWKS_URL: `data:application/json;base64,${Buffer.from(JSON.stringify(jwks)).toString('base64')}`,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
  }

  /** Runs a route bundle's handler once in a fresh `node` with exactly `env` and returns its result. */
  async function runBundle(routeId: RouteId, event: object, env: Record<string, string>): Promise<{ statusCode: number; body: string; output: string }> {
    const script =
      'require(process.argv[1]).handler(JSON.parse(process.argv[2]), {}).then(' +
      '(r) => process.stdout.write("\\n" + JSON.stringify(r), () => process.exit(0)), (e) => { console.error(e); process.exit(2); })';
    const file = path.join(routeAsset(routeId), 'index.js');
    const { code, stdout, stderr } = await runNodeScript(script, [file, JSON.stringify(event)], env, { timeoutMs: 30_000 });
    if (code !== 0) throw new Error(`the bundle exited ${code}: ${stderr.slice(0, 1000)}`);
    // The handler's log lines go to stdout and stderr too: the result is stdout's last line.
    return { ...(JSON.parse(stdout.trim().split('\n').pop()!) as { statusCode: number; body: string }), output: stdout + stderr };
  }

  it('never needed Docker', () => {
    expect(existsSync(process.env.CDK_DOCKER!)).toBe(false);
  });
});
