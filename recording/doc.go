// Package recording writes participants' media to WebM files in a local
// spool, uploads them to S3-compatible storage under Object Lock retention
// (each object written once, its retention extended to run from its
// upload's completion), places and releases legal holds, sweeps expired
// recordings and serves playback with Range support.
//
// Each file of a session (a participant's camera and microphone, or their
// screen) is recorded in parts: every start is a part with its own key
// (PartKey), numbered by a counter the caller provides (Config.NextPart).
// A spool file's sidecar holds the part's identity, so Recover can upload
// what a crash left and return it for indexing. Indexing, manifests and
// when to recover are package live's; this package does what it is told.
package recording
