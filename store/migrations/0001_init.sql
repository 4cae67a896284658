-- 0001_init: users, web sessions, pending sign-ins and the audit log.
--
-- Times are TEXT in a fixed-width UTC layout (2006-01-02T15:04:05.000000000Z),
-- so they sort and compare as strings. Lists (roles, amr) are JSON arrays.

CREATE TABLE users (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    roles      TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

-- id is the SHA-256 hex of the cookie value; the cookie itself is never stored.
CREATE TABLE web_sessions (
    id         TEXT PRIMARY KEY,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    roles      TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    auth_time  TEXT NOT NULL,
    amr        TEXT NOT NULL,
    created    TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    expires    TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);
CREATE INDEX web_sessions_user ON web_sessions (issuer, subject);

-- id is the SHA-256 hex of the OAuth2 state value.
CREATE TABLE login_states (
    id            TEXT PRIMARY KEY,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to     TEXT NOT NULL,
    created       TEXT NOT NULL
);
CREATE INDEX login_states_created ON login_states (created);

-- Append-only: each row carries the hash of the previous one. The code has no
-- UPDATE or DELETE path; the triggers below refuse them from anywhere else.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    time       TEXT NOT NULL,
    actor_sub  TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    detail     TEXT NOT NULL,
    remote_ip  TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_actor_sub ON audit (actor_sub);
CREATE INDEX audit_target ON audit (target);
CREATE INDEX audit_session_id ON audit (session_id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused');
END;
