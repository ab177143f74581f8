/**
 * Reads pg_catalog and fails when the schema stops being fail-closed. This is what keeps the next
 * migration honest: a tenant table without forced RLS, without a foreign key to tenants or an index
 * leading with tenant_id, a table app_runtime may change without the audit trigger, a policy not scoped
 * to the tenant, a grant too many, a SECURITY DEFINER function or a view without security_invoker
 * breaks the build here. Each rule (test/support/catalog.ts) is run against the migrated database,
 * where it finds nothing, and against a scratch database with one weak migration, where it must find
 * exactly what that migration broke.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS_DIR, migrate } from '../../db/migrate';
import type { Sql } from '../../functions/core/db';
import { adminSql } from '../support/db';
import {
  auditTriggerViolations,
  catalogViolations,
  policyScopeViolations,
  rowLevelSecurityViolations,
  tenantForeignKeyViolations,
  tenantLeadingKeyViolations,
  offboardingPurgeViolations,
  definerFunctions,
  definerViolations,
  type Violation,
} from '../support/catalog';

const AUDIT_TRIGGER = `CREATE CONSTRAINT TRIGGER catalog_probe_audited AFTER INSERT OR DELETE OR UPDATE ON app.catalog_probe
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();
`;

/**
 * A tenant table written the way the README recipe says; each weak migration breaks one thing in it. Its
 * name is one no feature takes (the recipe's own example, `notes`, may well exist in the schema).
 */
const SOUND = `SET LOCAL ROLE app_owner;
CREATE TABLE app.catalog_probe (
  tenant_id  text NOT NULL REFERENCES app.tenants (id),
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  body       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX catalog_probe_created_idx ON app.catalog_probe (tenant_id, created_at DESC, id DESC);
ALTER TABLE app.catalog_probe ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.catalog_probe FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.catalog_probe
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
CREATE POLICY control_plane ON app.catalog_probe TO app_control USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON app.catalog_probe TO app_runtime;
GRANT SELECT, DELETE ON app.catalog_probe TO app_control;
${AUDIT_TRIGGER}`;

/** Replaces `from` (which must occur) in the sound migration. */
function weaken(from: string, to: string): string {
  if (!SOUND.includes(from)) throw new Error(`the sound migration has no ${JSON.stringify(from)}`);
  return SOUND.replace(from, to);
}

const weakMigrations: [string, string, (sql: Sql) => Promise<Violation[]>, Violation[]][] = [
  [
    'a tenant table without a foreign key to app.tenants',
    weaken('tenant_id  text NOT NULL REFERENCES app.tenants (id)', 'tenant_id  text NOT NULL'),
    tenantForeignKeyViolations,
    [{ rule: 'tenant-foreign-key', object: 'app.catalog_probe', detail: expect.any(String) }],
  ],
  [
    'a tenant table whose primary key does not lead with tenant_id',
    weaken('PRIMARY KEY (tenant_id, id)', 'PRIMARY KEY (id, tenant_id)'),
    tenantLeadingKeyViolations,
    [{ rule: 'tenant-leading-key', object: 'app.catalog_probe', detail: 'index app.catalog_probe_pkey does not lead with tenant_id' }],
  ],
  [
    'a tenant table without a primary key',
    weaken(',\n  PRIMARY KEY (tenant_id, id)', ''),
    tenantLeadingKeyViolations,
    [{ rule: 'tenant-leading-key', object: 'app.catalog_probe', detail: 'no primary key' }],
  ],
  [
    'a tenant table with an index that does not lead with tenant_id',
    weaken('ON app.catalog_probe (tenant_id, created_at DESC, id DESC)', 'ON app.catalog_probe (created_at DESC, id DESC)'),
    tenantLeadingKeyViolations,
    [{ rule: 'tenant-leading-key', object: 'app.catalog_probe', detail: 'index app.catalog_probe_created_idx does not lead with tenant_id' }],
  ],
  [
    'a table app_runtime may change without the audit trigger',
    weaken(AUDIT_TRIGGER, ''),
    auditTriggerViolations,
    [{ rule: 'audit-trigger', object: 'app.catalog_probe', detail: 'app_runtime may INSERT, UPDATE, DELETE without the audit trigger' }],
  ],
  [
    'an audit trigger that does not cover DELETE',
    weaken('AFTER INSERT OR DELETE OR UPDATE ON app.catalog_probe', 'AFTER INSERT OR UPDATE ON app.catalog_probe'),
    auditTriggerViolations,
    [{ rule: 'audit-trigger', object: 'app.catalog_probe', detail: 'app_runtime may DELETE without the audit trigger' }],
  ],
  [
    'a policy not scoped to app.tenant_id',
    `${SOUND}CREATE POLICY everyone_reads ON app.catalog_probe FOR SELECT USING (true);
`,
    policyScopeViolations,
    [{ rule: 'policy-scope', object: 'app.catalog_probe.everyone_reads', detail: expect.any(String) }],
  ],
  [
    'a policy scoped to the user instead of the tenant',
    `${SOUND}CREATE POLICY own_notes ON app.catalog_probe USING (created_at IS NOT NULL AND current_setting('app.user_id', true) IS NOT NULL);
`,
    policyScopeViolations,
    [{ rule: 'policy-scope', object: 'app.catalog_probe.own_notes', detail: expect.any(String) }],
  ],
  [
    'a tenant table without ENABLE ROW LEVEL SECURITY',
    weaken('ALTER TABLE app.catalog_probe ENABLE ROW LEVEL SECURITY;\n', ''),
    rowLevelSecurityViolations,
    [{ rule: 'row-level-security', object: 'app.catalog_probe', detail: 'row-level security is not enabled' }],
  ],
  [
    'a tenant table without FORCE ROW LEVEL SECURITY',
    weaken('ALTER TABLE app.catalog_probe FORCE ROW LEVEL SECURITY;\n', ''),
    rowLevelSecurityViolations,
    [{ rule: 'row-level-security', object: 'app.catalog_probe', detail: 'row-level security is not forced' }],
  ],
  [
    'a tenant table the control plane may not delete from (offboarding could not purge it)',
    weaken('GRANT SELECT, DELETE ON app.catalog_probe TO app_control;\n', ''),
    offboardingPurgeViolations,
    [{ rule: 'offboarding-purge', object: 'app.catalog_probe', detail: 'app_control may not DELETE (offboarding cannot purge it)' }],
  ],
  [
    'a tenant table without a policy for the control plane (offboarding would delete none of its rows)',
    weaken('CREATE POLICY control_plane ON app.catalog_probe TO app_control USING (true) WITH CHECK (true);\n', ''),
    offboardingPurgeViolations,
    [{ rule: 'offboarding-purge', object: 'app.catalog_probe', detail: 'no row-level security policy for app_control (the purge would delete none of its rows)' }],
  ],
];

class Rollback extends Error {}

describe('catalog invariants', () => {
  let admin: Sql;
  beforeAll(() => {
    admin = adminSql();
  });
  afterAll(() => admin.end());

  it('finds no violation in the migrated database', async () => {
    expect(await catalogViolations(admin)).toEqual([]);
  });

  it('finds the tenant tables of the schema at all (positive control)', async () => {
    const tables = await admin<{ table: string }[]>`
      select c.relname as table from pg_class c
       where exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
         and c.relkind = 'r'`;
    expect(tables.map((t) => t.table)).toEqual(
      expect.arrayContaining(['members', 'documents', 'usage_counters', 'usage_events', 'audit_events']),
    );
  });

  it('keeps app_runtime unprivileged: owns nothing, no superuser, no BYPASSRLS, not the owner', async () => {
    const [role] = await admin<{ super: boolean; bypass: boolean; login: boolean }[]>`
      select rolsuper as super, rolbypassrls as bypass, rolcanlogin as login from pg_roles where rolname = 'app_runtime'`;
    expect(role).toEqual({ super: false, bypass: false, login: true });

    const owned = await admin`
      select c.relname from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = 'app_runtime'
      union all select p.proname from pg_proc p join pg_roles r on r.oid = p.proowner where r.rolname = 'app_runtime'
      union all select n.nspname from pg_namespace n join pg_roles r on r.oid = n.nspowner where r.rolname = 'app_runtime'`;
    expect(owned).toHaveLength(0);

    const [membership] = await admin<{ owner: boolean; control: boolean }[]>`
      select pg_has_role('app_runtime', 'app_owner', 'member') as owner,
             pg_has_role('app_runtime', 'app_control', 'member') as control`;
    expect(membership).toEqual({ owner: false, control: false });

    // Positive control: the owner role really owns the tables.
    const [notOwned] = await admin<{ count: number }[]>`
      select count(*)::int as count from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'app' and c.relkind = 'r' and pg_get_userbyid(c.relowner) <> 'app_owner'`;
    expect(notOwned?.count).toBe(0);
  });

  it('has no SECURITY DEFINER function outside the system schemas but those of a confined owner', async () => {
    const definers = await definerFunctions(admin);
    expect(definers.filter((d) => definerViolations(d).length > 0).map((d) => `${d.schema}.${d.name}`)).toEqual([]);
    // Positive control: the schema's own functions are found.
    const functions = await admin`
      select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'app'`;
    expect(functions.length).toBeGreaterThan(0);
  });

  it('runs the metering functions as a confined owner: NOLOGIN, no BYPASSRLS, owns no table, writes only forced-RLS tables, fixed search_path', async () => {
    const definers = await definerFunctions(admin);
    const metering = definers.filter((d) => d.schema === 'app' && ['meter_request', 'consume'].includes(d.name));
    expect(metering.map((d) => [d.name, d.owner, definerViolations(d)]).sort()).toEqual([
      ['consume', 'app_metering', []],
      ['meter_request', 'app_metering', []],
    ]);
    // The rule can fail: a definer function of the owner role (which owns every table) is refused.
    await admin
      .begin(async (tx) => {
        await tx`create function app.catalog_probe() returns int language sql security definer as 'select 1'`;
        await tx`alter function app.catalog_probe() owner to app_owner`;
        const [probe] = (await definerFunctions(tx as unknown as Sql)).filter((d) => d.name === 'catalog_probe');
        expect(definerViolations(probe!)).toEqual(expect.arrayContaining(['owns relations', 'no fixed search_path']));
        throw new Rollback();
      })
      .catch((error: unknown) => {
        if (!(error instanceof Rollback)) throw error;
      });
  });

  it('makes every view security_invoker', async () => {
    const views = await admin<{ view: string; options: string[] | null }[]>`
      select c.relname as view, c.reloptions as options from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')`;
    for (const v of views) {
      expect({ view: v.view, invoker: (v.options ?? []).some((o) => /^security_invoker=(true|on|1)$/.test(o)) }).toEqual({
        view: v.view,
        invoker: true,
      });
    }
  });

  it('grants app_runtime only INSERT and SELECT on audit_events', async () => {
    const [grants] = await admin<Record<string, boolean>[]>`
      select has_table_privilege('app_runtime', 'app.audit_events', 'SELECT') as select,
             has_table_privilege('app_runtime', 'app.audit_events', 'INSERT') as insert,
             has_table_privilege('app_runtime', 'app.audit_events', 'UPDATE') as update,
             has_table_privilege('app_runtime', 'app.audit_events', 'DELETE') as delete,
             has_table_privilege('app_runtime', 'app.audit_events', 'TRUNCATE') as truncate`;
    expect(grants).toEqual({ select: true, insert: true, update: false, delete: false, truncate: false });
  });

  it('gives app_runtime no TRUNCATE, REFERENCES or TRIGGER on any table, and no CREATE in any schema', async () => {
    const risky = await admin`
      select c.relname, p.privilege from pg_class c join pg_namespace n on n.oid = c.relnamespace,
             unnest(array['TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
       where n.nspname = 'app' and c.relkind = 'r' and has_table_privilege('app_runtime', c.oid, p.privilege)`;
    expect(risky).toEqual([]);
    const schemas = await admin`
      select nspname from pg_namespace where nspname in ('app', 'public') and has_schema_privilege('app_runtime', oid, 'CREATE')`;
    expect(schemas).toEqual([]);
  });
});

describe('catalog invariants against weak migrations', () => {
  const admin = adminSql();
  const run = `${process.pid}_${Date.now()}`;
  const template = `catalog_base_${run}`;
  const scratch: string[] = [];
  let dir: string;
  const urlOf = (database: string) => {
    const u = new URL(process.env.TEST_ADMIN_DATABASE_URL!);
    u.pathname = `/${database}`;
    return u.toString();
  };

  beforeAll(async () => {
    // Migrated once, then copied per case (CREATE DATABASE … TEMPLATE): no connection stays open to it.
    await admin`create database ${admin(template)}`;
    await migrate(urlOf(template));
    dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-migrations-'));
  }, 120_000);
  afterAll(async () => {
    for (const database of [...scratch, template]) await admin`drop database if exists ${admin(database)} with (force)`;
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  });

  /** A scratch copy of the migrated schema with `sql` applied as the next migration by the project's runner. */
  async function withMigration(name: string, sql: string): Promise<Sql> {
    const database = `catalog_${scratch.length}_${run}`;
    scratch.push(database);
    await admin`create database ${admin(database)} template ${admin(template)}`;
    const migrations = path.join(dir, name);
    await cp(MIGRATIONS_DIR, migrations, { recursive: true });
    await writeFile(path.join(migrations, '9999_weak.sql'), sql);
    expect((await migrate(urlOf(database), { dir: migrations })).applied).toEqual(['9999_weak.sql']);
    return postgres(urlOf(database), { max: 1, onnotice: () => undefined });
  }

  it('finds nothing in a sound tenant table written like the recipe (control)', async () => {
    const db = await withMigration('sound', SOUND);
    try {
      expect(await catalogViolations(db)).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it.each(weakMigrations)('catches %s', async (_name, sql, rule, expected) => {
    const db = await withMigration(`weak-${weakMigrations.findIndex((w) => w[1] === sql)}`, sql);
    try {
      expect(await rule(db)).toEqual(expected);
      // Nothing else is wrong: the weak migration breaks exactly the rule it names.
      expect(await catalogViolations(db)).toEqual(expected);
    } finally {
      await db.end();
    }
  });
});
