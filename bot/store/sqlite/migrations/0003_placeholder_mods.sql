-- Placeholder on branch mods only: versions 0002 and 0003 belong to other branches' migrations.
-- Delete this file when merging (the loader wants 0001, 0002, ... without gaps).
SELECT 1;
