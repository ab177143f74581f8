/**
 * Reads pg_catalog and fails when the schema stops being fail-closed. This is what keeps the next
 * migration honest: a new tenant table without forced RLS, a grant too many, a SECURITY DEFINER
 * function or a view without security_invoker breaks the build here.
 */
import type { Sql } from '../../functions/core/db';
import { adminSql } from '../support/db';

interface DefinerFunction {
  schema: string;
  name: string;
  owner: string;
  superuser: boolean;
  bypassrls: boolean;
  login: boolean;
  owns_relations: boolean;
  member_of_roles: boolean;
  fixed_search_path: boolean;
  writes_unforced: string[];
}

/** Every SECURITY DEFINER function outside the system schemas, with what its owner is and may do. */
function definerFunctions(db: Sql): Promise<DefinerFunction[]> {
  return db<DefinerFunction[]>`
    select n.nspname as schema, p.proname as name, r.rolname as owner, r.rolsuper as superuser,
           r.rolbypassrls as bypassrls, r.rolcanlogin as login,
           exists (select 1 from pg_class c where c.relowner = r.oid) as owns_relations,
           exists (select 1 from pg_auth_members m where m.member = r.oid) as member_of_roles,
           coalesce((select bool_or(cfg like 'search_path=%') from unnest(p.proconfig) cfg), false) as fixed_search_path,
           array(select c.relname::text from pg_class c join pg_namespace cn on cn.oid = c.relnamespace
                  where c.relkind in ('r', 'p') and cn.nspname not in ('pg_catalog', 'information_schema')
                    and not (c.relrowsecurity and c.relforcerowsecurity)
                    and (has_table_privilege(r.oid, c.oid, 'INSERT') or has_table_privilege(r.oid, c.oid, 'UPDATE')
                         or has_table_privilege(r.oid, c.oid, 'DELETE') or has_table_privilege(r.oid, c.oid, 'TRUNCATE'))
                  order by 1) as writes_unforced
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
      join pg_roles r on r.oid = p.proowner
     where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')`;
}

/**
 * Why a SECURITY DEFINER function breaks the rule (empty: it keeps it). Its owner must stay subject to
 * row-level security (not superuser, no BYPASSRLS, owns no table so FORCE is never its to lift, inherits
 * no other role, writes no table without forced RLS), never log in, and the function must fix its
 * search_path so that a caller cannot substitute objects.
 */
function violations(d: DefinerFunction): string[] {
  return [
    d.superuser && 'superuser',
    d.bypassrls && 'bypassrls',
    d.login && 'can log in',
    d.owns_relations && 'owns relations',
    d.member_of_roles && 'member of other roles',
    !d.fixed_search_path && 'no fixed search_path',
    d.writes_unforced.length > 0 && `writes tables without forced RLS: ${d.writes_unforced.join(', ')}`,
  ].filter((v): v is string => typeof v === 'string');
}

class Rollback extends Error {}

describe('catalog invariants', () => {
  let admin: Sql;
  beforeAll(() => {
    admin = adminSql();
  });
  afterAll(() => admin.end());

  it('forces row-level security, with a policy, on every table that has a tenant_id column', async () => {
    const tables = await admin<{ table: string; enabled: boolean; forced: boolean; policies: number }[]>`
      select c.relname as table, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
             (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p')
         and n.nspname not in ('pg_catalog', 'information_schema')
         and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)`;
    // Positive control: the tenant tables of the schema are found at all.
    expect(tables.map((t) => t.table)).toEqual(
      expect.arrayContaining(['members', 'documents', 'usage_counters', 'usage_events', 'audit_events']),
    );
    for (const table of tables) {
      expect({ table: table.table, enabled: table.enabled, forced: table.forced }).toEqual({
        table: table.table,
        enabled: true,
        forced: true,
      });
      expect(table.policies).toBeGreaterThan(0);
    }
  });

  it('scopes every policy that applies to app_runtime by the tenant, the user or the platform role', async () => {
    const policies = await admin<{ table: string; policy: string; using: string | null; check: string | null }[]>`
      select c.relname as table, p.polname as policy,
             pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as check
        from pg_policy p
        join pg_class c on c.oid = p.polrelid
       where p.polroles @> array[0::oid]
          or p.polroles @> array[(select oid from pg_roles where rolname = 'app_runtime')]`;
    expect(policies.length).toBeGreaterThan(0);
    for (const p of policies) {
      const using = p.using ?? '';
      expect({ policy: `${p.table}.${p.policy}`, scoped: /current_setting\('app\.(tenant_id|user_id|role)'/.test(using) }).toEqual({
        policy: `${p.table}.${p.policy}`,
        scoped: true,
      });
      // A policy that opens writes must check the tenant too (or refuse writes outright).
      if (p.check !== null) expect(p.check).toMatch(/current_setting\('app\.tenant_id'|^false$/);
    }
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
    expect(definers.filter((d) => violations(d).length > 0).map((d) => `${d.schema}.${d.name}`)).toEqual([]);
    // Positive control: the schema's own functions are found.
    const functions = await admin`
      select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'app'`;
    expect(functions.length).toBeGreaterThan(0);
  });

  it('runs the metering functions as a confined owner: NOLOGIN, no BYPASSRLS, owns no table, writes only forced-RLS tables, fixed search_path', async () => {
    const definers = await definerFunctions(admin);
    const metering = definers.filter((d) => d.schema === 'app' && ['meter_request', 'consume'].includes(d.name));
    expect(metering.map((d) => [d.name, d.owner, violations(d)]).sort()).toEqual([
      ['consume', 'app_metering', []],
      ['meter_request', 'app_metering', []],
    ]);
    // The rule can fail: a definer function of the owner role (which owns every table) is refused.
    await admin
      .begin(async (tx) => {
        await tx`create function app.catalog_probe() returns int language sql security definer as 'select 1'`;
        await tx`alter function app.catalog_probe() owner to app_owner`;
        const [probe] = (await definerFunctions(tx as unknown as Sql)).filter((d) => d.name === 'catalog_probe');
        expect(violations(probe!)).toEqual(expect.arrayContaining(['owns relations', 'no fixed search_path']));
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
