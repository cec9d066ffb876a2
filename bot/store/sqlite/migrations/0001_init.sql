-- hailuo-bot schema, version 1.
-- Times are fixed-width ISO-8601 UTC text ('2025-01-31T23:59:59.000000Z'): string order is time order.
-- Money is integer micro-dollars. Booleans are 0/1. Ids are Discord snowflakes (guild 0 = the CLI operator).

CREATE TABLE jobs (
    id                 INTEGER PRIMARY KEY,
    task_uuid          TEXT    NOT NULL UNIQUE,
    guild_id           INTEGER NOT NULL,
    channel_id         INTEGER NOT NULL,            -- where it was asked (may be a thread)
    budget_channel_id  INTEGER NOT NULL,            -- root channel: channel limits and pools
    user_id            INTEGER NOT NULL,
    payer              TEXT    NOT NULL CHECK (payer IN ('member', 'pool', 'operator')),
    pool_channel_id    INTEGER,
    prompt             TEXT    NOT NULL,
    resolution         TEXT    NOT NULL,
    duration           INTEGER NOT NULL,
    variations         INTEGER NOT NULL CHECK (variations >= 1),
    prompt_optimizer   INTEGER NOT NULL DEFAULT 0,
    frame_count        INTEGER NOT NULL DEFAULT 0,
    params_json        TEXT    NOT NULL DEFAULT '{}',
    state              TEXT    NOT NULL
        CHECK (state IN ('reserved', 'submitted', 'succeeded', 'failed', 'expired', 'cancelled')),
    estimate_micros    INTEGER NOT NULL CHECK (estimate_micros >= 0),
    cost_micros        INTEGER,
    error              TEXT,
    dry_run            INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    submitted_at       TEXT,
    finished_at        TEXT,
    status_channel_id  INTEGER,
    status_message_id  INTEGER,
    thread_id          INTEGER,
    parent_job_id      INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    submit_attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, id);

CREATE TABLE results (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    video_uuid    TEXT    NOT NULL,
    video_url     TEXT    NOT NULL,
    seed          INTEGER,
    cost_micros   INTEGER,
    state         TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivering', 'delivered', 'undeliverable', 'skipped')),
    message_id    INTEGER,
    channel_id    INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL,
    delivered_at  TEXT,
    UNIQUE (job_id, video_uuid)
);
CREATE INDEX results_by_state ON results (state);

-- One row per job: the money. Spent = charged of settled rows + held of open rows, attributed by created_at.
CREATE TABLE ledger (
    job_id             INTEGER PRIMARY KEY REFERENCES jobs (id),
    guild_id           INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    budget_channel_id  INTEGER NOT NULL,
    payer              TEXT    NOT NULL CHECK (payer IN ('member', 'pool', 'operator')),
    dry_run            INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    held_micros        INTEGER NOT NULL CHECK (held_micros >= 0),
    charged_micros     INTEGER NOT NULL DEFAULT 0 CHECK (charged_micros >= 0),
    status             TEXT    NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'settled', 'released')),
    closed_at          TEXT
);
CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, created_at);
CREATE INDEX ledger_by_channel ON ledger (guild_id, budget_channel_id, created_at);
CREATE INDEX ledger_by_guild ON ledger (guild_id, created_at);

CREATE TABLE limits (
    guild_id       INTEGER NOT NULL,
    scope          TEXT    NOT NULL CHECK (scope IN ('member', 'role', 'channel', 'server')),
    target_id      INTEGER NOT NULL,
    period         TEXT    NOT NULL CHECK (period IN ('day', 'week', 'month')),
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    set_by         INTEGER NOT NULL,
    set_at         TEXT    NOT NULL,
    PRIMARY KEY (guild_id, scope, target_id, period)
);

-- NULL means "use the config default".
CREATE TABLE guild_settings (
    guild_id               INTEGER PRIMARY KEY,
    default_resolution     TEXT,
    default_duration       INTEGER,
    variations_cap         INTEGER,
    prompt_optimizer       INTEGER,
    safety_mode            TEXT CHECK (safety_mode IN ('none', 'fast', 'full')),
    concurrent_per_member  INTEGER,
    moderator_role_id      INTEGER,
    paused                 INTEGER,
    updated_at             TEXT NOT NULL
);

CREATE TABLE channel_settings (
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    allowed     INTEGER NOT NULL DEFAULT 0,
    threads     INTEGER NOT NULL DEFAULT 0,
    pool        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    at         TEXT    NOT NULL
);
CREATE INDEX audit_by_guild ON audit (guild_id, id);

CREATE TABLE webhook_receipts (
    key          TEXT PRIMARY KEY,
    task_uuid    TEXT NOT NULL,
    received_at  TEXT NOT NULL
);

CREATE TABLE kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
