-- Performance (issue 12): the cost of a new job must not grow with the history.

-- The concurrency cap counts the member's unfinished jobs: seek them instead of reading all the member's jobs.
CREATE INDEX jobs_by_member_state ON jobs (guild_id, user_id, state);

-- Reconciliation at start-up reads only the holds still open.
CREATE INDEX ledger_held ON ledger (job_id) WHERE status = 'held';

-- Spend per UTC day, kept by the triggers below in the same transaction as every ledger write: a limit check sums
-- at most 31 rows of this table instead of every ledger row of its window (a server limit read them all).
-- scope 'member': member-paid rows of user target_id; 'channel': member- and pool-paid rows of budget channel
-- target_id; 'server': every row but the operator's (target_id 0). Same attribution as SpendLedger's limits.
CREATE TABLE ledger_days (
    guild_id        INTEGER NOT NULL,
    scope           TEXT    NOT NULL CHECK (scope IN ('member', 'channel', 'server')),
    target_id       INTEGER NOT NULL,
    dry_run         INTEGER NOT NULL,
    day             TEXT    NOT NULL,  -- 'YYYY-MM-DD' of the ledger row's created_at (UTC)
    settled_micros  INTEGER NOT NULL DEFAULT 0,
    held_micros     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, scope, target_id, dry_run, day)
);

INSERT INTO ledger_days (guild_id, scope, target_id, dry_run, day, settled_micros, held_micros)
SELECT guild_id, scope, target_id, dry_run, day, SUM(settled), SUM(held) FROM (
    SELECT guild_id, 'member' AS scope, user_id AS target_id, dry_run, substr(created_at, 1, 10) AS day,
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
    FROM ledger WHERE payer != 'operator'
) AS parts
GROUP BY guild_id, scope, target_id, dry_run, day;

CREATE TRIGGER ledger_days_insert AFTER INSERT ON ledger BEGIN
    INSERT INTO ledger_days (guild_id, scope, target_id, dry_run, day, settled_micros, held_micros)
    SELECT NEW.guild_id, parts.scope, parts.target_id, NEW.dry_run, substr(NEW.created_at, 1, 10),
           CASE NEW.status WHEN 'settled' THEN NEW.charged_micros ELSE 0 END,
           CASE NEW.status WHEN 'held' THEN NEW.held_micros ELSE 0 END
    FROM (SELECT 'member' AS scope, NEW.user_id AS target_id WHERE NEW.payer = 'member'
          UNION ALL SELECT 'channel', NEW.budget_channel_id WHERE NEW.payer IN ('member', 'pool')
          UNION ALL SELECT 'server', 0 WHERE NEW.payer != 'operator') AS parts
    WHERE true
    ON CONFLICT (guild_id, scope, target_id, dry_run, day) DO UPDATE SET
        settled_micros = settled_micros + excluded.settled_micros,
        held_micros = held_micros + excluded.held_micros;
END;

CREATE TRIGGER ledger_days_delete AFTER DELETE ON ledger BEGIN
    UPDATE ledger_days SET
        settled_micros = settled_micros - CASE OLD.status WHEN 'settled' THEN OLD.charged_micros ELSE 0 END,
        held_micros = held_micros - CASE OLD.status WHEN 'held' THEN OLD.held_micros ELSE 0 END
    WHERE guild_id = OLD.guild_id AND dry_run = OLD.dry_run AND day = substr(OLD.created_at, 1, 10)
      AND ((scope = 'member' AND target_id = OLD.user_id AND OLD.payer = 'member')
        OR (scope = 'channel' AND target_id = OLD.budget_channel_id AND OLD.payer IN ('member', 'pool'))
        OR (scope = 'server' AND target_id = 0 AND OLD.payer != 'operator'));
END;

-- An update takes the old row's share out and puts the new row's share in (a settle or release moves money
-- between held and settled; nothing else is updated today, but any column change stays correct).
CREATE TRIGGER ledger_days_update AFTER UPDATE ON ledger BEGIN
    UPDATE ledger_days SET
        settled_micros = settled_micros - CASE OLD.status WHEN 'settled' THEN OLD.charged_micros ELSE 0 END,
        held_micros = held_micros - CASE OLD.status WHEN 'held' THEN OLD.held_micros ELSE 0 END
    WHERE guild_id = OLD.guild_id AND dry_run = OLD.dry_run AND day = substr(OLD.created_at, 1, 10)
      AND ((scope = 'member' AND target_id = OLD.user_id AND OLD.payer = 'member')
        OR (scope = 'channel' AND target_id = OLD.budget_channel_id AND OLD.payer IN ('member', 'pool'))
        OR (scope = 'server' AND target_id = 0 AND OLD.payer != 'operator'));
    INSERT INTO ledger_days (guild_id, scope, target_id, dry_run, day, settled_micros, held_micros)
    SELECT NEW.guild_id, parts.scope, parts.target_id, NEW.dry_run, substr(NEW.created_at, 1, 10),
           CASE NEW.status WHEN 'settled' THEN NEW.charged_micros ELSE 0 END,
           CASE NEW.status WHEN 'held' THEN NEW.held_micros ELSE 0 END
    FROM (SELECT 'member' AS scope, NEW.user_id AS target_id WHERE NEW.payer = 'member'
          UNION ALL SELECT 'channel', NEW.budget_channel_id WHERE NEW.payer IN ('member', 'pool')
          UNION ALL SELECT 'server', 0 WHERE NEW.payer != 'operator') AS parts
    WHERE true
    ON CONFLICT (guild_id, scope, target_id, dry_run, day) DO UPDATE SET
        settled_micros = settled_micros + excluded.settled_micros,
        held_micros = held_micros + excluded.held_micros;
END;
