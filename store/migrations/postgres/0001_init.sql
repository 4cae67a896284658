-- 0001_init (Postgres): users, web sessions, pending sign-ins and the audit log.
--
-- The same tables as SQLite's 0001_init.sql. Times are TEXT in a fixed-width
-- UTC layout (2006-01-02T15:04:05.000000000Z), so they sort and compare as
-- strings; every text column is COLLATE "C" so that comparison and ORDER BY
-- are bytewise, as in SQLite, whatever the database's default collation.
-- Lists (roles, amr) are JSON arrays. Integers are BIGINT (SQLite's INTEGER
-- is 64-bit).

CREATE TABLE users (
    issuer     TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    email      TEXT COLLATE "C" NOT NULL,
    roles      TEXT COLLATE "C" NOT NULL,
    first_seen TEXT COLLATE "C" NOT NULL,
    last_seen  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (issuer, subject)
);

-- id is the SHA-256 hex of the cookie value; the cookie itself is never stored.
CREATE TABLE web_sessions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    issuer     TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    email      TEXT COLLATE "C" NOT NULL,
    roles      TEXT COLLATE "C" NOT NULL,
    csrf_token TEXT COLLATE "C" NOT NULL,
    auth_time  TEXT COLLATE "C" NOT NULL,
    amr        TEXT COLLATE "C" NOT NULL,
    created    TEXT COLLATE "C" NOT NULL,
    last_seen  TEXT COLLATE "C" NOT NULL,
    expires    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);
CREATE INDEX web_sessions_user ON web_sessions (issuer, subject);

-- id is the SHA-256 hex of the OAuth2 state value.
CREATE TABLE login_states (
    id            TEXT COLLATE "C" PRIMARY KEY,
    nonce         TEXT COLLATE "C" NOT NULL,
    pkce_verifier TEXT COLLATE "C" NOT NULL,
    return_to     TEXT COLLATE "C" NOT NULL,
    created       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX login_states_created ON login_states (created);

-- Append-only: each row carries the hash of the previous one. The code has no
-- UPDATE or DELETE path; the triggers below refuse them (and TRUNCATE) from
-- anywhere else. seq is given by AppendAudit under an advisory lock, not by a
-- sequence: a sequence would leave gaps when a transaction rolls back.
CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY,
    time       TEXT COLLATE "C" NOT NULL,
    actor_sub  TEXT COLLATE "C" NOT NULL,
    actor_name TEXT COLLATE "C" NOT NULL,
    action     TEXT COLLATE "C" NOT NULL,
    target     TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    detail     TEXT COLLATE "C" NOT NULL,
    remote_ip  TEXT COLLATE "C" NOT NULL,
    prev_hash  TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_actor_sub ON audit (actor_sub);
CREATE INDEX audit_target ON audit (target);
CREATE INDEX audit_session_id ON audit (session_id);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
