-- hailuo-bot schema, version 4, for PostgreSQL: leases, as SQLite's 0004_leases.sql (SPEC §10).
-- A job's lease covers submit, recovery, the poll sweep and expiry; a result's lease covers posting it.
-- lease_owner is a process's owner id; lease_until is ISO-8601 UTC text in the "C" collation like every other time.

ALTER TABLE jobs ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN lease_until TEXT COLLATE "C";
ALTER TABLE results ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE results ADD COLUMN lease_until TEXT COLLATE "C";
CREATE INDEX jobs_by_lease ON jobs (lease_owner);
CREATE INDEX results_by_lease ON results (lease_owner);
