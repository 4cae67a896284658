-- 0002_sessions: IdP groups on users and web sessions; live-lesson sessions
-- and approval delegations.
--
-- Times are TEXT in the fixed-width UTC layout of 0001; a time that is not set
-- (not decided, not revoked) is NULL. Lists are JSON arrays (or null for a nil
-- list).

ALTER TABLE users ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE web_sessions ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';

-- One row per occurrence; the occurrences of a weekly series share series_id.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    series_id      TEXT NOT NULL,
    title          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    host_sub       TEXT NOT NULL,
    host_name      TEXT NOT NULL,
    host_email     TEXT NOT NULL,
    co_staff       TEXT NOT NULL,
    roster_group   TEXT NOT NULL,
    roster_emails  TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    ends_at        TEXT NOT NULL,
    state          TEXT NOT NULL,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL,
    decided_by_sub TEXT NOT NULL,
    decided_by     TEXT NOT NULL,
    decided_at     TEXT,
    reason         TEXT NOT NULL
);
CREATE INDEX sessions_state ON sessions (state);
CREATE INDEX sessions_starts_at ON sessions (starts_at);
CREATE INDEX sessions_ends_at ON sessions (ends_at);
CREATE INDEX sessions_series_id ON sessions (series_id);
CREATE INDEX sessions_host_email ON sessions (host_email);

-- delegate_email is stored lower-case.
CREATE TABLE delegations (
    id             TEXT PRIMARY KEY,
    head_sub       TEXT NOT NULL,
    head_name      TEXT NOT NULL,
    delegate_email TEXT NOT NULL,
    delegate_name  TEXT NOT NULL,
    valid_until    TEXT NOT NULL,
    created        TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_by     TEXT NOT NULL
);
CREATE INDEX delegations_created ON delegations (created);
CREATE INDEX delegations_delegate_email ON delegations (delegate_email);
