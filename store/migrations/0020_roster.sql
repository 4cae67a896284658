-- 0020_roster: class lists imported from the school's MIS (OneRoster 1.2 or
-- School Data Sync CSV). An import replaces the whole list: roster_people,
-- roster_classes and roster_enrollments hold the last applied import, and
-- roster_state (one row) its content hash, so an import previewed against
-- one list cannot be applied over another. roster_pending keeps a previewed
-- import until it is applied (or abandoned).

CREATE TABLE roster_people (
    sourced_id  TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    given_name  TEXT NOT NULL,
    family_name TEXT NOT NULL
);
CREATE INDEX roster_people_email ON roster_people (email);

CREATE TABLE roster_classes (
    sourced_id TEXT PRIMARY KEY,
    title      TEXT NOT NULL
);

CREATE TABLE roster_enrollments (
    class_id  TEXT NOT NULL REFERENCES roster_classes (sourced_id),
    person_id TEXT NOT NULL REFERENCES roster_people (sourced_id),
    role      TEXT NOT NULL,
    PRIMARY KEY (class_id, person_id)
);
CREATE INDEX roster_enrollments_person ON roster_enrollments (person_id);

CREATE TABLE roster_state (
    id          INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL
);

CREATE TABLE roster_pending (
    id         TEXT PRIMARY KEY,
    created    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    base_hash  TEXT NOT NULL,
    body       TEXT NOT NULL
);
