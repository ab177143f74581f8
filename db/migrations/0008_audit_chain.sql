-- A tamper-evident audit trail: a SHA-256 hash chain per tenant, written by a sealer after commit.
--
-- Why a sealer and not the request: chaining at insert time needs the tenant's previous hash, i.e. a
-- hot row locked by every mutating request of the tenant until commit. Instead the request's insert is
-- unchanged (one trivial default: the inserting transaction's id), and app.seal_audit_events(), run
-- every few seconds by the app_sealer role, appends the committed events to each tenant's chain.
--
-- Order that is stable once sealed: an event is sealed only when its inserting transaction id is
-- below pg_snapshot_xmin(pg_current_snapshot()), i.e. older than every transaction still running, so
-- it is committed (or never will be) and no event that commits later can sort before it. Each run
-- appends the newly final events in (xact, occurred_at, id) order; every later run only sees larger
-- xacts. Window: an event is sealed at the first sealer run after every transaction that was already
-- running when it was written has ended (request transactions live at most the request deadline).
--
-- The chain lives beside the events (app.audit_chain, one row per sealed event) rather than in extra
-- columns: audit events stay append-only for everyone (no UPDATE grant to any role, no rewrite of each
-- row), app_runtime keeps exactly INSERT and SELECT on them, and the sealer needs INSERT only.
-- The sealer's login role (deployed: IAM auth through RDS Proxy, like the others). Created by the
-- migrating user, as in 0001.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_sealer') THEN
    CREATE ROLE app_sealer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
    GRANT rds_iam TO app_sealer;
  END IF;
END
$$;

SET LOCAL ROLE app_owner;
GRANT USAGE ON SCHEMA app TO app_sealer;

-- The inserting transaction. Added without rewriting the table (a volatile default on ADD COLUMN
-- would): events written before this migration keep NULL and are sealed first, in (occurred_at, id)
-- order, by the first run.
ALTER TABLE app.audit_events ADD COLUMN xact xid8;
ALTER TABLE app.audit_events ALTER COLUMN xact SET DEFAULT pg_current_xact_id();
CREATE INDEX audit_events_xact_idx ON app.audit_events (xact);

CREATE TABLE app.audit_chain (
  tenant_id  text NOT NULL REFERENCES app.tenants (id),
  seq        bigint NOT NULL CHECK (seq >= 1),
  event_id   uuid NOT NULL,
  prev_hash  bytea CHECK (octet_length(prev_hash) = 32),
  hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
  sealed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq),
  UNIQUE (tenant_id, event_id),
  CHECK ((seq = 1) = (prev_hash IS NULL))
);
ALTER TABLE app.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.audit_chain
  USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
  WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)));
CREATE POLICY control_plane ON app.audit_chain TO app_control USING (true) WITH CHECK (true);
CREATE POLICY sealer ON app.audit_chain TO app_sealer USING (true) WITH CHECK (true);
CREATE POLICY sealer ON app.audit_events FOR SELECT TO app_sealer USING (true);

-- Where the last run stopped: every event with xact below it is sealed. No tenant data in it.
CREATE TABLE app.audit_seal_watermark (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sealed_below xid8 NOT NULL
);
INSERT INTO app.audit_seal_watermark (sealed_below) VALUES ('0'::xid8);

GRANT SELECT ON app.audit_chain TO app_runtime;
GRANT SELECT, DELETE ON app.audit_chain TO app_control;
GRANT SELECT ON app.audit_events TO app_sealer;
GRANT SELECT, INSERT ON app.audit_chain TO app_sealer;
GRANT SELECT, UPDATE ON app.audit_seal_watermark TO app_sealer;

-- One field of the canonical encoding: 4-byte big-endian length of its UTF-8 bytes, then the bytes;
-- NULL is the length 0xFFFFFFFF with no bytes. Unambiguous without escaping.
CREATE FUNCTION app.audit_chain_field(p text) RETURNS bytea
  LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog AS $$
  SELECT CASE WHEN p IS NULL THEN '\xffffffff'::bytea
              ELSE int4send(octet_length(convert_to(p, 'UTF8'))) || convert_to(p, 'UTF8') END
$$;

-- The hash of one chain link (version audit-chain-v1): SHA-256 over the encoded fields, in order:
-- 'audit-chain-v1', tenant_id, seq (decimal), id, occurred_at (UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ'),
-- actor_user_id, actor_role, action, resource_type, resource_id, request_id, outcome, detail (jsonb
-- text), prev_hash (lower-case hex; NULL for seq 1). bin/audit-verify.ts recomputes it independently.
CREATE FUNCTION app.audit_chain_hash(e app.audit_events, p_seq bigint, p_prev bytea) RETURNS bytea
  LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog AS $$
  SELECT sha256(
       app.audit_chain_field('audit-chain-v1')
    || app.audit_chain_field(e.tenant_id)
    || app.audit_chain_field(p_seq::text)
    || app.audit_chain_field(e.id::text)
    || app.audit_chain_field(to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
    || app.audit_chain_field(e.actor_user_id::text)
    || app.audit_chain_field(e.actor_role)
    || app.audit_chain_field(e.action)
    || app.audit_chain_field(e.resource_type)
    || app.audit_chain_field(e.resource_id)
    || app.audit_chain_field(e.request_id)
    || app.audit_chain_field(e.outcome)
    || app.audit_chain_field(e.detail::text)
    || app.audit_chain_field(encode(p_prev, 'hex')))
$$;

-- Appends every final, unsealed event to its tenant's chain; returns how many it sealed. Sealers are
-- serialised by an advisory lock (a second one waits, then finds nothing new), and the primary key on
-- (tenant_id, seq) refuses a fork even if that lock were bypassed. SECURITY INVOKER: run as app_sealer.
CREATE FUNCTION app.seal_audit_events() RETURNS bigint
  LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
DECLARE
  v_from   xid8;
  v_below  xid8;
  v_tenant text;
  v_seq    bigint;
  v_prev   bytea;
  v_hash   bytea;
  v_count  bigint := 0;
  e        app.audit_events;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('app.seal_audit_events'));
  -- Taken after the lock, before this transaction writes (and so has an id of its own).
  v_below := pg_snapshot_xmin(pg_current_snapshot());
  SELECT sealed_below INTO v_from FROM app.audit_seal_watermark FOR UPDATE;
  IF v_below <= v_from THEN
    RETURN 0;
  END IF;
  FOR e IN
    SELECT * FROM (
      SELECT * FROM app.audit_events WHERE v_from = '0'::xid8 AND xact IS NULL
      UNION ALL
      SELECT * FROM app.audit_events WHERE xact >= v_from AND xact < v_below
    ) a
     WHERE NOT EXISTS (SELECT 1 FROM app.audit_chain c WHERE c.tenant_id = a.tenant_id AND c.event_id = a.id)
     ORDER BY a.tenant_id, a.xact NULLS FIRST, a.occurred_at, a.id
  LOOP
    IF v_tenant IS DISTINCT FROM e.tenant_id THEN
      v_tenant := e.tenant_id;
      SELECT c.seq, c.hash INTO v_seq, v_prev
        FROM app.audit_chain c WHERE c.tenant_id = v_tenant ORDER BY c.seq DESC LIMIT 1;
      v_seq := coalesce(v_seq, 0);
    END IF;
    v_seq := v_seq + 1;
    v_hash := app.audit_chain_hash(e, v_seq, v_prev);
    INSERT INTO app.audit_chain (tenant_id, seq, event_id, prev_hash, hash)
    VALUES (e.tenant_id, v_seq, e.id, v_prev, v_hash);
    v_prev := v_hash;
    v_count := v_count + 1;
  END LOOP;
  UPDATE app.audit_seal_watermark SET sealed_below = v_below;
  RETURN v_count;
END
$$;
REVOKE ALL ON FUNCTION app.audit_chain_field(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.audit_chain_hash(app.audit_events, bigint, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.seal_audit_events() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.audit_chain_field(text), app.audit_chain_hash(app.audit_events, bigint, bytea),
  app.seal_audit_events() TO app_sealer;
