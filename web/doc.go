// Package web serves chaperone's pages (html/template with embedded CSS, no
// JavaScript build step), its JSON API and, later, the WebSocket signalling.
// Handlers are thin: they check who is asking, then call auth, store and
// lobby.
package web
