/**
 * The schema's fail-closed invariants as functions: each reads pg_catalog through the connection it is
 * given and returns the violations it finds (an empty list when the schema keeps the rule). The catalog
 * test runs them against the migrated test database and against scratch databases with one weak
 * migration each, so each rule is proven to catch what it names.
 *
 * A table is *tenant-owned* when it has a `tenant_id` column (outside the system schemas).
 */
import type { Sql } from '../../functions/core/db';

export type Rule =
  | 'row-level-security'
  | 'tenant-foreign-key'
  | 'tenant-leading-key'
  | 'audit-trigger'
  | 'policy-scope'
  | 'security-definer'
  | 'view-security-invoker'
  | 'offboarding-purge';

export interface Violation {
  readonly rule: Rule;
  /** `schema.table` (or `schema.function`). */
  readonly object: string;
  readonly detail: string;
}

/**
 * Tables app_runtime may write without the `app.require_audit_event` constraint trigger, each with the
 * reason. Explicit, so that a new table is audited by default: it is exempt only when listed here.
 */
export const AUDIT_EXEMPT: Readonly<Record<string, string>> = {
  'app.audit_events': 'the audit trail itself: app_runtime may only INSERT, and each row is the record',
  'app.usage_counters': 'written only by metering (app.meter_request) inside the request that is itself audited or metered',
};

/**
 * Policies that apply to app_runtime and are scoped by something other than `app.tenant_id`, each
 * with the reason. Policies for the control-plane role (app_control) only need to name that role.
 */
export const PLATFORM_POLICIES: Readonly<Record<string, string>> = {
  'app.tenants.platform_operator_read': 'platform operators (app.role = superadmin) read the tenant list; SELECT only',
  'app.platform_operators.own_row': 'a session sees only its own operator row (app.user_id); WITH CHECK false refuses writes',
};

/**
 * The control-plane roles a policy may name instead of scoping by tenant: login roles that the runtime
 * cannot become (app_control: platform operations; app_billing: the billing close, migration 0006;
 * app_sealer: the audit chain sealer, migration 0008). Their grants are checked in their own tests.
 */
export const CONTROL_PLANE_ROLES: readonly string[] = ['app_control', 'app_billing', 'app_sealer'];

/**
 * Indexes of tenant-owned tables that may lead with another column, each with the reason. Explicit, so
 * that a new index leads with tenant_id unless it is listed here.
 */
export const TENANT_KEY_EXEMPT_INDEXES: Readonly<Record<string, string>> = {
  'app.audit_events_xact_idx': 'the sealer (app_sealer) scans committed events of every tenant in transaction order',
  'app.jobs_id_key': 'the job runner (app_control) is handed a job id alone (a queue message) and finds its tenant from it',
  'app.jobs_open_idx': 'the job runner (app_control) finds open jobs of every tenant to resume them',
};

const SYSTEM_SCHEMAS = ['pg_catalog', 'information_schema', 'pg_toast'];

/** Every tenant-owned table has ENABLE and FORCE row-level security and at least one policy. */
export async function rowLevelSecurityViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ object: string; enabled: boolean; forced: boolean; policies: number }[]>`
    select n.nspname || '.' || c.relname as object, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
           (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and n.nspname <> all(${SYSTEM_SCHEMAS})
       and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
     order by 1`;
  const violations: Violation[] = [];
  for (const r of rows) {
    if (!r.enabled) violations.push({ rule: 'row-level-security', object: r.object, detail: 'row-level security is not enabled' });
    if (!r.forced) violations.push({ rule: 'row-level-security', object: r.object, detail: 'row-level security is not forced' });
    if (r.policies === 0) violations.push({ rule: 'row-level-security', object: r.object, detail: 'no policy' });
  }
  return violations;
}

/** Every tenant-owned table has a foreign key from `tenant_id` alone to `app.tenants (id)`. */
export async function tenantForeignKeyViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ object: string }[]>`
    select n.nspname || '.' || c.relname as object
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
     where c.relkind in ('r', 'p') and n.nspname <> all(${SYSTEM_SCHEMAS})
       and not exists (
         select 1 from pg_constraint k
          where k.conrelid = c.oid and k.contype = 'f'
            and k.conkey = array[a.attnum]
            and k.confrelid = 'app.tenants'::regclass
            and k.confkey = array[(select attnum from pg_attribute where attrelid = 'app.tenants'::regclass and attname = 'id')])
     order by 1`;
  return rows.map((r) => ({ rule: 'tenant-foreign-key', object: r.object, detail: 'no foreign key (tenant_id) → app.tenants (id)' }));
}

/** Every tenant-owned table has a primary key, and its primary key and every index lead with `tenant_id`. */
export async function tenantLeadingKeyViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ object: string; index: string | null }[]>`
    with owned as (
      select c.oid, n.nspname || '.' || c.relname as object, a.attnum as tenant
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
       where c.relkind in ('r', 'p') and n.nspname <> all(${SYSTEM_SCHEMAS}))
    select o.object, i.indexrelid::regclass::text as index
      from owned o join pg_index i on i.indrelid = o.oid
     where i.indkey[0] <> o.tenant
    union all
    select o.object, null from owned o
     where not exists (select 1 from pg_index p where p.indrelid = o.oid and p.indisprimary)
     order by 1, 2`;
  return rows.filter((r) => r.index === null || TENANT_KEY_EXEMPT_INDEXES[r.index] === undefined).map((r) => ({
    rule: 'tenant-leading-key',
    object: r.object,
    detail: r.index === null ? 'no primary key' : `index ${r.index} does not lead with tenant_id`,
  }));
}

/**
 * Every table that app_runtime may INSERT, UPDATE or DELETE has a deferred constraint trigger running
 * `app.require_audit_event()` on each of those events, unless {@link AUDIT_EXEMPT} lists it.
 */
export async function auditTriggerViolations(sql: Sql, exempt: Readonly<Record<string, string>> = AUDIT_EXEMPT): Promise<Violation[]> {
  const rows = await sql<{ object: string; insert: boolean; update: boolean; delete: boolean; covered: number }[]>`
    select n.nspname || '.' || c.relname as object,
           has_table_privilege('app_runtime', c.oid, 'INSERT') as insert,
           has_table_privilege('app_runtime', c.oid, 'UPDATE') as update,
           has_table_privilege('app_runtime', c.oid, 'DELETE') as delete,
           -- tgtype bits (pg_trigger.h): INSERT 4, DELETE 8, UPDATE 16; OR-ed over the audit triggers.
           coalesce((select bit_or(t.tgtype::int) & 28 from pg_trigger t
                      where t.tgrelid = c.oid and t.tgconstraint <> 0 and t.tgdeferrable and t.tginitdeferred
                        and t.tgfoid = 'app.require_audit_event()'::regprocedure and t.tgenabled <> 'D'), 0) as covered
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and n.nspname <> all(${SYSTEM_SCHEMAS})
     order by 1`;
  const violations: Violation[] = [];
  for (const r of rows) {
    if (exempt[r.object] !== undefined) continue;
    const missing = [
      r.insert && !(r.covered & 4) ? 'INSERT' : null,
      r.update && !(r.covered & 16) ? 'UPDATE' : null,
      r.delete && !(r.covered & 8) ? 'DELETE' : null,
    ].filter((x): x is string => x !== null);
    if (missing.length > 0) {
      violations.push({ rule: 'audit-trigger', object: r.object, detail: `app_runtime may ${missing.join(', ')} without the audit trigger` });
    }
  }
  return violations;
}

/**
 * Every policy is scoped to the tenant (`current_setting('app.tenant_id')` in USING, and in WITH CHECK
 * when there is one), or applies only to control-plane roles, or is listed in {@link PLATFORM_POLICIES}.
 */
export async function policyScopeViolations(sql: Sql, platform: Readonly<Record<string, string>> = PLATFORM_POLICIES): Promise<Violation[]> {
  const rows = await sql<{ object: string; roles: string[]; using: string | null; check: string | null }[]>`
    select n.nspname || '.' || c.relname || '.' || p.polname as object,
           array(select coalesce(r.rolname, 'public') from unnest(p.polroles) o left join pg_roles r on r.oid = o) as roles,
           pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as check
      from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
     order by 1`;
  const tenantScoped = (expr: string | null) => expr !== null && /current_setting\('app\.tenant_id'/.test(expr);
  const violations: Violation[] = [];
  for (const r of rows) {
    if (r.roles.length > 0 && r.roles.every((role) => CONTROL_PLANE_ROLES.includes(role))) continue;
    if (platform[r.object] !== undefined) continue;
    if (!tenantScoped(r.using) || (r.check !== null && !tenantScoped(r.check))) {
      violations.push({ rule: 'policy-scope', object: r.object, detail: `not scoped to app.tenant_id: USING ${r.using} WITH CHECK ${r.check}` });
    }
  }
  return violations;
}

export interface DefinerFunction {
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
export function definerFunctions(db: Sql): Promise<DefinerFunction[]> {
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
export function definerViolations(d: DefinerFunction): string[] {
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

/**
 * A SECURITY DEFINER function is allowed only when its owner is confined (see {@link definerViolations}):
 * the metering functions of migration 0006 are the intended case; any other definer function is a violation.
 */
export async function securityDefinerViolations(sql: Sql): Promise<Violation[]> {
  const definers = await definerFunctions(sql);
  return definers
    .map((d) => ({ d, why: definerViolations(d) }))
    .filter(({ why }) => why.length > 0)
    .map(({ d, why }) => ({ rule: 'security-definer' as const, object: `${d.schema}.${d.name}`, detail: why.join('; ') }));
}

/** Every view is security_invoker (otherwise it reads with its owner's rights). */
export async function viewViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ object: string; options: string[] | null }[]>`
    select n.nspname || '.' || c.relname as object, c.reloptions as options from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('v', 'm') and n.nspname <> all(${SYSTEM_SCHEMAS}) order by 1`;
  return rows
    .filter((v) => !(v.options ?? []).some((o) => /^security_invoker=(true|on|1)$/.test(o)))
    .map((v) => ({ rule: 'view-security-invoker', object: v.object, detail: 'not security_invoker' }));
}

/**
 * Offboarding deletes every row of the tenant from every tenant-owned table that `app.tenant_tables()`
 * finds (migration 0007, run as app_control). A table app_control may not DELETE from, or whose
 * row-level security has no policy naming app_control, would stop every offboarding at its purge step or
 * leave the tenant's rows behind (the purge sets no `app.tenant_id`, so the tenant policy matches no row):
 * each such table is a violation.
 */
export async function offboardingPurgeViolations(sql: Sql): Promise<Violation[]> {
  const rows = await sql<{ object: string; may_delete: boolean; policy: boolean }[]>`
    select 'app.' || t.table_name as object,
           has_table_privilege('app_control', c.oid, 'DELETE') as may_delete,
           exists (select 1 from pg_policy p
                    where p.polrelid = c.oid and p.polcmd in ('*', 'd')
                      and (select oid from pg_roles where rolname = 'app_control') = any(p.polroles)) as policy
      from app.tenant_tables() t
      join pg_class c on c.relname = t.table_name
      join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'app'
     order by 1`;
  const violations: Violation[] = [];
  for (const r of rows) {
    if (!r.may_delete) violations.push({ rule: 'offboarding-purge', object: r.object, detail: 'app_control may not DELETE (offboarding cannot purge it)' });
    if (!r.policy) violations.push({ rule: 'offboarding-purge', object: r.object, detail: 'no row-level security policy for app_control (the purge would delete none of its rows)' });
  }
  return violations;
}

/** Every rule above, on one database. */
export async function catalogViolations(sql: Sql): Promise<Violation[]> {
  const all = await Promise.all([
    rowLevelSecurityViolations(sql),
    tenantForeignKeyViolations(sql),
    tenantLeadingKeyViolations(sql),
    auditTriggerViolations(sql),
    policyScopeViolations(sql),
    securityDefinerViolations(sql),
    viewViolations(sql),
    offboardingPurgeViolations(sql),
  ]);
  return all.flat();
}
