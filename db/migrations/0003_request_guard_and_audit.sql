-- What every request's transaction checks, and what makes the audit trail impossible to skip.
SET LOCAL ROLE app_owner;

-- Called first in every request's transaction, right after the context is set. Claims in a token are
-- not the last word: a removed member, a changed role or a suspended tenant is refused at the next
-- request. Raises a distinct SQLSTATE per outcome so that the rest of the pipelined transaction aborts
-- before any work is done. SECURITY INVOKER: it sees only what the caller's row-level security allows.
CREATE FUNCTION app.assert_request_allowed() RETURNS void
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_user   uuid := nullif(current_setting('app.user_id', true), '')::uuid;
  v_role   text := nullif(current_setting('app.role', true), '');
  v_status text;
BEGIN
  IF v_user IS NULL OR v_role IS NULL THEN
    RAISE EXCEPTION 'no caller in the request context' USING ERRCODE = 'TS401';
  END IF;

  IF v_role = 'superadmin' THEN
    IF NOT EXISTS (SELECT 1 FROM app.platform_operators WHERE user_id = v_user AND status = 'active') THEN
      RAISE EXCEPTION 'platform operator is not active' USING ERRCODE = 'TS403';
    END IF;
    IF v_tenant IS NOT NULL AND NOT EXISTS (SELECT 1 FROM app.tenants WHERE id = v_tenant) THEN
      RAISE EXCEPTION 'tenant not found' USING ERRCODE = 'TS404';
    END IF;
    RETURN;
  END IF;

  SELECT status INTO v_status FROM app.tenants WHERE id = v_tenant;
  IF v_status IS DISTINCT FROM 'active' THEN
    RAISE EXCEPTION 'tenant is not active' USING ERRCODE = 'TS403';
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM app.members
     WHERE tenant_id = v_tenant AND user_id = v_user AND status = 'active' AND role = v_role
  ) THEN
    RAISE EXCEPTION 'member is not active in this role' USING ERRCODE = 'TS403';
  END IF;
END
$$;
REVOKE ALL ON FUNCTION app.assert_request_allowed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.assert_request_allowed() TO app_runtime;

-- An audited change made by the runtime role cannot commit without an audit event of the same
-- request (app.request_id) in the same tenant: the check runs at commit as a deferred constraint.
CREATE FUNCTION app.require_audit_event() RETURNS trigger
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
BEGIN
  IF current_user = 'app_runtime' AND NOT EXISTS (
    SELECT 1 FROM app.audit_events
     WHERE tenant_id = current_setting('app.tenant_id', true)
       AND request_id = current_setting('app.request_id', true)
  ) THEN
    RAISE EXCEPTION 'a change to % needs an audit event in the same transaction', TG_TABLE_NAME
      USING ERRCODE = 'TS500';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION app.require_audit_event() FROM PUBLIC;

CREATE CONSTRAINT TRIGGER documents_audited
  AFTER INSERT OR DELETE OR UPDATE OF tenant_id, name, content_type, size_bytes, created_by ON app.documents
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();
CREATE CONSTRAINT TRIGGER members_audited
  AFTER INSERT OR DELETE OR UPDATE ON app.members
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();
CREATE CONSTRAINT TRIGGER usage_events_audited
  AFTER INSERT OR DELETE OR UPDATE ON app.usage_events
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();
