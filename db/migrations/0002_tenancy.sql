-- Core tables. Every tenant-owned table: tenant_id NOT NULL referencing tenants, ENABLE and FORCE
-- row-level security, one policy on tenant_id = current_setting('app.tenant_id') for USING and
-- WITH CHECK, and indexes that lead with tenant_id. An unset context matches no row: fail-closed.
SET LOCAL ROLE app_owner;

CREATE TABLE app.plans (
  id             text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{0,39}$'),
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- Per-metric limits; a JSON null (or a missing key) means unlimited. Monthly for api_requests
  -- and ai_tokens, standing totals for documents and storage_bytes.
  limits         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(limits) = 'object'),
  -- Per-metric pricing: { metric: { "included": n, "unitPriceMicros": n } } plus "baseMicros".
  prices         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(prices) = 'object'),
  currency       text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  -- Requests per second allowed to one tenant on this plan.
  rate_limit_rps integer NOT NULL DEFAULT 50 CHECK (rate_limit_rps > 0),
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app.tenants (
  id            text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  plan_id       text NOT NULL REFERENCES app.plans (id),
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'offboarding')),
  -- The tenant's PII data key, wrapped by KMS with encryption context {tenant_id}. Destroyed at offboarding.
  data_key_ciphertext bytea,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_plan_idx ON app.tenants (plan_id);

CREATE TABLE app.members (
  tenant_id        text NOT NULL REFERENCES app.tenants (id),
  user_id          uuid NOT NULL,
  role             text NOT NULL CHECK (role IN ('org_admin', 'user', 'readonly')),
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  -- PII only as ciphertext (AES-256-GCM under the tenant's data key) plus a keyed blind index.
  email_ciphertext bytea NOT NULL,
  email_hmac       bytea NOT NULL,
  name_ciphertext  bytea,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  UNIQUE (tenant_id, email_hmac)
);
CREATE INDEX members_tenant_created_idx ON app.members (tenant_id, created_at, user_id);

-- Platform operators (role superadmin). Not tenant-owned; a runtime session sees only its own row.
CREATE TABLE app.platform_operators (
  user_id    uuid PRIMARY KEY,
  status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app.documents (
  tenant_id    text NOT NULL REFERENCES app.tenants (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  content_type text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 255),
  size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
  -- pending: created, bytes not yet seen in storage; available: the object exists.
  status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'available')),
  created_by   uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  uploaded_at  timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX documents_tenant_newest_idx ON app.documents (tenant_id, created_at DESC, id DESC);

CREATE TABLE app.usage_counters (
  tenant_id  text NOT NULL REFERENCES app.tenants (id),
  metric     text NOT NULL CHECK (metric IN ('api_requests', 'documents', 'storage_bytes', 'ai_tokens')),
  -- 'YYYY-MM' (UTC calendar month) for monthly metrics; 'total' for standing totals.
  period     text NOT NULL CHECK (period ~ '^([0-9]{4}-(0[1-9]|1[0-2])|total)$'),
  used       bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, metric, period)
);

CREATE TABLE app.usage_events (
  tenant_id       text NOT NULL REFERENCES app.tenants (id),
  id              uuid NOT NULL DEFAULT gen_random_uuid(),
  metric          text NOT NULL CHECK (metric IN ('api_requests', 'documents', 'storage_bytes', 'ai_tokens')),
  quantity        bigint NOT NULL CHECK (quantity > 0),
  period          text NOT NULL CHECK (period ~ '^([0-9]{4}-(0[1-9]|1[0-2])|total)$'),
  idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  -- SHA-256 of the canonical payload: the same key with another payload is a conflict.
  payload_sha256  bytea NOT NULL,
  created_by      uuid NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_tenant_created_idx ON app.usage_events (tenant_id, created_at DESC);

CREATE TABLE app.audit_events (
  tenant_id     text NOT NULL REFERENCES app.tenants (id),
  id            uuid NOT NULL DEFAULT gen_random_uuid(),
  occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_user_id uuid NOT NULL,
  actor_role    text NOT NULL CHECK (actor_role IN ('org_admin', 'user', 'readonly', 'superadmin')),
  action        text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
  resource_type text NOT NULL CHECK (length(resource_type) BETWEEN 1 AND 100),
  resource_id   text CHECK (length(resource_id) <= 200),
  request_id    text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 200),
  outcome       text NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'denied')),
  detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_tenant_newest_idx ON app.audit_events (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_tenant_request_idx ON app.audit_events (tenant_id, request_id);

-- Row-level security: enabled and forced (the owner is subject to it too).
ALTER TABLE app.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.tenants FORCE ROW LEVEL SECURITY;
-- A tenant session sees its own tenant row; a platform operator session sees every tenant row.
CREATE POLICY tenant_isolation ON app.tenants
  USING (id = (SELECT current_setting('app.tenant_id', true)))
  WITH CHECK (id = (SELECT current_setting('app.tenant_id', true)));
CREATE POLICY platform_operator_read ON app.tenants FOR SELECT
  USING ((SELECT current_setting('app.role', true)) = 'superadmin');

ALTER TABLE app.platform_operators ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.platform_operators FORCE ROW LEVEL SECURITY;
CREATE POLICY own_row ON app.platform_operators
  USING (user_id::text = (SELECT current_setting('app.user_id', true)))
  WITH CHECK (false);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['members', 'documents', 'usage_counters', 'usage_events', 'audit_events'] LOOP
    EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE app.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON app.%I
      USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
      WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)))$p$, t);
  END LOOP;
END
$$;

-- The control plane works across tenants through explicit policies of its own, never BYPASSRLS.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'members', 'platform_operators', 'documents', 'usage_counters', 'usage_events', 'audit_events'] LOOP
    EXECUTE format('CREATE POLICY control_plane ON app.%I TO app_control USING (true) WITH CHECK (true)', t);
  END LOOP;
END
$$;

-- Grants: only what the routes need.
GRANT SELECT ON app.plans, app.tenants, app.platform_operators TO app_runtime;
GRANT SELECT, INSERT, UPDATE ON app.members TO app_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.documents TO app_runtime;
GRANT SELECT, INSERT, UPDATE ON app.usage_counters TO app_runtime;
GRANT SELECT, INSERT ON app.usage_events TO app_runtime;
GRANT SELECT, INSERT ON app.audit_events TO app_runtime;

GRANT SELECT, INSERT, UPDATE ON app.plans, app.tenants, app.members, app.platform_operators TO app_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.usage_counters TO app_control;
GRANT SELECT, DELETE ON app.documents, app.usage_events TO app_control;
GRANT SELECT, INSERT ON app.audit_events TO app_control;
