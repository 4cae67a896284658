-- 0006_chat_pending_concerns: a session's chat lives here, not in the audit
-- log (which keeps only each message's ID, sender and SHA-256), and is
-- deleted when the retention sweeper deletes the session's stored
-- transcript. A concern raised in the room is stored at once as "pending"
-- (the DSL is told straight away) and completed by the concern form; the
-- pupils the member of staff ticked are kept with it.

CREATE TABLE chat_messages (
    seq         INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    msg_id      TEXT NOT NULL, -- the room's message ID (m1, m2, ...)
    time        TEXT NOT NULL,
    sender_sub  TEXT NOT NULL,
    sender_name TEXT NOT NULL, -- verified full name
    role        TEXT NOT NULL,
    text        TEXT NOT NULL,
    deleted_at  TEXT,          -- set when staff delete it in the room; the text stays
    deleted_by  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX chat_messages_session ON chat_messages (session_id, seq);

ALTER TABLE concerns ADD COLUMN state TEXT NOT NULL DEFAULT 'filed';
ALTER TABLE concerns ADD COLUMN pupils TEXT NOT NULL DEFAULT '[]'; -- JSON list of the subjects ticked

-- Chat written before this migration is copied from the audit log, so the
-- DSL still sees it (the old audit rows keep their text: the log is
-- hash-chained and cannot be rewritten).
INSERT INTO chat_messages (session_id, msg_id, time, sender_sub, sender_name, role, text, deleted_at, deleted_by)
SELECT session_id, target, time, actor_sub, actor_name, COALESCE(json_extract(detail, '$.role'), ''),
       COALESCE(json_extract(detail, '$.text'), ''), NULL, ''
FROM audit WHERE action = 'chat.message' AND json_extract(detail, '$.text') IS NOT NULL ORDER BY seq;
UPDATE chat_messages SET
    deleted_at = (SELECT a.time FROM audit a WHERE a.action = 'chat.deleted' AND a.session_id = chat_messages.session_id
                  AND a.target = chat_messages.msg_id AND a.time >= chat_messages.time ORDER BY a.seq LIMIT 1),
    deleted_by = COALESCE((SELECT a.actor_name FROM audit a WHERE a.action = 'chat.deleted' AND a.session_id = chat_messages.session_id
                  AND a.target = chat_messages.msg_id AND a.time >= chat_messages.time ORDER BY a.seq LIMIT 1), '');
