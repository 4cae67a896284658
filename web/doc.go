// Package web serves chaperone's pages (html/template with embedded CSS, no
// JavaScript build step), its JSON API and the rooms' WebSocket signalling.
// Handlers are thin: they check who is asking, then call auth, store, lobby
// and live.
//
// Still here, and moving to package live (issue 17): the registry of live
// rooms (rooms.go), the wiring of each lobby.Room to its sfu.Room and
// recording (recording.go), and the safeguarding concerns' hold and
// notification (concern*.go).
package web
