-- Performance (issue 12): the cost of a new job must not grow with the history. Same as SQLite's 0005.

-- The concurrency cap counts the member's unfinished jobs: seek them instead of reading all the member's jobs.
CREATE INDEX jobs_by_member_state ON jobs (guild_id, user_id, state);

-- Reconciliation at start-up reads only the holds still open.
CREATE INDEX ledger_held ON ledger (job_id) WHERE status = 'held';

-- Spend per UTC day, kept by the trigger below in the same transaction as every ledger write: a limit check sums
-- at most 31 rows of this table instead of every ledger row of its window (a server limit read them all).
-- scope 'member': member-paid rows of user target_id; 'channel': member- and pool-paid rows of budget channel
-- target_id; 'server': every row but the operator's (target_id 0). Same attribution as bot/store/spend.py.
-- Derived from ledger: copy-db does not copy it (the trigger fills it as the ledger rows arrive).
CREATE TABLE ledger_days (
    guild_id        BIGINT NOT NULL,
    scope           TEXT COLLATE "C" NOT NULL CHECK (scope IN ('member', 'channel', 'server')),
    target_id       BIGINT NOT NULL,
    dry_run         BIGINT NOT NULL,
    day             TEXT COLLATE "C" NOT NULL,  -- 'YYYY-MM-DD' of the ledger row's created_at (UTC)
    settled_micros  BIGINT NOT NULL DEFAULT 0,
    held_micros     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, scope, target_id, dry_run, day)
);

INSERT INTO ledger_days (guild_id, scope, target_id, dry_run, day, settled_micros, held_micros)
SELECT guild_id, scope, target_id, dry_run, day, SUM(settled), SUM(held) FROM (
    SELECT guild_id, 'member'::text AS scope, user_id AS target_id, dry_run, substr(created_at, 1, 10) AS day,
           CASE status WHEN 'settled' THEN charged_micros ELSE 0 END AS settled,
           CASE status WHEN 'held' THEN held_micros ELSE 0 END AS held
    FROM ledger WHERE payer = 'member'
    UNION ALL
    SELECT guild_id, 'channel', budget_channel_id, dry_run, substr(created_at, 1, 10),
           CASE status WHEN 'settled' THEN charged_micros ELSE 0 END,
           CASE status WHEN 'held' THEN held_micros ELSE 0 END
    FROM ledger WHERE payer IN ('member', 'pool')
    UNION ALL
    SELECT guild_id, 'server', 0, dry_run, substr(created_at, 1, 10),
           CASE status WHEN 'settled' THEN charged_micros ELSE 0 END,
           CASE status WHEN 'held' THEN held_micros ELSE 0 END
    FROM ledger WHERE payer <> 'operator'
) AS parts
GROUP BY guild_id, scope, target_id, dry_run, day;

-- One ledger row's share of the day sums, added (sign 1) or taken out (sign -1).
CREATE FUNCTION ledger_days_apply(r ledger, sign BIGINT) RETURNS void LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO ledger_days AS d (guild_id, scope, target_id, dry_run, day, settled_micros, held_micros)
    SELECT r.guild_id, parts.scope, parts.target_id, r.dry_run, substr(r.created_at, 1, 10),
           sign * CASE r.status WHEN 'settled' THEN r.charged_micros ELSE 0 END,
           sign * CASE r.status WHEN 'held' THEN r.held_micros ELSE 0 END
    FROM (SELECT 'member'::text AS scope, r.user_id AS target_id WHERE r.payer = 'member'
          UNION ALL SELECT 'channel', r.budget_channel_id WHERE r.payer IN ('member', 'pool')
          UNION ALL SELECT 'server', 0 WHERE r.payer <> 'operator') AS parts
    ON CONFLICT (guild_id, scope, target_id, dry_run, day) DO UPDATE SET
        settled_micros = d.settled_micros + EXCLUDED.settled_micros,
        held_micros = d.held_micros + EXCLUDED.held_micros;
END $$;

-- An update takes the old row's share out and puts the new row's share in (a settle or release moves money
-- between held and settled; any other column change stays correct too).
CREATE FUNCTION ledger_days_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ledger_days_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ledger_days_apply(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_days_sync AFTER INSERT OR UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_days_sync();
