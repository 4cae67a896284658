-- 0002_sessions (Postgres): IdP groups on users and web sessions; live-lesson
-- sessions and approval delegations. As SQLite's 0002_sessions.sql.
--
-- A time that is not set (not decided, not revoked) is NULL. Lists are JSON
-- arrays (or null for a nil list).

ALTER TABLE users ADD COLUMN groups TEXT COLLATE "C" NOT NULL DEFAULT '[]';
ALTER TABLE web_sessions ADD COLUMN groups TEXT COLLATE "C" NOT NULL DEFAULT '[]';

-- One row per occurrence; the occurrences of a weekly series share series_id.
CREATE TABLE sessions (
    id             TEXT COLLATE "C" PRIMARY KEY,
    series_id      TEXT COLLATE "C" NOT NULL,
    title          TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL,
    host_sub       TEXT COLLATE "C" NOT NULL,
    host_name      TEXT COLLATE "C" NOT NULL,
    host_email     TEXT COLLATE "C" NOT NULL,
    co_staff       TEXT COLLATE "C" NOT NULL,
    roster_group   TEXT COLLATE "C" NOT NULL,
    roster_emails  TEXT COLLATE "C" NOT NULL,
    starts_at      TEXT COLLATE "C" NOT NULL,
    ends_at        TEXT COLLATE "C" NOT NULL,
    state          TEXT COLLATE "C" NOT NULL,
    created        TEXT COLLATE "C" NOT NULL,
    updated        TEXT COLLATE "C" NOT NULL,
    decided_by_sub TEXT COLLATE "C" NOT NULL,
    decided_by     TEXT COLLATE "C" NOT NULL,
    decided_at     TEXT COLLATE "C",
    reason         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX sessions_state ON sessions (state);
CREATE INDEX sessions_starts_at ON sessions (starts_at);
CREATE INDEX sessions_ends_at ON sessions (ends_at);
CREATE INDEX sessions_series_id ON sessions (series_id);
CREATE INDEX sessions_host_email ON sessions (host_email);

-- delegate_email is stored lower-case.
CREATE TABLE delegations (
    id             TEXT COLLATE "C" PRIMARY KEY,
    head_sub       TEXT COLLATE "C" NOT NULL,
    head_name      TEXT COLLATE "C" NOT NULL,
    delegate_email TEXT COLLATE "C" NOT NULL,
    delegate_name  TEXT COLLATE "C" NOT NULL,
    valid_until    TEXT COLLATE "C" NOT NULL,
    created        TEXT COLLATE "C" NOT NULL,
    revoked_at     TEXT COLLATE "C",
    revoked_by     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX delegations_created ON delegations (created);
CREATE INDEX delegations_delegate_email ON delegations (delegate_email);
