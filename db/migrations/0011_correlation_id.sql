-- The caller's correlation id (the X-Correlation-Id request header, else the API Gateway request id)
-- on each audit event, so that one id finds a caller's request in the logs, the trace and the audit
-- trail. Nullable: events written before this migration, and by control-plane jobs, have none.
-- The hash chain's encoding v1 (0008) does not cover this column: an edit of it is not detected by
-- `npm run audit:verify`. It is a search aid, not evidence.
ALTER TABLE app.audit_events
  ADD COLUMN correlation_id text CHECK (correlation_id ~ '^[A-Za-z0-9._:-]{1,128}$');

-- The request guard answers with the tenant's plan, read from the tenant row it reads anyway, so that
-- the wrapper can give its metrics a `plan` dimension (a handful of plans: bounded) without a query of
-- its own. NULL for a platform operator's request that names no tenant. Same checks, same SQLSTATEs;
-- the return type changes, so the function is replaced (DROP + CREATE) with its grants restated.
SET LOCAL ROLE app_owner;
DROP FUNCTION app.assert_request_allowed();
CREATE FUNCTION app.assert_request_allowed() RETURNS text
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_user   uuid := nullif(current_setting('app.user_id', true), '')::uuid;
  v_role   text := nullif(current_setting('app.role', true), '');
  v_status text;
  v_plan   text;
BEGIN
  IF v_user IS NULL OR v_role IS NULL THEN
    RAISE EXCEPTION 'no caller in the request context' USING ERRCODE = 'TS401';
  END IF;

  IF v_role = 'superadmin' THEN
    IF NOT EXISTS (SELECT 1 FROM app.platform_operators WHERE user_id = v_user AND status = 'active') THEN
      RAISE EXCEPTION 'platform operator is not active' USING ERRCODE = 'TS403';
    END IF;
    IF v_tenant IS NOT NULL THEN
      SELECT plan_id INTO v_plan FROM app.tenants WHERE id = v_tenant;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant not found' USING ERRCODE = 'TS404';
      END IF;
    END IF;
    RETURN v_plan;
  END IF;

  SELECT status, plan_id INTO v_status, v_plan FROM app.tenants WHERE id = v_tenant;
  IF v_status IS DISTINCT FROM 'active' THEN
    RAISE EXCEPTION 'tenant is not active' USING ERRCODE = 'TS403';
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM app.members
     WHERE tenant_id = v_tenant AND user_id = v_user AND status = 'active' AND role = v_role
  ) THEN
    RAISE EXCEPTION 'member is not active in this role' USING ERRCODE = 'TS403';
  END IF;
  RETURN v_plan;
END
$$;
REVOKE ALL ON FUNCTION app.assert_request_allowed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.assert_request_allowed() TO app_runtime;
