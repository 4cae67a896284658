// Package lobby owns the safeguarding rules of a live session: pure decision
// functions (who may be admitted, which media edges may carry packets, when
// recording must run) and the Room actor that applies them to a live session.
//
// It defines the small interfaces it needs from the SFU, the recorder and the
// audit log, and never imports the web layer.
package lobby
