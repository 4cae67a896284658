-- 0007_room_state: what a live room must remember across reconnections and
-- gateway restarts (R16): each participant's state (admitted, denied,
-- removed with reason, notice acknowledged, away since), the lobby lock, the
-- chat sequence, the lesson switches. One row per session, written whole
-- (a class is a few dozen people), so a reader never sees half a change.

CREATE TABLE room_state (
    session_id TEXT PRIMARY KEY,
    record     TEXT NOT NULL, -- JSON of store.RoomRecord
    saved      TEXT NOT NULL
);
