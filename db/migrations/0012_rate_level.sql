-- A rate-limit refusal says how full the tenant's token bucket was when it was refused (`tokens` in the
-- TS429 detail, next to `limit`, the requests per second). With it a process can refuse the tenant's
-- next requests itself, without a connection, for exactly as long as the bucket holds less than one
-- token (functions/core/rate-admission.ts): a flood over the limit no longer takes the database
-- connections that other tenants need. Same checks, same SQLSTATE, same signature: the function is
-- replaced in place by its owner, with its grants unchanged.
RESET ROLE;
GRANT CREATE ON SCHEMA app TO app_metering;
SET LOCAL ROLE app_metering;
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
        DETAIL = json_build_object('metric', 'rate', 'limit', v_rps, 'tokens', v_seen)::text;
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
        -- The tokens are spoken for, not gone: reported as seen (≥ 1), so nobody waits on this answer.
        RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
          DETAIL = json_build_object('metric', 'rate', 'limit', v_rps, 'tokens', v_seen)::text;
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
        DETAIL = json_build_object('metric', 'rate', 'limit', v_rps, 'tokens', v_tokens)::text;
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
    SELECT c.used, c.bucket_tokens, c.bucket_at INTO v_used, v_tokens, v_at FROM app.usage_counters c
     WHERE c.tenant_id = v_tenant AND c.metric = 'api_requests' AND c.period = v_period;
    v_now := clock_timestamp();
    v_seen := least(v_rps, coalesce(v_tokens, v_rps) + greatest(extract(epoch FROM v_now - coalesce(v_at, v_now)), 0) * v_rps);
    IF v_limit IS NOT NULL AND coalesce(v_used, 0) + 1 > v_limit THEN
      RAISE EXCEPTION 'quota exceeded for api_requests' USING ERRCODE = 'TS429',
        DETAIL = json_build_object('metric', 'api_requests', 'limit', v_limit, 'used', coalesce(v_used, 0), 'period', v_period)::text;
    END IF;
    RAISE EXCEPTION 'rate limit exceeded' USING ERRCODE = 'TS429',
      DETAIL = json_build_object('metric', 'rate', 'limit', v_rps, 'tokens', v_seen)::text;
  END IF;
  RETURN QUERY SELECT v_used, v_limit, v_period;
END
$$;

RESET ROLE;
REVOKE CREATE ON SCHEMA app FROM app_metering;
