-- Offboarding removes every row of a tenant, its audit trail included (migration 0007,
-- app.purge_tenant_rows). The audit constraint of 0006 would refuse those deletes: no audit event can
-- stand for them, since the tenant's audit events are deleted in the same transaction. This exemption is
-- as narrow as the purge itself: DELETE only, by the control-plane role only, and only while the row's
-- tenant is `offboarding` (a status that app_runtime cannot set and that only moves on to `deleted`).
-- What stays is the tenant row with its deletion report (counts per table, no PII) and the job row.
SET LOCAL ROLE app_owner;

CREATE OR REPLACE FUNCTION app.require_audit_event() RETURNS trigger
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_tenant  text;
  v_request text := nullif(current_setting('app.request_id', true), '');
  v_xid     text;
BEGIN
  IF pg_has_role(session_user, 'app_owner', 'MEMBER') THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN v_tenant := OLD.tenant_id; ELSE v_tenant := NEW.tenant_id; END IF;
  IF TG_OP = 'DELETE' AND current_user = 'app_control'
     AND EXISTS (SELECT 1 FROM app.tenants t WHERE t.id = v_tenant AND t.status = 'offboarding') THEN
    RETURN NULL;
  END IF;
  -- The low 32 bits of the 64-bit transaction id are what xmin stores.
  v_xid := (pg_current_xact_id()::text::bigint % 4294967296)::text;
  IF v_request IS NULL OR NOT EXISTS (
    SELECT 1 FROM app.audit_events a
     WHERE a.tenant_id = v_tenant AND a.request_id = v_request AND a.xmin::text = v_xid
  ) OR (TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id AND NOT EXISTS (
    SELECT 1 FROM app.audit_events a
     WHERE a.tenant_id = OLD.tenant_id AND a.request_id = v_request AND a.xmin::text = v_xid
  )) THEN
    RAISE EXCEPTION 'a change to % needs an audit event written in the same transaction', TG_TABLE_NAME
      USING ERRCODE = 'TS500';
  END IF;
  RETURN NULL;
END
$$;
