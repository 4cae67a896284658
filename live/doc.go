// Package live is the live-room service layer: what happens to a session
// around its rooms, outside HTTP. For now it owns the recording lifecycle
// outside the room itself:
//
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
//   - readiness of recording storage (Recordings.Ready) and the retention
//     sweep (Recordings.Sweep).
//
// The registry of rooms and the wiring of lobby.Room to sfu.Room still live
// in package web (issue 17 moves them here); web reaches recordings' storage
// through this package for indexing and the sweep.
package live
