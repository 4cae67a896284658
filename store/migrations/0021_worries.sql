-- 0021_worries: a pupil's "I'm worried" (R17) is kept with the concerns, for
-- the DSLs only: kind says which it is. A worry sent from the home page names
-- no lesson (session_id is then empty).

ALTER TABLE concerns ADD COLUMN kind TEXT NOT NULL DEFAULT 'concern';
