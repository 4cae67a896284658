-- 0020_roster (Postgres): class lists imported from the school's MIS; see
-- the SQLite file of the same name.

CREATE TABLE roster_people (
    sourced_id  TEXT COLLATE "C" PRIMARY KEY,
    email       TEXT COLLATE "C" NOT NULL,
    given_name  TEXT COLLATE "C" NOT NULL,
    family_name TEXT COLLATE "C" NOT NULL
);
CREATE INDEX roster_people_email ON roster_people (email);

CREATE TABLE roster_classes (
    sourced_id TEXT COLLATE "C" PRIMARY KEY,
    title      TEXT COLLATE "C" NOT NULL
);

CREATE TABLE roster_enrollments (
    class_id  TEXT COLLATE "C" NOT NULL REFERENCES roster_classes (sourced_id),
    person_id TEXT COLLATE "C" NOT NULL REFERENCES roster_people (sourced_id),
    role      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (class_id, person_id)
);
CREATE INDEX roster_enrollments_person ON roster_enrollments (person_id);

CREATE TABLE roster_state (
    id          BIGINT PRIMARY KEY,
    hash        TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,
    imported_at TEXT COLLATE "C" NOT NULL,
    imported_by TEXT COLLATE "C" NOT NULL
);

CREATE TABLE roster_pending (
    id         TEXT COLLATE "C" PRIMARY KEY,
    created    TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    base_hash  TEXT COLLATE "C" NOT NULL,
    body       TEXT COLLATE "C" NOT NULL
);
