-- The tenant lifecycle: statuses up to `deleted` with a deletion report, jobs for long work, exports,
-- and member management whose rules hold for any SQL the runtime can send. Grants here are explicit
-- and self-contained: each names every privilege this feature needs, whatever earlier files granted.
SET LOCAL ROLE app_owner;

-- Tenants: an offboarded tenant keeps its row (status deleted) so that its id is never reused (the
-- primary key refuses a second create) and its deletion report stays. The report holds counts and
-- timestamps only, never PII. A deleted tenant has no data key: crypto-shredding is a schema fact.
ALTER TABLE app.tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE app.tenants
  ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'offboarding', 'deleted')),
  ADD COLUMN deletion_report jsonb CHECK (deletion_report IS NULL OR jsonb_typeof(deletion_report) = 'object'),
  -- NULL while an onboarding is part-way (the tenant is suspended until its first admin exists); a retry
  -- of the same request completes it. Every tenant created otherwise counts as onboarded.
  ADD COLUMN onboarded_at timestamptz DEFAULT now(),
  ADD CONSTRAINT tenants_deleted_without_key CHECK (status <> 'deleted' OR data_key_ciphertext IS NULL);

-- Status moves: offboarding only goes forward (to deleted), deleted is final. TS409 maps to 409.
CREATE FUNCTION app.guard_tenant_status() RETURNS trigger
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
BEGIN
  IF OLD.status = 'deleted' THEN
    RAISE EXCEPTION 'tenant % is deleted', OLD.id USING ERRCODE = 'TS409';
  END IF;
  IF OLD.status = 'offboarding' AND NEW.status NOT IN ('offboarding', 'deleted') THEN
    RAISE EXCEPTION 'tenant % is being offboarded', OLD.id USING ERRCODE = 'TS409';
  END IF;
  IF NEW.id <> OLD.id THEN
    RAISE EXCEPTION 'a tenant id never changes' USING ERRCODE = 'TS409';
  END IF;
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION app.guard_tenant_status() FROM PUBLIC;
CREATE TRIGGER tenants_status_guard BEFORE UPDATE ON app.tenants
  FOR EACH ROW EXECUTE FUNCTION app.guard_tenant_status();

-- Exports: tenant-owned. Each is a portability bundle under tenants/{id}/exports/{export id}/.
CREATE TABLE app.exports (
  tenant_id    text NOT NULL REFERENCES app.tenants (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
  object_key   text CHECK (object_key IS NULL OR length(object_key) BETWEEN 1 AND 1024),
  requested_by uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  CHECK (status <> 'ready' OR object_key IS NOT NULL)
);
CREATE INDEX exports_tenant_newest_idx ON app.exports (tenant_id, created_at DESC, id DESC);
ALTER TABLE app.exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.exports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.exports
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
CREATE POLICY control_plane ON app.exports TO app_control USING (true) WITH CHECK (true);
CREATE CONSTRAINT TRIGGER exports_audited
  AFTER INSERT OR DELETE OR UPDATE ON app.exports
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();

-- Jobs: the control plane's record of long work (exports, offboarding), one row per job, advanced one
-- idempotent step at a time. Not tenant data: offboarding keeps the rows (no PII, only ids, step names
-- and error messages) as the record of how the tenant was removed. A tenant session may create and
-- read its own export jobs and nothing else; only app_control advances them.
CREATE TABLE app.jobs (
  tenant_id    text NOT NULL REFERENCES app.tenants (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  kind         text NOT NULL CHECK (kind IN ('export', 'offboard')),
  -- The next step to run; 'done' once the last one succeeded.
  step         text NOT NULL DEFAULT 'start' CHECK (step ~ '^[a-z][a-z_]{0,39}$'),
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'failed', 'done')),
  attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error   text CHECK (length(last_error) <= 2000),
  export_id    uuid,
  requested_by uuid NOT NULL,
  request_id   text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 200),
  -- What the finished steps produced (counts, keys); never PII.
  result       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(result) = 'object'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (id),
  -- No foreign key to exports: offboarding deletes the exports and keeps the jobs.
  CHECK (kind = 'export' OR export_id IS NULL)
);
-- One offboarding per tenant, ever: a second DELETE resumes it.
CREATE UNIQUE INDEX jobs_one_offboarding_idx ON app.jobs (tenant_id) WHERE kind = 'offboard';
CREATE INDEX jobs_tenant_created_idx ON app.jobs (tenant_id, created_at);
CREATE INDEX jobs_open_idx ON app.jobs (updated_at) WHERE status IN ('pending', 'running', 'failed');
ALTER TABLE app.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_export_jobs ON app.jobs TO app_runtime
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)) AND kind = 'export')
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)) AND kind = 'export');
CREATE POLICY control_plane ON app.jobs TO app_control USING (true) WITH CHECK (true);

-- The last active org_admin of a tenant cannot be demoted, deactivated or removed, whatever SQL the
-- application roles send (a BEFORE trigger, not a convention of the routes). Concurrency: two admins
-- demoting each other at once would each see the other still active in their own snapshot, so the check
-- first takes a transaction-scoped advisory lock per tenant; under READ COMMITTED the query after the
-- lock sees every change committed before it, so the second transaction sees the first's demotion and
-- is refused. REPEATABLE READ would keep the old snapshot, so it is refused outright (SERIALIZABLE
-- detects the write skew itself). Offboarding (tenant status offboarding/deleted) removes every member.
-- Only the application's login roles are held to it: the owner and superusers do maintenance.
CREATE FUNCTION app.guard_last_org_admin() RETURNS trigger
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_status text;
BEGIN
  IF current_user NOT IN ('app_runtime', 'app_control') THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF NOT (OLD.role = 'org_admin' AND OLD.status = 'active')
     OR (TG_OP = 'UPDATE' AND NEW.role = 'org_admin' AND NEW.status = 'active' AND NEW.tenant_id = OLD.tenant_id) THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  SELECT t.status INTO v_status FROM app.tenants t WHERE t.id = OLD.tenant_id;
  IF v_status IN ('offboarding', 'deleted') THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF current_setting('transaction_isolation') = 'repeatable read' THEN
    RAISE EXCEPTION 'member changes need READ COMMITTED or SERIALIZABLE' USING ERRCODE = '25001';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('app.members org_admin ' || OLD.tenant_id, 0));
  IF NOT EXISTS (
    SELECT 1 FROM app.members m
     WHERE m.tenant_id = OLD.tenant_id AND m.user_id <> OLD.user_id AND m.role = 'org_admin' AND m.status = 'active'
  ) THEN
    RAISE EXCEPTION 'the last active org_admin of a tenant cannot be demoted, deactivated or removed'
      USING ERRCODE = 'TS409';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION app.guard_last_org_admin() FROM PUBLIC;
CREATE TRIGGER members_last_org_admin BEFORE UPDATE OR DELETE ON app.members
  FOR EACH ROW EXECUTE FUNCTION app.guard_last_org_admin();

-- Tenant-owned tables in an order that deletes children before parents (foreign keys between tenant
-- tables), found from the catalog so that a table added later cannot be forgotten by offboarding.
-- app.jobs stays: it is the record of the offboarding itself.
CREATE FUNCTION app.tenant_tables() RETURNS TABLE (table_name text, depth integer)
  LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog AS $$
  WITH RECURSIVE owned AS (
    SELECT c.oid, c.relname::text AS name
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p') AND c.relname <> 'jobs'
       AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  ), refs AS (
    -- child references parent, both tenant-owned
    SELECT DISTINCT k.conrelid AS child, k.confrelid AS parent
      FROM pg_constraint k
     WHERE k.contype = 'f' AND k.conrelid IN (SELECT oid FROM owned) AND k.confrelid IN (SELECT oid FROM owned)
       AND k.conrelid <> k.confrelid
  ), levels AS (
    SELECT o.oid, 0 AS depth FROM owned o
    UNION ALL
    SELECT r.child, l.depth + 1 FROM levels l JOIN refs r ON r.parent = l.oid WHERE l.depth < 50
  )
  SELECT o.name, max(l.depth)::int FROM owned o JOIN levels l ON l.oid = o.oid
   GROUP BY o.name ORDER BY max(l.depth) DESC, o.name
$$;
REVOKE ALL ON FUNCTION app.tenant_tables() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.tenant_tables() TO app_control;

-- Deletes every row of p_tenant in every tenant-owned table (children first) and answers the counts
-- per table. Runs as the caller (app_control); refuses unless the tenant is being offboarded, so it can
-- never be pointed at a live tenant. Idempotent: a second run deletes nothing and counts zeros.
CREATE FUNCTION app.purge_tenant_rows(p_tenant text) RETURNS jsonb
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_status text;
  v_table  text;
  v_count  bigint;
  v_counts jsonb := '{}'::jsonb;
BEGIN
  SELECT status INTO v_status FROM app.tenants WHERE id = p_tenant FOR UPDATE;
  IF v_status IS DISTINCT FROM 'offboarding' THEN
    RAISE EXCEPTION 'tenant rows are purged only while the tenant is offboarding' USING ERRCODE = 'TS409';
  END IF;
  FOR v_table IN SELECT t.table_name FROM app.tenant_tables() t LOOP
    EXECUTE format('DELETE FROM app.%I WHERE tenant_id = $1', v_table) USING p_tenant;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object(v_table, v_count);
  END LOOP;
  RETURN v_counts;
END
$$;
REVOKE ALL ON FUNCTION app.purge_tenant_rows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.purge_tenant_rows(text) TO app_control;

-- Runtime grants on members: rows change only in the ways the member routes allow. UPDATE is narrowed to
-- role, status and the encrypted name (never the tenant, the user id or the email); DELETE stays for
-- removal; the trigger above holds the last-admin rule for both, and the audit constraint trigger of
-- 0003 refuses any runtime change without its audit event.
REVOKE UPDATE, DELETE ON app.members FROM app_runtime;
GRANT SELECT, INSERT ON app.members TO app_runtime;
GRANT UPDATE (role, status, name_ciphertext, updated_at) ON app.members TO app_runtime;
GRANT DELETE ON app.members TO app_runtime;
GRANT SELECT, INSERT ON app.exports TO app_runtime;
GRANT SELECT ON app.jobs TO app_runtime;
GRANT INSERT (tenant_id, kind, export_id, requested_by, request_id) ON app.jobs TO app_runtime;

-- Control plane (platform routes and the job runner): create and update tenants, read plans, manage
-- members of the tenants it onboards, advance jobs and exports, write audit events, and delete
-- tenant-owned rows during offboarding. It never writes app.platform_operators (only the owner-run
-- command does) and never plans. Reading platform_operators lets it check that an operator is active.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON app.platform_operators FROM app_control;
GRANT SELECT ON app.plans, app.platform_operators TO app_control;
GRANT SELECT, INSERT, UPDATE ON app.tenants TO app_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.members TO app_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.jobs, app.exports TO app_control;
GRANT SELECT, DELETE ON app.documents, app.usage_counters, app.usage_events, app.invoices TO app_control;
GRANT SELECT, INSERT, DELETE ON app.audit_events TO app_control;
