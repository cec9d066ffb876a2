-- hailuo-bot schema, version 4: leases, so several processes can share one database (SPEC §10).
-- A job's lease covers submit, recovery, the poll sweep and expiry; a result's lease covers posting it.
-- lease_owner is a process's owner id; lease_until is ISO-8601 UTC text like every other time. A lease is free when
-- lease_until is NULL or in the past; its owner renews it while it works, and a dead owner's leases lapse.

ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until TEXT;
ALTER TABLE results ADD COLUMN lease_owner TEXT;
ALTER TABLE results ADD COLUMN lease_until TEXT;
CREATE INDEX jobs_by_lease ON jobs (lease_owner);
CREATE INDEX results_by_lease ON results (lease_owner);
