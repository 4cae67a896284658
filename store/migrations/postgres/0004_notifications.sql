-- 0004_notifications (Postgres): who was told of a safeguarding concern (the
-- DSL and the pupil's year lead), whether the e-mail went, and when they
-- opened it. As SQLite's 0004_notifications.sql.

CREATE TABLE concern_notifications (
    id              TEXT COLLATE "C" PRIMARY KEY,
    concern_id      TEXT COLLATE "C" NOT NULL,
    recipient_email TEXT COLLATE "C" NOT NULL, -- lower case; matches the signed-in account's e-mail
    recipient_name  TEXT COLLATE "C" NOT NULL, -- verified full name when the account is known, else ""
    reason          TEXT COLLATE "C" NOT NULL, -- why they were told, e.g. "safeguarding lead", "year lead (year-8)"
    created         TEXT COLLATE "C" NOT NULL,
    opened          TEXT COLLATE "C",          -- first time the recipient opened the concern
    email_status    TEXT COLLATE "C" NOT NULL, -- "" (no SMTP configured), queued, retrying, sent, failed
    email_error     TEXT COLLATE "C" NOT NULL,
    email_at        TEXT COLLATE "C",
    UNIQUE (concern_id, recipient_email)
);
CREATE INDEX concern_notifications_email ON concern_notifications (recipient_email, created);
