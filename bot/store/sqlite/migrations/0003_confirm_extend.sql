-- Members' features (issue 13): confirm before costly jobs. Portable SQL (PostgreSQL's copy types it as 0001 does).

-- /videoadmin confirm-above: jobs whose estimate is at least this ask first (NULL = the default, 0 = never ask).
ALTER TABLE guild_settings ADD COLUMN confirm_above_micros INTEGER;

-- A costly job waiting for its member's Start: the checked plan, nothing reserved. Start and Cancel are
-- compare-and-set moves out of 'open', so a Start clicked twice (or in two processes) starts one job.
CREATE TABLE offers (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    channel_id       INTEGER NOT NULL,
    estimate_micros  INTEGER NOT NULL CHECK (estimate_micros >= 0),
    plan_json        TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'started', 'cancelled')),
    created_at       TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    closed_at        TEXT
);
CREATE INDEX offers_by_expiry ON offers (state, expires_at);
-- "Usually ready in about N min" reads the latest finished jobs of one size through 0002's jobs_by_size.
