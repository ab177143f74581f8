-- Roles and the application schema. Runs as a superuser or the RDS master user.
--   app_owner   owns every object; never logs in.
--   app_runtime the role every Lambda logs in as: NOBYPASSRLS, owns nothing, least grants.
--   app_control the control plane (onboarding, offboarding, billing close): its own explicit policies.
-- Passwords are not set here: RDS uses IAM auth (rds_iam); local stacks set one outside migrations.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_owner') THEN
    CREATE ROLE app_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_runtime') THEN
    CREATE ROLE app_runtime LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_control') THEN
    CREATE ROLE app_control LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
    GRANT rds_iam TO app_runtime;
    GRANT rds_iam TO app_control;
  END IF;
END
$$;

-- The migrating user must be able to act as the owner so that every object below is owned by it.
GRANT app_owner TO CURRENT_USER;

CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION app_owner;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO app_runtime, app_control;

-- Nobody but the owner creates objects in public either.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- gen_random_uuid() is built in since Postgres 13; nothing to install.
