-- 0008_recording_parts: every (re)start of a participant's recording is a
-- part of its own, with its own object key. recording_parts hands out part
-- numbers: one row per session and file (a participant's camera, or their
-- screen), whose last_part only grows, so a number is never given twice,
-- whatever restarts in between. recording_objects gains the part number and
-- when the part's first packet was written (the player's offsets).

CREATE TABLE recording_parts (
    session_id TEXT NOT NULL,
    file_id    TEXT NOT NULL,
    last_part  INTEGER NOT NULL,
    PRIMARY KEY (session_id, file_id)
);

ALTER TABLE recording_objects ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recording_objects ADD COLUMN started TEXT;
