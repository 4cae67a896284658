-- 0021_worries (Postgres): a concern's kind (a staff concern, or a pupil's
-- "I'm worried"); see the SQLite file of the same name.

ALTER TABLE concerns ADD COLUMN kind TEXT COLLATE "C" NOT NULL DEFAULT 'concern';
