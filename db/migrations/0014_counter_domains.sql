-- app.usage_counters.metric and .period become domains over text carrying the CHECKs that were the
-- table's: `metric IN (...)` and the period pattern. Postgres re-checks every CHECK constraint of a
-- table on every UPDATE of one of its rows, whichever columns change; metering updates the tenant's
-- counter row on every request (app.meter_request(), app.consume()) and never changes either column,
-- yet paid for the regular expression and the IN list each time (~7 µs of the ~64 µs a metered
-- transaction takes on the server, measured in a procedure loop). A domain's CHECK runs where a value
-- is assigned to the column instead: every INSERT, and every UPDATE that sets metric or period. The
-- rule, the SQLSTATE of a refusal (23514, check_violation) and what can be stored are the same; only
-- the wording of the message differs ("value for domain app.usage_metric violates check constraint
-- ...", not "new row for relation ...": nothing matches on either).
--
-- Only this table changes. app.usage_events and app.invoices keep their table CHECKs: no role may
-- update their rows (events are inserted and deleted, invoices inserted), so the per-UPDATE cost never
-- arises there.
--
-- Changing a column to a domain with constraints rewrites the table and rebuilds its primary key, under
-- an ACCESS EXCLUSIVE lock: one row per tenant, metric and month, a short lock.
SET LOCAL ROLE app_owner;

CREATE DOMAIN app.usage_metric AS text
  CONSTRAINT usage_metric_check CHECK (VALUE IN ('api_requests', 'documents', 'storage_bytes', 'ai_tokens'));
-- 'YYYY-MM' (UTC calendar month) for monthly metrics; 'total' for standing totals.
CREATE DOMAIN app.usage_period AS text
  CONSTRAINT usage_period_check CHECK (VALUE ~ '^([0-9]{4}-(0[1-9]|1[0-2])|total)$');

ALTER TABLE app.usage_counters
  DROP CONSTRAINT usage_counters_metric_check,
  DROP CONSTRAINT usage_counters_period_check,
  ALTER COLUMN metric TYPE app.usage_metric,
  ALTER COLUMN period TYPE app.usage_period;
