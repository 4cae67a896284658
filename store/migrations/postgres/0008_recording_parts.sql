-- 0008_recording_parts (Postgres): as SQLite's 0008_recording_parts.sql.
-- recording_parts hands out part numbers, one row per session and file, whose
-- last_part only grows (INSERT … ON CONFLICT DO UPDATE … RETURNING, the same
-- statement on both databases); recording_objects gains the part number and
-- when the part's first packet was written.

CREATE TABLE recording_parts (
    session_id TEXT COLLATE "C" NOT NULL,
    file_id    TEXT COLLATE "C" NOT NULL,
    last_part  BIGINT NOT NULL,
    PRIMARY KEY (session_id, file_id)
);

ALTER TABLE recording_objects ADD COLUMN part BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recording_objects ADD COLUMN started TEXT COLLATE "C";
