-- 0003_safeguarding: safeguarding concerns and the index of stored recordings.

CREATE TABLE concerns (
    id            TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL,
    raised_by_sub TEXT NOT NULL,
    raised_by     TEXT NOT NULL,
    about         TEXT NOT NULL,
    details       TEXT NOT NULL,
    created       TEXT NOT NULL,
    recorded      INTEGER NOT NULL,
    held_objects  INTEGER NOT NULL
);
CREATE INDEX concerns_session ON concerns (session_id);
CREATE INDEX concerns_created ON concerns (created);

-- One row per stored object (participant file or manifest); deleted is set
-- when the retention sweeper removes it.
CREATE TABLE recording_objects (
    key              TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL,
    participant_id   TEXT NOT NULL,
    participant_name TEXT NOT NULL,
    role             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    version_id       TEXT NOT NULL,
    retain_until     TEXT NOT NULL,
    held             INTEGER NOT NULL,
    created          TEXT NOT NULL,
    deleted          TEXT
);
CREATE INDEX recording_objects_session ON recording_objects (session_id);
CREATE INDEX recording_objects_created ON recording_objects (created);
