-- Hardening after a security review: an audit trail that SQL cannot skip, least privilege for the
-- runtime, control and billing roles, and a rate limit that refuses without waiting on a lock.
-- Runs as a superuser or the RDS master user (it creates roles), like 0001.

-- Roles. app_metering owns the metering functions (SECURITY DEFINER) and nothing else: it never logs
-- in, holds no BYPASSRLS, so row-level security scopes what those functions touch to the caller's
-- tenant. app_billing is the billing period close: it reads plans, tenants and counters and inserts
-- invoices, nothing more.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_metering') THEN
    CREATE ROLE app_metering NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_billing') THEN
    CREATE ROLE app_billing LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
    GRANT rds_iam TO app_billing;
  END IF;
END
$$;
-- The migrating user hands the metering functions to app_metering below, which needs SET on it.
GRANT app_metering TO CURRENT_USER;
GRANT USAGE ON SCHEMA app TO app_metering, app_billing;

-- Bounds on what one runtime session can hold. A Lambda has 10 s (lib/config.ts); a request's statements
-- take milliseconds. 5 s for one statement ends a runaway query while the function can still answer
-- 503 within its deadline. 5 s idle inside a transaction ends one that a frozen or killed Lambda left
-- open (with its tenant's counter row locked) long before its container is reaped; no request keeps a
-- transaction idle that long, since nothing slow (S3, STS, KMS) runs while it holds row locks.
ALTER ROLE app_runtime SET statement_timeout = '5s';
ALTER ROLE app_runtime SET idle_in_transaction_session_timeout = '5s';

SET LOCAL ROLE app_owner;

-- Audit: a change to an audited table commits only with an audit event of the same request, in the
-- same tenant, written by THIS transaction: its xmin is this transaction's id, which no SQL caller can
-- choose (reusing an old event's request id no longer helps). Only the migration owner is exempt (its
-- session user can become app_owner: migrations, the local seed, test fixtures); every other role,
-- runtime or control plane, is checked. session_user, not current_user: SET ROLE cannot change it.
-- An event written inside a subtransaction (a savepoint, a PL/pgSQL EXCEPTION block) carries the
-- subtransaction's id and does not count: fail closed.
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

-- Least privilege for the runtime: usage counters change only through app.meter_request() and
-- app.consume(). Without INSERT/UPDATE the runtime can neither reset a quota nor take a lock on the
-- table stronger than a reader's (LOCK ... ACCESS EXCLUSIVE needs UPDATE, DELETE, TRUNCATE or MAINTAIN).
REVOKE INSERT, UPDATE, DELETE ON app.usage_counters FROM app_runtime;

-- What the metering functions need, as their owner, and nothing else. The tenant_isolation policies
-- apply to it (they are for every role), so they still see only the caller's tenant.
GRANT SELECT ON app.plans, app.tenants TO app_metering;
GRANT SELECT, INSERT, UPDATE ON app.usage_counters TO app_metering;
GRANT EXECUTE ON FUNCTION app.metric_period(text, timestamptz) TO app_metering;

-- One request of the current tenant against its rate limit and monthly api_requests quota. Same
-- contract as in 0005, but a request over the limit is refused WITHOUT waiting on the tenant's counter
-- row lock, which the tenant's in-flight requests hold until they commit:
--   1. read the row as last committed, without a lock; an empty bucket or a used-up quota is refused
--      at once (most of a flood ends here, holding its connection for one statement);
--   2. take the row lock only if nobody holds it (SKIP LOCKED);
--   3. if another request of the tenant holds it (and will take a token when it commits), wait only
--      while the tokens left cover every request already waiting (at most floor(tokens) - 1 of them,
--      counted with non-blocking advisory locks); otherwise refuse at once. A wait is bounded by
--      lock_timeout, which the wrapper answers with 429: the tenant's own requests are ahead of it.
CREATE OR REPLACE FUNCTION app.meter_request()
  RETURNS TABLE (used bigint, quota bigint, period text)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
#variable_conflict use_column
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_limit  bigint;
  v_rps    double precision;
  v_now    timestamptz := clock_timestamp();
  v_period text := app.metric_period('api_requests', now());
  v_used   bigint;
  v_tokens double precision;
  v_at     timestamptz;
  v_seen   double precision;
  v_slot   int;
BEGIN
  SELECT (p.limits ->> 'api_requests')::bigint, p.rate_limit_rps INTO v_limit, v_rps
    FROM app.tenants t JOIN app.plans p ON p.id = t.plan_id WHERE t.id = v_tenant;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no tenant in the request context' USING ERRCODE = 'TS403';
  END IF;

  SELECT c.used, c.bucket_tokens, c.bucket_at INTO v_used, v_tokens, v_at FROM app.usage_counters c
   WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period;
  IF FOUND THEN
    -- 1. The committed state, refilled to now: no lock taken, none waited for.
    v_seen := least(v_rps, coalesce(v_tokens, v_rps) + greatest(extract(epoch FROM v_now - coalesce(v_at, v_now)), 0) * v_rps);
    IF v_limit IS NOT NULL AND v_used + 1 > v_limit THEN
      RAISE EXCEPTION 'quota exceeded for api_requests' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'api_requests', 'limit', v_limit, 'used', v_used, 'period', v_period)::text;
    END IF;
    IF v_seen < 1 THEN
      RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'rate', 'limit', v_rps)::text;
    END IF;

    -- 2. The row, if free.
    SELECT c.used, c.bucket_tokens, c.bucket_at INTO v_used, v_tokens, v_at FROM app.usage_counters c
     WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
      -- 3. Held by a request of this tenant that takes a token: wait only while every waiter can still
      --    find a token after the ones ahead of it. A waiter holds one of floor(tokens) - 1 slots
      --    (transaction-scoped advisory locks, tried without waiting); with no slot free, the tokens
      --    are spoken for and the request is refused now, so a flood never queues on the row.
      v_slot := NULL;
      FOR i IN 1 .. least(floor(v_seen)::int - 1, 128) LOOP
        IF pg_try_advisory_xact_lock(hashtext('app.meter_request:' || v_tenant), i) THEN
          v_slot := i;
          EXIT;
        END IF;
      END LOOP;
      IF v_slot IS NULL THEN
        RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
          DETAIL = json_build_object('metric', 'rate', 'limit', v_rps)::text;
      END IF;
      SELECT c.used, c.bucket_tokens, c.bucket_at INTO v_used, v_tokens, v_at FROM app.usage_counters c
       WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period
         FOR UPDATE;
    END IF;

    v_now := clock_timestamp();
    v_tokens := least(v_rps, coalesce(v_tokens, v_rps) + greatest(extract(epoch FROM v_now - coalesce(v_at, v_now)), 0) * v_rps);
    IF v_limit IS NOT NULL AND v_used + 1 > v_limit THEN
      RAISE EXCEPTION 'quota exceeded for api_requests' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'api_requests', 'limit', v_limit, 'used', v_used, 'period', v_period)::text;
    END IF;
    IF v_tokens < 1 THEN
      RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'rate', 'limit', v_rps)::text;
    END IF;
    UPDATE app.usage_counters c
       SET used = c.used + 1, bucket_tokens = v_tokens - 1, bucket_at = v_now, updated_at = now()
     WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period
    RETURNING c.used INTO v_used;
    RETURN QUERY SELECT v_used, v_limit, v_period;
    RETURN;
  END IF;

  -- The tenant's first request of the month: the row does not exist yet; concurrent first requests
  -- meet in ON CONFLICT, which re-checks the row they find.
  v_used := NULL;
  IF v_limit IS NULL OR v_limit >= 1 THEN
    INSERT INTO app.usage_counters AS c (tenant_id, metric, period, used, bucket_tokens, bucket_at)
    VALUES (v_tenant, 'api_requests', v_period, 1, v_rps - 1, v_now)
    ON CONFLICT (tenant_id, metric, period) DO UPDATE
       SET used = c.used + 1,
           bucket_tokens = least(v_rps, coalesce(c.bucket_tokens, v_rps)
                                 + greatest(extract(epoch FROM v_now - coalesce(c.bucket_at, v_now)), 0) * v_rps) - 1,
           bucket_at = v_now,
           updated_at = now()
     WHERE (v_limit IS NULL OR c.used + 1 <= v_limit)
       AND least(v_rps, coalesce(c.bucket_tokens, v_rps)
                 + greatest(extract(epoch FROM v_now - coalesce(c.bucket_at, v_now)), 0) * v_rps) >= 1
    RETURNING c.used INTO v_used;
  END IF;
  IF v_used IS NULL THEN
    SELECT c.used INTO v_used FROM app.usage_counters c
     WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period;
    IF v_limit IS NOT NULL AND coalesce(v_used, 0) + 1 > v_limit THEN
      RAISE EXCEPTION 'quota exceeded for api_requests' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'api_requests', 'limit', v_limit, 'used', coalesce(v_used, 0), 'period', v_period)::text;
    END IF;
    RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
      DETAIL = json_build_object('metric', 'rate', 'limit', v_rps)::text;
  END IF;
  RETURN QUERY SELECT v_used, v_limit, v_period;
END
$$;

-- app.consume() as in 0005, run as its owner (the runtime can no longer write counters itself), with a
-- lock-free look first: a request that the committed counter already puts over the limit is refused
-- without queueing on the row.
CREATE OR REPLACE FUNCTION app.consume(p_metric text, p_quantity bigint)
  RETURNS TABLE (used bigint, quota bigint, period text)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
#variable_conflict use_column
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_limit  bigint;
  v_period text := app.metric_period(p_metric, now());
  v_used   bigint;
BEGIN
  SELECT (p.limits ->> p_metric)::bigint INTO v_limit
    FROM app.tenants t JOIN app.plans p ON p.id = t.plan_id WHERE t.id = v_tenant;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no tenant in the request context' USING ERRCODE = 'TS403';
  END IF;

  IF p_quantity < 0 THEN
    UPDATE app.usage_counters c SET used = greatest(c.used + p_quantity, 0), updated_at = now()
     WHERE c.tenant_id = v_tenant AND c.metric = p_metric AND c.period = v_period
     RETURNING c.used INTO v_used;
    RETURN QUERY SELECT coalesce(v_used, 0::bigint), v_limit, v_period;
    RETURN;
  END IF;

  IF v_limit IS NOT NULL THEN
    SELECT c.used INTO v_used FROM app.usage_counters c
     WHERE c.tenant_id = v_tenant AND c.metric = p_metric AND c.period = v_period;
  END IF;
  IF v_limit IS NOT NULL AND coalesce(v_used, 0) + p_quantity > v_limit THEN
    v_used := NULL;
  ELSE
    v_used := NULL;
    INSERT INTO app.usage_counters AS c (tenant_id, metric, period, used)
    VALUES (v_tenant, p_metric, v_period, p_quantity)
    ON CONFLICT (tenant_id, metric, period) DO UPDATE
       SET used = c.used + excluded.used, updated_at = now()
     WHERE v_limit IS NULL OR c.used + excluded.used <= v_limit
    RETURNING c.used INTO v_used;
  END IF;

  IF v_used IS NULL THEN
    SELECT c.used INTO v_used FROM app.usage_counters c
     WHERE c.tenant_id = v_tenant AND c.metric = p_metric AND c.period = v_period;
    RAISE EXCEPTION 'quota exceeded for %', p_metric USING ERRCODE = 'TS429',
      DETAIL = json_build_object('metric', p_metric, 'limit', v_limit, 'used', coalesce(v_used, 0), 'period', v_period)::text;
  END IF;
  RETURN QUERY SELECT v_used, v_limit, v_period;
END
$$;

-- The billing period close: reads plans, tenants and counters (FOR SHARE, to wait for an increment
-- of the period's last moments; row locks need an UPDATE privilege and an UPDATE policy, so it gets
-- one column and a policy whose WITH CHECK refuses every write), reads and inserts invoices.
GRANT SELECT ON app.plans, app.tenants, app.usage_counters, app.invoices TO app_billing;
GRANT UPDATE (updated_at) ON app.usage_counters TO app_billing;
GRANT INSERT ON app.invoices TO app_billing;
CREATE POLICY billing_read ON app.tenants FOR SELECT TO app_billing USING (true);
CREATE POLICY billing_read ON app.usage_counters FOR SELECT TO app_billing USING (true);
CREATE POLICY billing_lock ON app.usage_counters FOR UPDATE TO app_billing USING (true) WITH CHECK (false);
CREATE POLICY billing_read ON app.invoices FOR SELECT TO app_billing USING (true);
CREATE POLICY billing_insert ON app.invoices FOR INSERT TO app_billing WITH CHECK (true);

-- The control plane loses what it never needs: minting platform operators (an owner-run command
-- writes them), changing the plans the product sells, and writing invoices (app_billing does).
REVOKE INSERT, UPDATE, DELETE ON app.platform_operators FROM app_control;
REVOKE INSERT, UPDATE, DELETE ON app.plans FROM app_control;
REVOKE INSERT, UPDATE, DELETE ON app.invoices FROM app_control;

-- Hand the metering functions to their owner: the migrating user may SET ROLE app_metering (granted
-- above), and an owner must be able to create in the schema at the moment of the change only.
RESET ROLE;
GRANT CREATE ON SCHEMA app TO app_metering;
ALTER FUNCTION app.meter_request() OWNER TO app_metering;
ALTER FUNCTION app.consume(text, bigint) OWNER TO app_metering;
REVOKE CREATE ON SCHEMA app FROM app_metering;
REVOKE ALL ON FUNCTION app.meter_request(), app.consume(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.meter_request(), app.consume(text, bigint) TO app_runtime;
