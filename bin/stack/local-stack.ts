/**
 * The whole API on one machine, for `npm start` (bin/local.ts) and the e2e tests alike: Postgres (embedded,
 * or given), the AWS emulator (moto_server spawned, or given), the bucket and tenant-access role, the PII
 * KMS key, the Cognito pool, app client and seed users, the seed, and the local API server that feeds the
 * real handler modules the events API Gateway would send.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { createAuthenticator } from '../../functions/core/auth';
import { parseConfig, toEnvironment, type AppConfig } from '../../functions/core/config';
import type { Role } from '../../functions/core/tenant';
import { startAuditSealer } from './audit-sealer';
import { provisionStorage } from './aws';
import { routeList, type LambdaHandler } from '../../functions/routes';
import { close, createLocalApiServer, listen, loadRouteHandler, type LocalRoute } from './http-server';
import { provisionIdentity, provisionPiiKey, signIn, type EmulatorAccess, type IdentitySpec } from './identity';
import { startEmulator, type EmulatorHandle } from './moto';
import { freePort } from './ports';
import { startEmbeddedPostgres, type PostgresHandle } from './postgres';
import { startJobRunner, type JobRunner } from './job-runner';
import { SEED_TENANTS, seedDatabase, seedUsers, type SeedTenant } from './seed';

/** Where the database comes from: an embedded cluster in `dir`, or servers already running. */
export type DatabaseSource =
  | { readonly dir: string; readonly port?: number; readonly persistent: boolean }
  | { readonly adminUrl: string; readonly runtimeUrl: string; readonly controlUrl: string };

export interface LocalStackOptions {
  readonly database: DatabaseSource;
  /** An emulator endpoint to use; without one, moto_server is spawned on a free port. */
  readonly emulatorEndpoint?: string;
  /** Storage the caller already provisioned (the Jest global setup's); else the stack provisions its own. */
  readonly storage?: { readonly bucket: string; readonly roleArn: string };
  /** Port of the API server; 0 (the default) picks a free one. */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default SEED_TENANTS (acme, globex) */
  readonly tenants?: readonly SeedTenant[];
  /** Name of the Cognito pool (and prefix of the client and KMS alias); stacks with one name share them. @default 'tenant-sovereign-local' */
  readonly name?: string;
  /** Password of every seed user. @default a random one */
  readonly password?: string;
  /** Keep seed users' `sub` stable across fresh moto emulators (see identity.ts). Only when nothing else uses the emulator. */
  readonly stableSubs?: boolean;
  readonly region?: string;
  /** Seal the audit trail into its hash chain every this many ms (`npm start`); off by default. */
  readonly auditSealMs?: number;
  /**
   * Browser origins allowed by the API and the bucket (CORS). @default `CORS_ORIGINS` from the
   * environment, else {@link LOCAL_CORS_ORIGINS}
   */
  readonly corsOrigins?: readonly string[];
  /**
   * Run the queued jobs (exports, offboardings) in this process, as the queue does deployed. Off for a
   * stack that shares its database with stacks of other names (tests): their KMS keys and Cognito pools
   * are not this one's, so a job of theirs would fail here. @default true
   */
  readonly runJobs?: boolean;
  /** Postgres and emulator chatter. */
  readonly log?: (line: string) => void;
  /** Handler crashes and server failures (the client only ever sees a generic 500). */
  readonly onError?: (error: unknown) => void;
  /** Routes served beside the manifest's, with their handlers (tests of the route platform itself). */
  readonly extraRoutes?: readonly { readonly route: LocalRoute; readonly handler: LambdaHandler }[];
}

/** A seeded user and how to sign in as it. */
export interface SeedAccount extends IdentitySpec {
  readonly sub: string;
  readonly password: string;
}

export interface LocalStack {
  /** The API's base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly endpoint: string;
  readonly region: string;
  readonly userPoolId: string;
  readonly clientId: string;
  readonly piiKeyId: string;
  readonly bucket: string;
  /** The database as its superuser (owner-run commands such as `npm run operators`). */
  readonly adminUrl: string;
  /** The handlers' environment (functions/core/config.ts): what local commands such as `npm run storage:reconcile` run with. */
  readonly environment: Record<string, string>;
  /** The password of every user the stack creates: the seed users and, through LOCAL_USER_PASSWORD, users created by the API. */
  readonly password: string;
  readonly tenants: readonly SeedTenant[];
  readonly accounts: readonly SeedAccount[];
  /** The account for `role` in `tenantId` (no tenant for `superadmin`). */
  account(tenantId: string | undefined, role: Role): SeedAccount;
  /** A fresh ID token signed by the emulator for that account. */
  token(tenantId: string | undefined, role: Role): Promise<string>;
  /** Stops the server and everything the stack started, and restores the environment it changed. */
  stop(): Promise<void>;
}

/** The origin of a front-end dev server (Vite's default port), allowed when `CORS_ORIGINS` is not set. */
export const LOCAL_CORS_ORIGINS: readonly string[] = ['http://localhost:5173'];

/**
 * The environment the handler modules' configuration is parsed from, written through the one contract
 * (functions/core/config.ts). Settings the stack does not decide (DB_POOL_MAX, PRESIGN_SECONDS, …) keep
 * what the caller's environment says, as before.
 */
function handlerEnvironment(settings: {
  runtimeUrl: string;
  controlUrl: string;
  access: EmulatorAccess;
  bucket: string;
  roleArn: string;
  userPoolId: string;
  clientId: string;
  jwksUrl: string;
  piiKeyId: string;
  corsOrigins: readonly string[];
  localUserPassword: string;
}): Record<string, string> {
  const base = parseConfig(process.env);
  const config: AppConfig = {
    ...base,
    database: { ...base.database, url: settings.runtimeUrl, control: { ...base.database.control, url: settings.controlUrl } },
    aws: { region: settings.access.region, endpoint: settings.access.endpoint, credentials: settings.access.credentials },
    storage: { ...base.storage, bucket: settings.bucket, tenantAccessRoleArn: settings.roleArn },
    auth: {
      userPoolId: settings.userPoolId,
      clientId: settings.clientId,
      jwksUrl: settings.jwksUrl,
      localUserPassword: settings.localUserPassword,
    },
    pii: { ...base.pii, kmsKeyId: settings.piiKeyId },
    cors: { allowedOrigins: settings.corsOrigins },
  };
  return toEnvironment(config);
}

/**
 * The job runner over the container's providers (loaded after the environment is set, like the handlers):
 * the control-plane client, the KMS keys, the user directory and the tenants' scoped objects.
 */
function startLocalJobRunner(onError?: (error: unknown) => void): JobRunner {
  const { controlSql } = require('../../functions/core/db') as typeof import('../../functions/core/db');
  const { containerJobRunners } = require('../../functions/jobs/runners') as typeof import('../../functions/jobs/runners');
  const db = controlSql();
  // The same runners as the deployed queue-triggered function (functions/jobs/run.ts).
  return startJobRunner({ db, onError, runners: containerJobRunners(db) });
}

/** Sets `values` in process.env and returns a function that puts the previous values back. */
function applyEnvironment(values: Record<string, string>): () => void {
  const previous = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  Object.assign(process.env, values);
  return () => {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/**
 * Starts the stack. Everything it started is stopped again when a later step fails, so a failed start
 * leaves no process behind. The handler modules read their configuration from process.env, which this
 * sets (and `stop()` restores) before the first handler module is loaded.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const name = options.name ?? 'tenant-sovereign-local';
  const tenants = options.tenants ?? SEED_TENANTS;
  const password = options.password ?? `Local-${randomBytes(12).toString('base64url')}-1a`;
  const credentials = {
    // An emulator accepts any keys; never let the SDK go looking for real ones (profiles, SSO).
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
  };
  // Parsed (and refused when malformed) exactly as the handlers parse it.
  const envOrigins = parseConfig({ CORS_ORIGINS: process.env.CORS_ORIGINS }).cors.allowedOrigins;
  const corsOrigins = options.corsOrigins ?? (process.env.CORS_ORIGINS === undefined ? LOCAL_CORS_ORIGINS : envOrigins);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => options.onError?.(error));
  };

  try {
    const source = options.database;
    const [database, emulator] = await Promise.allSettled([
      'dir' in source
        ? startEmbeddedPostgres({ dir: source.dir, port: source.port ?? (await freePort()), persistent: source.persistent, log: options.log })
        : Promise.resolve(undefined),
      startEmulator({ endpoint: options.emulatorEndpoint }),
    ]);
    for (const started of [database, emulator]) {
      if (started.status === 'fulfilled' && started.value) {
        const handle: PostgresHandle | EmulatorHandle = started.value;
        cleanups.push(() => handle.stop());
      }
    }
    if (database.status === 'rejected') throw database.reason;
    if (emulator.status === 'rejected') throw emulator.reason;
    const adminUrl = database.value ? database.value.adminUrl : (source as { adminUrl: string }).adminUrl;
    const runtimeUrl = database.value ? database.value.roleUrl('app_runtime') : (source as { runtimeUrl: string }).runtimeUrl;
    const controlUrl = database.value ? database.value.roleUrl('app_control') : (source as { controlUrl: string }).controlUrl;
    const access: EmulatorAccess = { endpoint: emulator.value.endpoint, region, credentials };

    const storage =
      options.storage ??
      (await provisionStorage({
        endpoint: access.endpoint,
        region,
        bucket: `${name}-documents`,
        roleName: `${name}-tenant-access`,
        credentials,
        corsOrigins,
      }));

    const users = seedUsers(tenants);
    let identity: Awaited<ReturnType<typeof provisionIdentity>> | undefined;
    let piiKeyId = '';
    await seedDatabase({
      adminUrl,
      access,
      tenants,
      users,
      provision: async () => {
        piiKeyId = await provisionPiiKey(access, `alias/${name}-pii`);
        identity = await provisionIdentity(access, { poolName: name, users, password, stableSubs: options.stableSubs });
        return { subs: identity.subs, piiKeyId };
      },
    });
    const { userPoolId, clientId, jwksUrl, subs } = identity!;
    if (options.auditSealMs) {
      const sealer = startAuditSealer(adminUrl, { everyMs: options.auditSealMs, onError: options.onError });
      cleanups.push(() => sealer.stop());
    }

    const environment = handlerEnvironment({
      runtimeUrl, controlUrl, access, bucket: storage.bucket, roleArn: storage.roleArn, userPoolId, clientId, jwksUrl, piiKeyId, corsOrigins,
      localUserPassword: password,
    });
    const restoreEnvironment = applyEnvironment(environment);
    cleanups.push(async () => restoreEnvironment());

    // Offboarding and export jobs, run in-process as the queue-triggered function runs them deployed.
    const jobs = options.runJobs === false ? undefined : startLocalJobRunner(options.onError);
    if (jobs) cleanups.push(() => jobs.stop());

    const extraRoutes = options.extraRoutes ?? [];
    const server: http.Server = createLocalApiServer({
      authenticator: createAuthenticator({ userPoolId, clientId, jwksUrl }),
      onError: options.onError,
      routes: [...routeList, ...extraRoutes.map((r) => r.route)],
      loadHandler: (route) => extraRoutes.find((r) => r.route.id === route.id)?.handler ?? loadRouteHandler(route),
      corsOrigins,
    });
    const url = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
    cleanups.push(async () => {
      await close(server);
      // The handlers' pooled connections (created on first use, like in a Lambda container).
      const db = require('../../functions/core/db') as typeof import('../../functions/core/db');
      await db.endContainerClients(2);
    });

    const accounts: SeedAccount[] = users.map((u) => ({ ...u, sub: subs.get(u.username)!, password }));
    const account = (tenantId: string | undefined, role: Role): SeedAccount => {
      const found = accounts.find((a) => a.role === role && (role === 'superadmin' || a.tenantId === tenantId));
      if (!found) throw new Error(`no seed user with role ${role}${tenantId ? ` in tenant ${tenantId}` : ''}`);
      return found;
    };
    let stopped: Promise<void> | undefined;
    return {
      url,
      endpoint: access.endpoint,
      region,
      userPoolId,
      clientId,
      piiKeyId,
      bucket: storage.bucket,
      adminUrl,
      environment,
      password,
      tenants,
      accounts,
      account,
      token: (tenantId, role) => signIn(access, { clientId, username: account(tenantId, role).username, password }),
      stop: () => (stopped ??= cleanUp()),
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
