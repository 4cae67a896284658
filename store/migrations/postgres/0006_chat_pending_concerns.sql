-- 0006_chat_pending_concerns (Postgres): a session's chat, and pending
-- concerns with the pupils ticked. As SQLite's 0006, less its copy of old chat
-- out of the audit log: no Postgres database predates this migration (the
-- Postgres store starts with the whole set), so there is nothing to copy.

CREATE TABLE chat_messages (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  TEXT COLLATE "C" NOT NULL,
    msg_id      TEXT COLLATE "C" NOT NULL, -- the room's message ID (m1, m2, ...)
    time        TEXT COLLATE "C" NOT NULL,
    sender_sub  TEXT COLLATE "C" NOT NULL,
    sender_name TEXT COLLATE "C" NOT NULL, -- verified full name
    role        TEXT COLLATE "C" NOT NULL,
    text        TEXT COLLATE "C" NOT NULL,
    deleted_at  TEXT COLLATE "C",          -- set when staff delete it in the room; the text stays
    deleted_by  TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX chat_messages_session ON chat_messages (session_id, seq);

ALTER TABLE concerns ADD COLUMN state TEXT COLLATE "C" NOT NULL DEFAULT 'filed';
ALTER TABLE concerns ADD COLUMN pupils TEXT COLLATE "C" NOT NULL DEFAULT '[]'; -- JSON list of the subjects ticked
