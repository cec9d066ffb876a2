-- Moderator features (SPEC §4a) for PostgreSQL: the same tables, columns and indexes as SQLite's
-- 0002_moderators.sql, typed as the PostgreSQL 0001_init.sql types them (BIGINT integers, TEXT in the "C" collation).
-- Waiting here for the PostgreSQL store (branch pgstore); the lead may renumber it with the SQLite one.

CREATE TABLE blocklist (
    guild_id    BIGINT NOT NULL,
    phrase_key  TEXT COLLATE "C" NOT NULL,
    phrase      TEXT COLLATE "C" NOT NULL,
    added_by    BIGINT NOT NULL,
    added_at    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, phrase_key)
);

CREATE TABLE blocklist_versions (
    guild_id  BIGINT PRIMARY KEY,
    version   BIGINT NOT NULL
);

CREATE INDEX jobs_by_size ON jobs (resolution, duration, dry_run, state, id);

CREATE INDEX audit_by_actor ON audit (guild_id, actor_id, id);
