-- hailuo-bot schema, version 6: a job's lease in a narrow table of its own (SPEC §10).
-- Claiming or renewing a lease rewrote the whole job row (its prompt and task) and, with lease_owner indexed, an
-- entry in every index of jobs; a row of three columns costs a tenth of that (PostgreSQL: 10,000 claims 1.4 s ->
-- 0.15 s). Every job has one row here from its reservation on, written in the same transaction.
-- jobs.lease_owner and jobs.lease_until are no longer read or written (SQLite before 3.35 cannot drop a column).

CREATE TABLE job_leases (
    job_id  INTEGER PRIMARY KEY REFERENCES jobs(id),
    owner   TEXT,  -- a process's owner id, NULL when free
    until   TEXT   -- ISO-8601 UTC text; the lease is free when NULL or in the past
);
CREATE INDEX job_leases_by_owner ON job_leases (owner);

INSERT INTO job_leases (job_id, owner, until) SELECT id, lease_owner, lease_until FROM jobs;
UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL;
DROP INDEX jobs_by_lease;
