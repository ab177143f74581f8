-- Idempotency-Key: the first answer of a create, kept for 24 h so that a retry with the same key and
-- body replays it and changes nothing more (docs/API.md). One row per key, written in the same
-- transaction as the work and its audit event, so a key exists exactly when its work committed.
--
-- Scope: a tenant route's key is the tenant's (operator_id NULL; unique per tenant); a platform route's
-- key is its operator's (unique per operator), and its row belongs to the tenant it created, so that
-- offboarding purges it with the tenant's other rows (app.tenant_tables finds it by its tenant_id).
-- The answer of a route that returns PII (members, tenant onboarding) is stored encrypted under the
-- tenant's data key (functions/core/idempotency.ts): crypto-shredding at offboarding covers it too.
SET LOCAL ROLE app_owner;

CREATE TABLE app.idempotency_keys (
  tenant_id     text NOT NULL REFERENCES app.tenants (id),
  id            uuid NOT NULL DEFAULT gen_random_uuid(),
  -- The platform operator whose key it is; NULL for a tenant route's key.
  operator_id   uuid,
  key           text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
  -- SHA-256 of the method, route, caller and canonical body: the same key with another request → 409.
  fingerprint   bytea NOT NULL CHECK (length(fingerprint) = 32),
  status        smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
  headers       jsonb NOT NULL CHECK (jsonb_typeof(headers) = 'object'),
  -- At most one of: the body's JSON text as sent (text, not jsonb: a replay is byte for byte), or its
  -- AES-256-GCM ciphertext under the tenant's data key. Neither for an answer without a body.
  body          text,
  body_sealed   bytea,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  CHECK (body IS NULL OR body_sealed IS NULL),
  CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX idempotency_keys_tenant_key ON app.idempotency_keys (tenant_id, key) WHERE operator_id IS NULL;
CREATE UNIQUE INDEX idempotency_keys_operator_key ON app.idempotency_keys (operator_id, key) WHERE operator_id IS NOT NULL;
CREATE INDEX idempotency_keys_expires_idx ON app.idempotency_keys (expires_at);
ALTER TABLE app.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.idempotency_keys FORCE ROW LEVEL SECURITY;
-- The runtime sees its tenant's own keys only; an operator's key stays the control plane's.
CREATE POLICY tenant_isolation ON app.idempotency_keys
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)) AND operator_id IS NULL)
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)) AND operator_id IS NULL);
CREATE POLICY control_plane ON app.idempotency_keys TO app_control USING (true) WITH CHECK (true);
CREATE CONSTRAINT TRIGGER idempotency_keys_audited
  AFTER INSERT OR DELETE OR UPDATE ON app.idempotency_keys
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.require_audit_event();
-- The runtime records and reads keys, and deletes its tenant's expired ones (in an audited request);
-- a stored answer is never changed.
GRANT SELECT, INSERT, DELETE ON app.idempotency_keys TO app_runtime;
GRANT SELECT, INSERT, DELETE ON app.idempotency_keys TO app_control;

-- The audit constraint of 0003/0009, plus one narrow exemption: the control plane deleting an expired
-- key (the sweep of the job runner, or an operator's key replaced after its 24 h). An expired key is a
-- forgotten answer, not a change of the tenant's data; its creation was audited with its work.
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
  -- Nested: OLD.expires_at exists only on this table.
  IF TG_OP = 'DELETE' AND current_user = 'app_control' AND TG_TABLE_NAME = 'idempotency_keys' THEN
    IF OLD.expires_at <= now() THEN
      RETURN NULL;
    END IF;
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
