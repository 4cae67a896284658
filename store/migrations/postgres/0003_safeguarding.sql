-- 0003_safeguarding (Postgres): safeguarding concerns and the index of stored
-- recordings. As SQLite's 0003_safeguarding.sql; flags are 0/1 integers there
-- and here, so the Go is the same.

CREATE TABLE concerns (
    id            TEXT COLLATE "C" PRIMARY KEY,
    session_id    TEXT COLLATE "C" NOT NULL,
    raised_by_sub TEXT COLLATE "C" NOT NULL,
    raised_by     TEXT COLLATE "C" NOT NULL,
    about         TEXT COLLATE "C" NOT NULL,
    details       TEXT COLLATE "C" NOT NULL,
    created       TEXT COLLATE "C" NOT NULL,
    recorded      BIGINT NOT NULL,
    held_objects  BIGINT NOT NULL
);
CREATE INDEX concerns_session ON concerns (session_id);
CREATE INDEX concerns_created ON concerns (created);

-- One row per stored object (participant file or manifest); deleted is set
-- when the retention sweeper removes it.
CREATE TABLE recording_objects (
    key              TEXT COLLATE "C" PRIMARY KEY,
    session_id       TEXT COLLATE "C" NOT NULL,
    participant_id   TEXT COLLATE "C" NOT NULL,
    participant_name TEXT COLLATE "C" NOT NULL,
    role             TEXT COLLATE "C" NOT NULL,
    size             BIGINT NOT NULL,
    version_id       TEXT COLLATE "C" NOT NULL,
    retain_until     TEXT COLLATE "C" NOT NULL,
    held             BIGINT NOT NULL,
    created          TEXT COLLATE "C" NOT NULL,
    deleted          TEXT COLLATE "C"
);
CREATE INDEX recording_objects_session ON recording_objects (session_id);
CREATE INDEX recording_objects_created ON recording_objects (created);
