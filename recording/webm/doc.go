// Package webm writes one participant's media in a session, received as RTP
// (Opus audio and VP8 video), into a single WebM file that is streamed to
// disk, fsynced at least once a second and readable while it grows.
//
// The file uses the live-streaming layout: the Segment and every Cluster
// have unknown size, so an uploader may ship the file up to
// [Writer.SyncedBytes] while the session runs. Bytes once written never
// change, except that Close fills in a Duration and a SeekHead reserved in
// the first [Writer.HeaderSize] bytes.
package webm
