-- app.meter_request() in two statements when nothing contends for the tenant's counter row, which is
-- nearly every request: one SELECT that takes the row only if it is free (SKIP LOCKED) and reads the
-- plan in the same join, then the UPDATE. The function of 0012 took four statements and a second
-- function call for the same answer (the plan lookup, a lock-free read of the row, the SKIP LOCKED
-- read, the UPDATE) and called app.metric_period() (a SQL function, planned again in each transaction):
-- metering is on every request, and its cost is most of what a metered read adds
-- over an unmetered one.
--
-- Same contract, same checks, same SQLSTATEs and details. Whenever the row cannot be taken at once
-- (it does not exist yet this month, or another request of the tenant holds it), nothing has been
-- read or changed, and the request goes through 0012's function unchanged: its lock-free read, its
-- bounded wait and its first-request insert. That function is kept, renamed, and runs only from here
-- (as the owner, app_metering); no other role may call it.
--
-- With the row held, the checks are those 0012 made on the held row: the quota, then the refilled
-- token bucket. A refusal raises before anything is written; the transaction rolls back and lets the
-- row go. A request that takes a free row never waits: SKIP LOCKED does not.
RESET ROLE;
GRANT CREATE ON SCHEMA app TO app_metering;
SET LOCAL ROLE app_metering;

ALTER FUNCTION app.meter_request() RENAME TO meter_request_contended;
ALTER FUNCTION app.meter_request_contended() SECURITY INVOKER;
REVOKE ALL ON FUNCTION app.meter_request_contended() FROM PUBLIC, app_runtime;

CREATE FUNCTION app.meter_request()
  RETURNS TABLE (used bigint, quota bigint, period text)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
#variable_conflict use_column
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_now    timestamptz := clock_timestamp();
  -- app.metric_period('api_requests', now()), written out: a call of that SQL function costs a third of
  -- this function's time (it is planned again in every transaction). The contended path calls it, so a
  -- mismatch could only send every request there (test/db/meter-fast-path.test.ts would fail).
  v_period text := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM');
  v_limit  bigint;
  v_rps    double precision;
  v_used   bigint;
  v_tokens double precision;
  v_at     timestamptz;
BEGIN
  SELECT c.used, c.bucket_tokens, c.bucket_at, (p.limits ->> 'api_requests')::bigint, p.rate_limit_rps
    INTO v_used, v_tokens, v_at, v_limit, v_rps
    FROM app.usage_counters c
    JOIN app.tenants t ON t.id = c.tenant_id
    JOIN app.plans p ON p.id = t.plan_id
   WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period
     FOR UPDATE OF c SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN QUERY SELECT * FROM app.meter_request_contended();
    RETURN;
  END IF;

  v_tokens := least(v_rps, coalesce(v_tokens, v_rps) + greatest(extract(epoch FROM v_now - coalesce(v_at, v_now)), 0) * v_rps);
  IF v_limit IS NOT NULL AND v_used + 1 > v_limit THEN
    RAISE EXCEPTION 'quota exceeded for api_requests' USING ERRCODE = 'TS429',
      DETAIL = json_build_object('metric', 'api_requests', 'limit', v_limit, 'used', v_used, 'period', v_period)::text;
  END IF;
  IF v_tokens < 1 THEN
    RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
      DETAIL = json_build_object('metric', 'rate', 'limit', v_rps, 'tokens', v_tokens)::text;
  END IF;
  UPDATE app.usage_counters c
     SET used = c.used + 1, bucket_tokens = v_tokens - 1, bucket_at = v_now, updated_at = now()
   WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period
  RETURNING c.used INTO v_used;
  RETURN QUERY SELECT v_used, v_limit, v_period;
END
$$;

REVOKE ALL ON FUNCTION app.meter_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.meter_request() TO app_runtime;

RESET ROLE;
REVOKE CREATE ON SCHEMA app FROM app_metering;
