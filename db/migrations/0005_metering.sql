-- Race-proof metering and per-tenant rate limiting, inside the request's own transaction.
SET LOCAL ROLE app_owner;

-- The per-tenant rate limit is a token bucket kept on the tenant's api_requests counter row of the
-- month, so that metering a request touches one row, not two: capacity = the plan's requests per
-- second, refilled continuously. NULL until the row is first metered.
ALTER TABLE app.usage_counters ADD COLUMN bucket_tokens double precision, ADD COLUMN bucket_at timestamptz;

-- Invoices written by the billing period close (control plane); tenants read their own.
CREATE TABLE app.invoices (
  tenant_id     text NOT NULL REFERENCES app.tenants (id),
  period        text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  plan_id       text NOT NULL REFERENCES app.plans (id),
  currency      text NOT NULL,
  amount_micros bigint NOT NULL CHECK (amount_micros >= 0),
  lines         jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, period)
);
ALTER TABLE app.invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.invoices
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
CREATE POLICY control_plane ON app.invoices TO app_control USING (true) WITH CHECK (true);
GRANT SELECT ON app.invoices TO app_runtime;
GRANT SELECT, INSERT ON app.invoices TO app_control;

-- The period a metric is counted in: the UTC calendar month, or 'total' for standing totals.
CREATE FUNCTION app.metric_period(p_metric text, p_at timestamptz) RETURNS text
  LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
  SELECT CASE WHEN p_metric IN ('api_requests', 'ai_tokens') THEN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM') ELSE 'total' END
$$;

-- Moves a usage counter of the current tenant by p_quantity (negative gives quota back). A positive
-- move is a conditional increment: it succeeds only while used + quantity <= the plan's limit, so
-- concurrent requests can never overshoot (ON CONFLICT DO UPDATE re-checks the locked, latest row).
-- Over the limit it raises TS429 with the figures as JSON in DETAIL, which aborts the transaction.
CREATE FUNCTION app.consume(p_metric text, p_quantity bigint)
  RETURNS TABLE (used bigint, quota bigint, period text)
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
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

  IF v_limit IS NULL OR p_quantity <= v_limit THEN
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
REVOKE ALL ON FUNCTION app.consume(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.consume(text, bigint) TO app_runtime;

-- One request of the current tenant: counts it against the monthly api_requests quota and takes a
-- token from the tenant's bucket, in ONE conditional upsert of one row (one plan lookup). Over the quota
-- it raises TS429 with the quota figures; with an empty bucket, TS429 with metric 'rate'. One statement
-- from the client, pipelined with the request's other work.
CREATE FUNCTION app.meter_request()
  RETURNS TABLE (used bigint, quota bigint, period text)
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
#variable_conflict use_column
DECLARE
  v_tenant text := nullif(current_setting('app.tenant_id', true), '');
  v_limit  bigint;
  v_rps    double precision;
  v_now    timestamptz := clock_timestamp();
  v_period text := app.metric_period('api_requests', now());
  v_used   bigint;
  v_tokens double precision;
BEGIN
  SELECT (p.limits ->> 'api_requests')::bigint, p.rate_limit_rps INTO v_limit, v_rps
    FROM app.tenants t JOIN app.plans p ON p.id = t.plan_id WHERE t.id = v_tenant;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no tenant in the request context' USING ERRCODE = 'TS403';
  END IF;

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
    -- Refused: say which limit, from the row as it is now.
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
REVOKE ALL ON FUNCTION app.meter_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.meter_request() TO app_runtime;
REVOKE ALL ON FUNCTION app.metric_period(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.metric_period(text, timestamptz) TO app_runtime, app_control;
