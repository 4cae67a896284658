// Package live is the live-room service layer: what happens to a session
// around its rooms, outside HTTP. It owns:
//
//   - the registry of the live rooms on this gateway (Rooms: Open, Running,
//     Close), each Room wiring a lobby.Room (the rules) to its sfu.Room (the
//     media) and to the session's recording; a room opens from the state an
//     earlier room of the session saved (R16), so a removal, a denial and
//     the lock survive a restart;
//   - each participant's media peer (Room.StartMedia, StopMedia), driven by
//     the signalling in package web through the Signal and Peer interfaces;
//   - a room's recording (roomrec.go): started when the rules ask, confirmed
//     to the room, held and restarted as new parts when it fails (never on
//     the SFU's read goroutine), finished and indexed when the room ends,
//     with its manifest's events read from the typed audit rows;
//   - the session's chat transcript, stored beside its recordings when the
//     room ends (transcript.go);
//   - part numbers: each (re)start of a participant's recording is a part
//     with its own object key, numbered by a durable store counter
//     (Recordings.NextPart), so no key is ever written twice;
//   - indexing: every stored part gets its manifest (recording.PartManifest,
//     beside the part in S3), its index row (store.PutRecordingObject) and a
//     recording.stored audit row, however the part ended (Recordings.Finish
//     for a clean end, the reconciler for everything else); indexing is
//     idempotent, so a retry never doubles a row or rewrites an object;
//   - the reconciler (Recordings.Run), every 30 s and at start-up: uploads
//     spool leftovers no live session on this gateway holds, indexes them,
//     retries indexing that failed (the spool file stays until a part is
//     indexed), and ends sessions left live whose room is gone (audited);
//   - the recordings' storage as the DSL's pages reach it (archive.go:
//     playback, start offsets, legal holds), its readiness
//     (Recordings.Ready) and the retention sweep (Recordings.Sweep);
//   - the rooms' metrics (Rooms.Collector).
//
// Safeguarding (package safeguard) is told when a room's recording is stored
// (RoomsConfig.Finished), so that a concern's hold covers it.
package live
