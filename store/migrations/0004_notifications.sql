-- 0004_notifications: who was told of a safeguarding concern (the DSL and the
-- pupil's year lead), whether the e-mail went, and when they opened it.

CREATE TABLE concern_notifications (
    id              TEXT PRIMARY KEY,
    concern_id      TEXT NOT NULL,
    recipient_email TEXT NOT NULL, -- lower case; matches the signed-in account's e-mail
    recipient_name  TEXT NOT NULL, -- verified full name when the account is known, else ""
    reason          TEXT NOT NULL, -- why they were told, e.g. "safeguarding lead", "year lead (year-8)"
    created         TEXT NOT NULL,
    opened          TEXT,          -- first time the recipient opened the concern
    email_status    TEXT NOT NULL, -- "" (no SMTP configured), queued, retrying, sent, failed
    email_error     TEXT NOT NULL,
    email_at        TEXT,
    UNIQUE (concern_id, recipient_email)
);
CREATE INDEX concern_notifications_email ON concern_notifications (recipient_email, created);
