/**
 * The three environments, synthesized offline (no bundling: see support/synth.ts), checked against
 * issue 6 point by point, then by cdk-nag (AwsSolutions) and cfn-lint.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { tenantAccessRolePolicy } from '../../functions/core/storage-policy';
import { routeList } from '../../functions/routes';
import { ENVIRONMENT_NAMES, environments, withCorsOrigin, type EnvironmentName } from '../../lib/config';
import { GATEWAY_PROBLEMS } from '../../lib/constructs/api';
import { migrationsHash } from '../../lib/constructs/database';
import { TENANT_QUERIES } from '../../lib/constructs/observability';
import { ENV } from '../../functions/core/config';
import { resourcesOf, ROOT, routeFunctionsOf, synthEnvironment, type SynthesizedEnvironment } from './support/synth';

/** Every variable of the contract (functions/core/config.ts) except those a deployment leaves unset. */
const NOT_DEPLOYED: readonly string[] = [
  ENV.awsRegion, ENV.awsDefaultRegion, ENV.awsEndpoint, ENV.databaseUrl, ENV.controlDatabaseUrl,
  // Lambda sets the function's own credentials itself.
  ENV.awsAccessKeyId, ENV.awsSecretAccessKey, ENV.awsSessionToken, ENV.awsCredentialExpiration,
  // The local stack's password for the users it creates; a deployment has Cognito send invitations.
  ENV.localUserPassword,
  // The anchor bucket: only the scheduled audit sealer's (lib/constructs/audit-anchor.ts).
  ENV.auditAnchorBucket,
  // Lambda sets the X-Ray daemon's address and each invocation's trace header itself (active tracing).
  ENV.xrayDaemonAddress, ENV.lambdaTraceHeader,
];
const CONFIG_VARIABLES = Object.values(ENV).filter((name) => !NOT_DEPLOYED.includes(name));

const outdir = mkdtempSync(path.join(os.tmpdir(), 'tsb-infra-'));
const synthesized = new Map<EnvironmentName, SynthesizedEnvironment>();
/** The front end a deployer names with `-c corsOrigin=…` (staging and prod name none of their own). */
const DEPLOYED_ORIGIN: Readonly<Record<EnvironmentName, string | undefined>> = {
  dev: undefined,
  staging: 'https://app.staging.example.com',
  prod: 'https://app.example.com',
};
function env(name: EnvironmentName): SynthesizedEnvironment {
  let s = synthesized.get(name);
  if (!s) {
    s = synthEnvironment(name, { outdir: path.join(outdir, name), corsOrigin: DEPLOYED_ORIGIN[name] });
    synthesized.set(name, s);
  }
  return s;
}
afterAll(() => {
  // A cfn-lint still running (the test timed out) would keep this worker from exiting.
  for (const child of linting) child.kill();
  rmSync(outdir, { recursive: true, force: true });
});

/** The route functions: those with the runtime configuration whose description names a route of the manifest. */
function routeFunctions(s: SynthesizedEnvironment): [string, Record<string, any>][] {
  return routeFunctionsOf(s.json);
}

/** The logical id of the role of a route's function (by its description). */
function roleOfRoute(s: SynthesizedEnvironment, route: (typeof routeList)[number]): string {
  const fn = routeFunctions(s).find(([, p]) => String(p.Description).startsWith(`${route.method} ${route.path}:`));
  if (!fn) throw new Error(`no function for ${route.id}`);
  return fn[1].Role['Fn::GetAtt'][0] as string;
}

/** Every statement of the policies attached to a role (AWS::IAM::Policy resources and inline policies). */
function statementsOfRole(s: SynthesizedEnvironment, roleId: string): Record<string, any>[] {
  const attached = resourcesOf(s.json, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Roles as unknown[]).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.PolicyDocument.Statement as Record<string, any>[]);
  const role = s.json.Resources[roleId]!.Properties as Record<string, any>;
  const inline = ((role.Policies ?? []) as any[]).flatMap((p) => p.PolicyDocument.Statement as Record<string, any>[]);
  return [...attached, ...inline];
}
/** cfn-lint's output and exit code (a bit mask: 2 errors, 4 warnings, 8 informational; 1 a crash). */
const linting = new Set<ChildProcess>();
function cfnLint(template: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('cfn-lint', ['--format', 'parseable', '--', template], { stdio: ['ignore', 'pipe', 'pipe'] });
    linting.add(child);
    child.once('exit', () => linting.delete(child));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ out, code }));
  });
}

const actionsOf = (statement: Record<string, any>): string[] => [statement.Action].flat();

describe.each(ENVIRONMENT_NAMES)('the %s environment', (name) => {
  const settings = withCorsOrigin(environments[name], DEPLOYED_ORIGIN[name]);

  it('is one top-level stack named after the environment (what `cdk deploy --all` selects)', () => {
    const { assembly } = env(name);
    expect(assembly.stacks.map((s) => s.stackName)).toEqual([`${name.charAt(0).toUpperCase()}${name.slice(1)}-Backend`]);
  });

  it('synthesizes offline into one VPC with its own CIDR, isolated subnets and no internet path', () => {
    const { template, json } = env(name);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: settings.vpcCidr });
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    for (const [, subnet] of resourcesOf(json, 'AWS::EC2::Subnet')) expect(subnet.MapPublicIpOnLaunch).toBe(false);
    const subnetNames = resourcesOf(json, 'AWS::EC2::Subnet').map(([, p]) =>
      (p.Tags as { Key: string; Value: string }[]).find((t) => t.Key === 'aws-cdk:subnet-name')?.Value,
    );
    expect(new Set(subnetNames)).toEqual(new Set(['functions', 'database']));
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('reaches S3 through a gateway endpoint and STS, KMS, Secrets Manager, Logs and X-Ray through interface endpoints', () => {
    const { json } = env(name);
    const services = resourcesOf(json, 'AWS::EC2::VPCEndpoint').map(([, p]) => ({
      type: p.VpcEndpointType,
      service: JSON.stringify(p.ServiceName),
    }));
    expect(services.filter((e) => e.type === 'Gateway').map((e) => e.service)).toEqual([expect.stringContaining('.s3')]);
    const interfaces = services.filter((e) => e.type === 'Interface').map((e) => e.service);
    for (const service of ['.sts', '.kms', '.secretsmanager', '.logs', '.xray']) {
      expect(interfaces).toContainEqual(expect.stringContaining(service));
    }
    expect(interfaces).toHaveLength(5);
  });

  it('creates one function per manifest route: Node.js 22 on ARM64, traced, in the VPC, with every config variable', () => {
    const s = env(name);
    const functions = routeFunctions(s);
    expect(functions).toHaveLength(routeList.length);
    for (const route of routeList) {
      const matching = functions.filter(([, p]) => String(p.Description).startsWith(`${route.method} ${route.path}:`));
      expect(matching).toHaveLength(1);
    }
    for (const [, p] of functions) {
      expect(p).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        MemorySize: settings.functions.memoryMiB,
        Timeout: settings.functions.timeout.toSeconds(),
        LoggingConfig: { LogFormat: 'JSON', LogGroup: expect.anything() },
      });
      expect(p.VpcConfig.SubnetIds.length).toBe(settings.maxAzs);
      const vars = p.Environment.Variables as Record<string, unknown>;
      expect(Object.keys(vars)).toEqual(expect.arrayContaining(CONFIG_VARIABLES));
      expect(vars).toMatchObject({
        APP_ENV: name,
        DB_USER: 'app_runtime',
        DB_IAM_AUTH: 'true',
        DB_SSL: 'verify-full',
        DB_PREPARE: 'true',
        DB_PORT: '5432',
        DB_POOL_MAX: String(settings.functions.dbPoolMax),
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME: 'tenant-api',
      });
      expect(Number(vars.DB_POOL_MAX)).toBeLessThanOrEqual(2);
      expect(JSON.stringify(vars.DB_HOST)).toContain('Proxy');
      expect(JSON.stringify(vars.JWKS_URL)).toContain('DataUrl');
      expect(vars).not.toHaveProperty('AWS_REGION');
    }
    for (const [, group] of resourcesOf(s.json, 'AWS::Logs::LogGroup')) {
      expect(group.RetentionInDays).toBe(settings.logRetention);
    }
  });

  it('puts every non-public method behind the Cognito authorizer and validates requests', () => {
    const { json, template } = env(name);
    const methods = resourcesOf(json, 'AWS::ApiGateway::Method').filter(([, p]) => p.HttpMethod !== 'OPTIONS');
    expect(methods).toHaveLength(routeList.length);
    const validators = resourcesOf(json, 'AWS::ApiGateway::RequestValidator');
    expect(validators).toEqual([[expect.any(String), expect.objectContaining({ ValidateRequestBody: true, ValidateRequestParameters: true })]]);
    for (const route of routeList) {
      const [, method] = methods.find(([, p]) => p.OperationName === route.id)!;
      expect(method.HttpMethod).toBe(route.method);
      expect(method.RequestValidatorId).toEqual({ Ref: validators[0]![0] });
      if (route.auth === 'public') {
        expect(method.AuthorizationType).toBe('NONE');
      } else {
        expect(method.AuthorizationType).toBe('COGNITO_USER_POOLS');
        expect(method.AuthorizerId).toBeDefined();
      }
      if (route.path.includes('{tenantId}')) expect(method.RequestParameters['method.request.path.tenantId']).toBe(true);
      if (route.body) expect(method.RequestModels['application/json']).toBeDefined();
    }
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', { Type: 'COGNITO_USER_POOLS', IdentitySource: 'method.request.header.Authorization' });
    template.hasResourceProperties('AWS::ApiGateway::Model', {
      Schema: Match.objectLike({ $schema: 'http://json-schema.org/draft-04/schema#', additionalProperties: false, required: ['name', 'contentType', 'sizeBytes'] }),
    });
  });

  it('throttles the stage, traces it, and writes JSON access logs with the tenant claim', () => {
    const { template, json } = env(name);
    const [[, stage]] = resourcesOf(json, 'AWS::ApiGateway::Stage') as [[string, Record<string, any>]];
    expect(stage.TracingEnabled).toBe(true);
    expect(stage.MethodSettings).toContainEqual(
      expect.objectContaining({ ThrottlingRateLimit: settings.throttle.rateLimit, ThrottlingBurstLimit: settings.throttle.burstLimit, LoggingLevel: 'ERROR', DataTraceEnabled: false }),
    );
    const format = JSON.parse(stage.AccessLogSetting.Format as string) as Record<string, string>;
    expect(format.tenantId).toBe('$context.authorizer.claims.custom:tenant_id');
    expect(format.requestId).toBe('$context.requestId');
    template.resourceCountIs('AWS::WAFv2::WebACL', settings.waf.enabled ? 1 : 0);
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', settings.waf.enabled ? 1 : 0);
    if (settings.waf.enabled) {
      template.hasResourceProperties('AWS::WAFv2::WebACL', {
        Scope: 'REGIONAL',
        Rules: Match.arrayWith([Match.objectLike({ Statement: { RateBasedStatement: { Limit: settings.waf.requestsPer5MinPerIp, AggregateKeyType: 'IP' } } })]),
      });
    }
  });

  it("answers API Gateway's own errors as application/problem+json", () => {
    const { json } = env(name);
    const responses = resourcesOf(json, 'AWS::ApiGateway::GatewayResponse');
    expect(responses).toHaveLength(GATEWAY_PROBLEMS.length);
    for (const [, r] of responses) {
      expect(r.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
      const body = JSON.parse(r.ResponseTemplates['application/json'] as string) as Record<string, unknown>;
      expect(body).toMatchObject({ type: expect.stringMatching(/^https:\/\//), title: expect.any(String), detail: expect.any(String), instance: '$context.requestId' });
      if (r.StatusCode !== undefined) expect(body.status).toBe(Number(r.StatusCode));
    }
    const byType = Object.fromEntries(responses.map(([, r]) => [r.ResponseType, r]));
    expect(byType.MISSING_AUTHENTICATION_TOKEN.StatusCode).toBe('404');
    expect(byType.UNAUTHORIZED.StatusCode).toBe('401');
    expect(byType.UNAUTHORIZED.ResponseParameters['gatewayresponse.header.WWW-Authenticate']).toContain('Bearer');
    expect(byType.THROTTLED.StatusCode).toBe('429');
    expect(byType.REQUEST_TOO_LARGE.StatusCode).toBe('413');
  });

  it('answers a CORS preflight on every route path at API Gateway, naming only an allowed origin', () => {
    const { json } = env(name);
    const preflights = resourcesOf(json, 'AWS::ApiGateway::Method').filter(([, p]) => p.HttpMethod === 'OPTIONS');
    const paths = new Set(routeList.map((route) => route.path));
    expect(preflights).toHaveLength(paths.size);
    for (const [, method] of preflights) {
      expect(method.AuthorizationType).toBe('NONE');
      expect(method.Integration.Type).toBe('MOCK');
      const [response] = method.Integration.IntegrationResponses as Record<string, any>[];
      expect(response!.StatusCode).toBe('204');
      // No static CORS mapping: it would override the template and answer every origin alike.
      expect(JSON.stringify(response!.ResponseParameters ?? {})).not.toMatch(/Access-Control/);
      const template = response!.ResponseTemplates['application/json'] as string;
      expect(template).not.toContain('*');
      for (const origin of settings.corsOrigins) expect(template).toContain(`$origin == "${origin}"`);
      expect(template).toMatch(/#if\([^)]*\)\s*#set\(\$context\.responseOverride\.header\.Access-Control-Allow-Origin = \$origin\)/);
      for (const name of ['Access-Control-Allow-Methods', 'Access-Control-Allow-Headers', 'Access-Control-Max-Age']) {
        expect(template).toContain(`$context.responseOverride.header.${name}`);
      }
      expect(template).toMatch(/Allow-Headers = "authorization, content-type, idempotency-key, x-correlation-id"/);
    }
  });

  it("lets the allowed origin read API Gateway's own errors (the authorizer's 401 too), never with *", () => {
    const { json } = env(name);
    for (const [, r] of resourcesOf(json, 'AWS::ApiGateway::GatewayResponse')) {
      const headers = r.ResponseParameters as Record<string, string>;
      expect(headers['gatewayresponse.header.Access-Control-Allow-Origin']).toBe(`'${settings.corsOrigins[0]}'`);
      expect(headers['gatewayresponse.header.Access-Control-Expose-Headers']).toMatch(/x-request-id.*location.*retry-after.*ratelimit-limit/);
      expect(headers['gatewayresponse.header.Vary']).toBe("'Origin'");
    }
  });

  it('lets the allowed origin PUT and GET tenant objects through presigned URLs', () => {
    const { template } = env(name);
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      CorsConfiguration: {
        CorsRules: [Match.objectLike({ AllowedOrigins: [...settings.corsOrigins], AllowedMethods: Match.arrayWith(['PUT', 'GET']), AllowedHeaders: ['content-type', 'if-none-match'] })],
      },
    });
  });

  it('runs Postgres 17 encrypted, with IAM auth, TLS forced, backups, and Multi-AZ and deletion protection as configured', () => {
    const { template, json } = env(name);
    const [[, db]] = resourcesOf(json, 'AWS::RDS::DBInstance') as [[string, Record<string, any>]];
    expect(db).toMatchObject({
      Engine: 'postgres',
      StorageEncrypted: true,
      KmsKeyId: expect.anything(),
      EnableIAMDatabaseAuthentication: true,
      PubliclyAccessible: false,
      MultiAZ: settings.database.multiAz,
      DeletionProtection: settings.database.deletionProtection,
      BackupRetentionPeriod: settings.database.backupRetention.toDays(),
      DBName: 'app',
    });
    expect(String(db.EngineVersion)).toMatch(/^17/);
    expect(db.BackupRetentionPeriod).toBeGreaterThan(0);
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', { Family: 'postgres17', Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', { RotationRules: Match.anyValue() });
  });

  it('fronts the database with an RDS Proxy that requires TLS and IAM authentication end to end', () => {
    const { template, json } = env(name);
    template.hasResourceProperties('AWS::RDS::DBProxy', {
      EngineFamily: 'POSTGRESQL',
      RequireTLS: true,
      DefaultAuthScheme: 'IAM_AUTH',
      VpcSubnetIds: Match.anyValue(),
    });
    const [[, proxy]] = resourcesOf(json, 'AWS::RDS::DBProxy') as [[string, Record<string, any>]];
    expect(proxy.Auth).toBeUndefined(); // no database password anywhere but the master secret
    const proxyRole = proxy.RoleArn['Fn::GetAtt'][0] as string;
    const connect = statementsOfRole(env(name), proxyRole).filter((st) => actionsOf(st).includes('rds-db:connect'));
    expect(JSON.stringify(connect)).toContain('/app_runtime');
    expect(JSON.stringify(connect)).toContain('/app_control');
  });

  it('lets only function → proxy → database through the security groups', () => {
    const { json } = env(name);
    const groups = Object.fromEntries(resourcesOf(json, 'AWS::EC2::SecurityGroup').map(([id, p]) => [id, p]));
    const ingress = resourcesOf(json, 'AWS::EC2::SecurityGroupIngress').map(([, p]) => p);
    const idOf = (needle: string) => Object.keys(groups).find((id) => id.includes(needle))!;
    const proxySg = idOf('DatabaseProxySg');
    const instanceSg = idOf('DatabaseInstanceSg');
    const clientSg = idOf('DatabaseClientSg');
    const migrationSg = idOf('DatabaseMigrationSg');
    const sources = (target: string) =>
      ingress.filter((r) => r.GroupId['Fn::GetAtt'][0] === target).map((r) => r.SourceSecurityGroupId?.['Fn::GetAtt']?.[0] ?? r.CidrIp);
    expect(sources(proxySg)).toEqual([clientSg]);
    const instanceSources = sources(instanceSg);
    const rotationSg = idOf('DatabaseInstanceRotationSingleUser');
    expect([...instanceSources].sort()).toEqual([proxySg, migrationSg, rotationSg].sort());
    expect(instanceSources.every((id: string) => typeof id === 'string' && id in groups)).toBe(true);
    for (const sg of [proxySg, instanceSg, clientSg, migrationSg]) {
      expect(groups[sg]!.SecurityGroupIngress ?? []).toEqual([]);
    }
  });

  it('gives rds-db:connect as app_control only to platform routes, as app_runtime only to tenant routes, AssumeRole only to storage routes, Cognito admin actions only to member routes', () => {
    const s = env(name);
    for (const route of routeList) {
      const statements = statementsOfRole(s, roleOfRoute(s, route));
      const connect = statements.filter((st) => actionsOf(st).includes('rds-db:connect'));
      const assume = statements.filter((st) => actionsOf(st).includes('sts:AssumeRole'));
      const kms = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:')));
      if (route.auth === 'public') expect(connect).toEqual([]);
      else {
        expect(connect).toHaveLength(1);
        // Tenant route functions can never log in as the control plane, nor platform ones as the runtime.
        const user = route.auth === 'platform' ? 'app_control' : 'app_runtime';
        expect(JSON.stringify(connect[0]!.Resource)).toMatch(new RegExp(`dbuser.*/${user}"`));
      }
      if (route.usesStorage) {
        expect(assume).toHaveLength(1);
        expect(JSON.stringify(assume[0]!.Resource)).toContain('StorageTenantAccessRole');
      } else expect(assume).toEqual([]);
      expect(kms.length > 0).toBe(Boolean(route.usesPii));
      // Exactly the manifest's Cognito admin actions, on this stack's user pool only.
      const directory = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('cognito-idp:')));
      if (route.directory) {
        expect(directory).toHaveLength(1);
        expect([...actionsOf(directory[0]!)].sort()).toEqual(route.directory.map((a) => `cognito-idp:${a}`).sort());
        expect(JSON.stringify(directory[0]!.Resource)).toMatch(/IdentityUserPool[A-Za-z0-9]*","Arn"/);
      } else expect(directory).toEqual([]);
      expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('s3:'))).toEqual([]);
    }
  });

  it('lets only the roles of storage routes, the job runner and the storage reconciler assume the tenant-access role, whose own policy is tenantAccessRolePolicy()', () => {
    const s = env(name);
    const [[roleId, role]] = resourcesOf(s.json, 'AWS::IAM::Role').filter(([id]) => id.startsWith('StorageTenantAccessRole')) as [[string, Record<string, any>]];
    const trusted = (role.AssumeRolePolicyDocument.Statement as any[]).flatMap((st) => [st.Principal.AWS].flat());
    const background = ['Job runner:', 'Storage reconciler:'].map((prefix) => {
      const [[, fn]] = resourcesOf(s.json, 'AWS::Lambda::Function').filter(([, p]) => String(p.Description).startsWith(prefix)) as [[string, Record<string, any>]];
      return { 'Fn::GetAtt': [fn.Role['Fn::GetAtt'][0] as string, 'Arn'] };
    });
    const expected = [...routeList.filter((r) => r.usesStorage).map((r) => ({ 'Fn::GetAtt': [roleOfRoute(s, r), 'Arn'] })), ...background];
    expect(trusted).toEqual(expect.arrayContaining(expected));
    expect(trusted).toHaveLength(expected.length);
    const bucket = resourcesOf(s.json, 'AWS::S3::Bucket').find(([id]) => id.startsWith('StorageTenantDocuments'))![0];
    const inline = role.Policies as { PolicyDocument: { Statement: any[] } }[];
    expect(inline).toHaveLength(1);
    const expectedDoc = tenantAccessRolePolicy('BUCKET', 'PARTITION');
    // Name the bucket and partition tokens, then compare with the document the storage proofs simulate.
    const normalize = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(normalize);
      if (value && typeof value === 'object') {
        const o = value as Record<string, unknown>;
        if (o.Ref === bucket) return 'BUCKET';
        if (o.Ref === 'AWS::Partition') return 'PARTITION';
        if (Array.isArray(o['Fn::Join'])) {
          const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
          return parts.map(normalize).join(sep);
        }
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, normalize(v)]));
      }
      return value;
    };
    const normalized = normalize(inline[0]!.PolicyDocument);
    expect(normalized).toEqual(JSON.parse(JSON.stringify(expectedDoc)));
    expect(roleId).toMatch(/^StorageTenantAccessRole/);
  });

  it('has no S3 permission on a wildcard resource outside tenants/*', () => {
    const s = env(name);
    const documents = [
      ...resourcesOf(s.json, 'AWS::IAM::Policy').map(([, p]) => p.PolicyDocument),
      ...resourcesOf(s.json, 'AWS::IAM::Role').flatMap(([, p]) => ((p.Policies ?? []) as any[]).map((x) => x.PolicyDocument)),
      ...resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').map(([, p]) => p.PolicyDocument),
    ];
    for (const statement of documents.flatMap((d) => d.Statement as any[])) {
      if (statement.Effect !== 'Allow' || !actionsOf(statement).some((a) => a.startsWith('s3:') || a === '*')) continue;
      for (const resource of [statement.Resource].flat()) {
        const text = typeof resource === 'string' ? resource : JSON.stringify(s.stack.resolve(resource));
        // tenants/* (the tenant-access role) or audit-heads/* (the audit sealer's PutObject, checked below).
        if (text.includes('*')) expect(text).toMatch(/\/(tenants|audit-heads)\/\*"?\]*\]*\}*$/);
      }
    }
  });

  it('keeps tenant documents in an encrypted, versioned, private, TLS-only bucket with access logs', () => {
    const { template } = env(name);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }), BucketKeyEnabled: true })] },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'tenant-documents/' }),
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: settings.noncurrentVersionDays } })]) },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('has a user pool with an immutable tenant claim, a role claim, an app client without secret, and MFA as configured', () => {
    const { template, json } = env(name);
    const [[, pool]] = resourcesOf(json, 'AWS::Cognito::UserPool') as [[string, Record<string, any>]];
    expect(pool.Schema).toEqual(expect.arrayContaining([
      expect.objectContaining({ Name: 'tenant_id', Mutable: false, AttributeDataType: 'String' }),
      expect.objectContaining({ Name: 'role', Mutable: true }),
    ]));
    expect(pool.Policies.PasswordPolicy).toMatchObject({ MinimumLength: 12, RequireSymbols: true, RequireNumbers: true, RequireUppercase: true, RequireLowercase: true });
    expect(pool.MfaConfiguration).toBe({ off: 'OFF', optional: 'OPTIONAL', required: 'ON' }[settings.identity.mfa]);
    if (settings.identity.advancedSecurity) expect(pool.UserPoolAddOns).toEqual({ AdvancedSecurityMode: 'ENFORCED' });
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', { GenerateSecret: false });
  });

  it('applies migrations on deploy with a custom resource that re-runs when db/migrations changes', () => {
    const { template, json } = env(name);
    template.hasResourceProperties('Custom::DatabaseMigrations', {
      MigrationsHash: migrationsHash(path.join(ROOT, 'db', 'migrations')),
      Database: 'app',
      SecretArn: Match.anyValue(),
    });
    // Only the migration function reads the master secret.
    const readers = resourcesOf(json, 'AWS::IAM::Policy').filter(([, p]) =>
      (p.PolicyDocument.Statement as any[]).some((st) => actionsOf(st).includes('secretsmanager:GetSecretValue')),
    );
    expect(readers.map(([id]) => id)).toEqual([expect.stringMatching(/^DatabaseMigrate/)]);
  });

  it('alarms on 5xx rate, p99 latency, throttles, quota rejections, proxy pinning and AssumeRole errors', () => {
    const { json, template } = env(name);
    const alarms = JSON.stringify(resourcesOf(json, 'AWS::CloudWatch::Alarm'));
    for (const metric of ['5XXError', 'Latency', 'Throttles', 'QuotaRejections', 'DatabaseConnectionsCurrentlySessionPinned', 'TenantAssumeRoleErrors']) {
      expect(alarms).toContain(metric);
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DatabaseConnectionsCurrentlySessionPinned',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.resourceCountIs('AWS::Logs::MetricFilter', routeList.filter((r) => r.usesStorage).length);
  });

  it('saves the per-tenant Logs Insights queries over every route\'s log group and shows them on the dashboard', () => {
    const { json } = env(name);
    const queries = resourcesOf(json, 'AWS::Logs::QueryDefinition').map(([, q]) => q);
    expect(queries.map((q) => q.Name).sort()).toEqual(Object.keys(TENANT_QUERIES).map((n) => `${name}/tenants/${n}`).sort());
    for (const q of queries) {
      expect(q.LogGroupNames).toHaveLength(routeList.length);
      expect(q.QueryString).toMatch(/filter message = "request" and ispresent\(tenant_id\)/);
      expect(q.QueryString).toMatch(/stats .* by tenant_id/);
    }
    const [[, dashboard]] = resourcesOf(json, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard!.DashboardBody);
    expect(body).toContain('logs-insights');
    for (const n of Object.keys(TENANT_QUERIES)) expect(body).toContain(n);
  });

  it('anchors the audit chain heads in an object-locked bucket that only the scheduled sealer may write to', () => {
    const s = env(name);
    const { json } = s;
    const anchor = settings.auditAnchor;
    const buckets = resourcesOf(json, 'AWS::S3::Bucket').filter(([, p]) => p.ObjectLockEnabled === true);
    expect(buckets).toHaveLength(1);
    const [bucketId, bucket] = buckets[0]!;
    expect(bucket.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: anchor.lockMode, Days: anchor.retentionDays } },
    });
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect((json.Resources[bucketId] as { DeletionPolicy?: string }).DeletionPolicy).toBe('Retain');
    if (name === 'prod') expect(anchor.lockMode).toBe('COMPLIANCE');

    // The sealer: logs in as app_sealer, told the bucket, run by a schedule and by nothing else.
    const [[sealerId, sealer]] = resourcesOf(json, 'AWS::Lambda::Function').filter(([, p]) => String(p.Description).startsWith('Scheduled: seals the audit chains')) as [[string, Record<string, any>]];
    expect(sealer.Environment.Variables).toMatchObject({ DB_USER: 'app_sealer', AUDIT_ANCHOR_BUCKET: { Ref: bucketId } });
    expect(sealer.Environment.Variables).not.toHaveProperty('TENANT_BUCKET');
    // The sealer's own schedule (the job sweeper and the storage reconciler have theirs).
    const rules = resourcesOf(json, 'AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Targets).includes(sealerId));
    expect(rules).toHaveLength(1);
    expect(rules[0]![1]).toMatchObject({ ScheduleExpression: `rate(${anchor.everyMinutes} minutes)`, State: 'ENABLED' });
    expect(rules[0]![1].Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [sealerId, 'Arn'] } })]);
    const invokers = resourcesOf(json, 'AWS::Lambda::Permission').filter(([, p]) => JSON.stringify(p.FunctionName).includes(sealerId));
    expect(invokers.map(([, p]) => [p.Principal, p.SourceArn])).toEqual([['events.amazonaws.com', { 'Fn::GetAtt': [rules[0]![0], 'Arn'] }]]);

    // Least privilege: PutObject under audit-heads/ and rds-db:connect as app_sealer; X-Ray is every function's.
    const statements = statementsOfRole(s, sealer.Role['Fn::GetAtt'][0] as string);
    const actions = statements.flatMap(actionsOf).sort();
    expect(actions).toEqual(['rds-db:connect', 's3:PutObject', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    const put = statements.find((st) => actionsOf(st).includes('s3:PutObject'))!;
    expect(put.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/audit-heads/*']] });
    const connect = statements.find((st) => actionsOf(st).includes('rds-db:connect'))!;
    expect(JSON.stringify(connect.Resource)).toMatch(/\/app_sealer"/);

    // Nobody else is granted anything on the bucket: no read, delete, retention change or governance bypass.
    const grantsOnBucket = [
      ...resourcesOf(json, 'AWS::IAM::Policy').flatMap(([id, p]) => (p.PolicyDocument.Statement as any[]).map((st) => [id, st] as const)),
      ...resourcesOf(json, 'AWS::IAM::Role').flatMap(([id, p]) => ((p.Policies ?? []) as any[]).flatMap((x) => (x.PolicyDocument.Statement as any[]).map((st) => [id, st] as const))),
    ].filter(([, st]) => st.Effect === 'Allow' && JSON.stringify(st.Resource).includes(bucketId));
    expect(grantsOnBucket.map(([, st]) => actionsOf(st))).toEqual([['s3:PutObject']]);
    // The sealer's failures are alarmed.
    expect(JSON.stringify(resourcesOf(json, 'AWS::CloudWatch::Alarm').map(([, p]) => p.Dimensions))).toContain(sealerId);
  });

  it('passes cdk-nag AwsSolutions with no unacknowledged error or warning', () => {
    const report = new AwsSolutionsChecks().validateScope(env(name).stack);
    const findings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${(r as { constructPath?: string }).constructPath}`));
    expect(findings).toEqual([]);
  });
});

describe('the deployed smoke test principal', () => {
  it('is trusted by the tenant-access role only when named with -c smokeTestPrincipal', () => {
    const arn = 'arn:aws:iam::111111111111:role/ci-deploy';
    const trustedOf = (s: SynthesizedEnvironment) => {
      const [[, role]] = resourcesOf(s.json, 'AWS::IAM::Role').filter(([id]) => id.startsWith('StorageTenantAccessRole')) as [[string, Record<string, any>]];
      return (role.AssumeRolePolicyDocument.Statement as any[]).flatMap((st) => [st.Principal.AWS].flat());
    };
    const withPrincipal = synthEnvironment('dev', { outdir: path.join(outdir, 'dev-smoke'), smokeTestPrincipalArn: arn });
    expect(trustedOf(withPrincipal)).toContain(arn);
    expect(trustedOf(env('dev'))).not.toContain(arn);
  });
});

describe('the browser origin of a deployed environment', () => {
  it('is none unless the deployer names one: no origin may read API answers or use presigned URLs', () => {
    expect(environments.staging.corsOrigins).toEqual([]);
    expect(environments.prod.corsOrigins).toEqual([]);
    const unnamed = synthEnvironment('prod', { outdir: path.join(outdir, 'prod-no-origin') });
    for (const [, r] of resourcesOf(unnamed.json, 'AWS::ApiGateway::GatewayResponse')) {
      expect(JSON.stringify(r.ResponseParameters ?? {})).not.toMatch(/Access-Control-Allow-Origin/);
    }
    const [[, bucket]] = resourcesOf(unnamed.json, 'AWS::S3::Bucket').filter(([, b]) => b.VersioningConfiguration) as [[string, Record<string, any>]];
    expect(bucket.CorsConfiguration).toBeUndefined();
    const lambdaOrigins = resourcesOf(unnamed.json, 'AWS::Lambda::Function')
      .map(([, f]) => f.Environment?.Variables?.CORS_ORIGINS)
      .filter((v) => v !== undefined && v !== '');
    expect(lambdaOrigins).toEqual([]);
  });

  it('is one bare origin given with -c corsOrigin; a path, a wildcard or a list is refused', () => {
    expect(withCorsOrigin(environments.prod, 'https://App.Example.com:8443').corsOrigins).toEqual(['https://app.example.com:8443']);
    expect(withCorsOrigin(environments.dev, undefined)).toBe(environments.dev);
    for (const bad of ['*', 'https://app.example.com/', 'https://a.example.com,https://b.example.com', 'app.example.com', 'ftp://x.example.com', 42]) {
      expect(() => withCorsOrigin(environments.prod, bad)).toThrow(/corsOrigin must be one origin/);
    }
  });
});

describe('the environments together', () => {
  it('use distinct VPC CIDRs', () => {
    const cidrs = ENVIRONMENT_NAMES.map((n) => resourcesOf(env(n).json, 'AWS::EC2::VPC')[0]![1].CidrBlock);
    expect(new Set(cidrs).size).toBe(ENVIRONMENT_NAMES.length);
  });

  it('pass cfn-lint with no error', async () => {
    const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error('cfn-lint is not installed: `pip install cfn-lint` (or `pip install "moto[server]"`, which brings it) and run again.');
    }
    const templates = ENVIRONMENT_NAMES.flatMap((n) => {
      const dir = env(n).assembly.directory;
      return readdirSync(dir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(dir, f));
    });
    expect(templates).toHaveLength(ENVIRONMENT_NAMES.length);
    // One process per template, in parallel; errors fail the test (warnings are cfn-lint's advice).
    const outputs = await Promise.all(templates.map((template) => cfnLint(template)));
    const errors = outputs.flatMap(({ out }) => out.split('\n')).filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
    for (const { out, code } of outputs) {
      if (code === null || (code & 3) !== 0) throw new Error(`cfn-lint failed (exit ${code}):\n${out}`);
    }
    // cfn-lint takes a minute per template alone and several on a loaded shared machine; a timeout here
    // says nothing of the templates.
  }, 600_000);
});
