/**
 * The migration custom resource (not an API route): on every deploy whose migrations changed, CloudFormation
 * calls this function, which reads the RDS master secret from Secrets Manager, connects straight to the
 * database instance (not the proxy: the owner's credentials exist only here) with TLS verify-full, and
 * runs `migrate()` from db/migrate.ts over the SQL files bundled next to it. The runner is idempotent and
 * refuses a file edited after it was applied, so a failed or repeated run is safe; a failure fails the
 * deploy and CloudFormation rolls back.
 *
 * Secrets Manager is called through the AWS SDK that the Lambda Node.js 22 runtime ships: that one client
 * is left out of the bundle (everything else, postgres.js included, is bundled with the versions of
 * package-lock.json), and loaded with `require` because the runtime's SDK is found through NODE_PATH.
 */
import path from 'node:path';
import { migrate } from '../../db/migrate';

/** The Provider framework's event, as far as this function reads it. */
export interface MigrationEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: {
    readonly SecretArn: string;
    readonly Host: string;
    readonly Port: string;
    readonly Database: string;
    /** A hash of db/migrations: a changed file changes it, which makes CloudFormation call us again. */
    readonly MigrationsHash: string;
  };
}

export interface MigrationResult {
  readonly PhysicalResourceId: string;
  readonly Data: { readonly Applied: string; readonly Skipped: string };
}

interface SecretsManagerModule {
  SecretsManagerClient: new (config: object) => { send(command: unknown): Promise<{ SecretString?: string }> };
  GetSecretValueCommand: new (input: { SecretId: string }) => unknown;
}

/** Reads `{ username, password }` of the master secret. */
async function masterCredentials(secretArn: string): Promise<{ username: string; password: string }> {
  const sdk = require('@aws-sdk/client-secrets-manager') as SecretsManagerModule;
  const client = new sdk.SecretsManagerClient({});
  const out = await client.send(new sdk.GetSecretValueCommand({ SecretId: secretArn }));
  const secret = JSON.parse(out.SecretString ?? '{}') as { username?: unknown; password?: unknown };
  if (typeof secret.username !== 'string' || typeof secret.password !== 'string') {
    throw new Error('The master secret has no username and password');
  }
  return { username: secret.username, password: secret.password };
}

/** The connection URL of the owner: TLS verify-full (the RDS CA comes from NODE_EXTRA_CA_CERTS). */
export function databaseUrl(p: { username: string; password: string; host: string; port: string; database: string }): string {
  const user = encodeURIComponent(p.username);
  const password = encodeURIComponent(p.password);
  return `postgres://${user}:${password}@${p.host}:${p.port}/${encodeURIComponent(p.database)}?sslmode=verify-full`;
}

export async function handler(event: MigrationEvent): Promise<MigrationResult | { PhysicalResourceId: string }> {
  const physicalId = `migrations-${event.ResourceProperties.Database}`;
  // Forward-only: removing the resource never undoes a migration.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId ?? physicalId };
  const props = event.ResourceProperties;
  const credentials = await masterCredentials(props.SecretArn);
  const result = await migrate(
    databaseUrl({ ...credentials, host: props.Host, port: props.Port, database: props.Database }),
    // The bundling step copies db/migrations next to the bundle.
    { dir: path.join(__dirname, 'migrations'), log: (line) => console.log(line) },
  );
  console.log(`migrations: ${result.applied.length} applied, ${result.skipped.length} already applied`);
  return {
    PhysicalResourceId: physicalId,
    Data: { Applied: result.applied.join(','), Skipped: String(result.skipped.length) },
  };
}
