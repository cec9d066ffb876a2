-- Moderator features (SPEC §4a): the blocklist of phrases kept out of prompts, and indexes for prices that
-- follow what Runware reports and for one moderator's audit rows.
-- Portable SQL (SQLite and PostgreSQL alike).

-- One row per blocked phrase. `phrase` is as the moderator listed it (shown in refusals); `phrase_key` is its
-- NFKC-casefolded form, so `CAT` and `Ｃａｔ` are the same entry.
CREATE TABLE blocklist (
    guild_id    INTEGER NOT NULL,
    phrase_key  TEXT    NOT NULL,
    phrase      TEXT    NOT NULL,
    added_by    INTEGER NOT NULL,
    added_at    TEXT    NOT NULL,
    PRIMARY KEY (guild_id, phrase_key)
);

-- Bumped by every change to a server's blocklist in the same transaction: a process keeps its compiled matcher
-- while the number it reads here is the one it compiled, so no process serves a stale list.
CREATE TABLE blocklist_versions (
    guild_id  INTEGER PRIMARY KEY,
    version   INTEGER NOT NULL
);

-- The last reported costs of one size (resolution and duration), newest first.
CREATE INDEX jobs_by_size ON jobs (resolution, duration, dry_run, state, id);

-- /videoadmin audit member: one moderator's latest changes.
CREATE INDEX audit_by_actor ON audit (guild_id, actor_id, id);
