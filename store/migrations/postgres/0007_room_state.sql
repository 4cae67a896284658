-- 0007_room_state (Postgres): what a live room must remember across
-- reconnections and gateway restarts (R16). As SQLite's 0007_room_state.sql:
-- one row per session, written whole, so a reader never sees half a change.

CREATE TABLE room_state (
    session_id TEXT COLLATE "C" PRIMARY KEY,
    record     TEXT COLLATE "C" NOT NULL, -- JSON of store.RoomRecord
    saved      TEXT COLLATE "C" NOT NULL
);
