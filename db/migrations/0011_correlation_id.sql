-- The caller's correlation id (the X-Correlation-Id request header, else the API Gateway request id)
-- on each audit event, so that one id finds a caller's request in the logs, the trace and the audit
-- trail. Nullable: events written before this migration, and by control-plane jobs, have none.
-- The hash chain's encoding v1 (0008) does not cover this column: an edit of it is not detected by
-- `npm run audit:verify`. It is a search aid, not evidence.
ALTER TABLE app.audit_events
  ADD COLUMN correlation_id text CHECK (correlation_id ~ '^[A-Za-z0-9._:-]{1,128}$');
