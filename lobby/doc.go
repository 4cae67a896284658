// Package lobby owns the safeguarding rules of a live session: pure decision
// functions (who may be admitted, which media edges may carry packets, when
// recording must run) and the Room actor that applies them to a live session.
//
// The Room is the only writer of a room's state. It never waits for I/O: its
// audit rows are queued and written in order by a writer of its own
// (auditq.go), and its durable state (durable.go: participants' states,
// reasons and acknowledgements, the lock, the chat sequence, the lesson
// switches) is handed to a saver that writes the newest record with retries.
// A Room created again for a session (after a restart, R16) starts from that
// record; an admitted participant whose connection closes is reconnecting
// and comes back without admission within the rejoin grace.
//
// It defines the small interfaces it needs from the SFU, the recorder, the
// audit log and the store, and never imports the web layer.
package lobby
