// Package web serves chaperone's pages (html/template with embedded CSS, no
// JavaScript build step), its JSON API and the rooms' WebSocket signalling.
// It is HTTP only: handlers check who is asking, then call auth, store,
// lobby's rules and roster, and reach the live rooms, the recordings' storage and
// safeguarding through the small interfaces of services.go (Rooms, Archive,
// Concerns), which packages live and safeguard implement. It imports
// neither sfu nor recording (cmd/chaperone's TestPackageLayering checks).
//
// Who owns what:
//   - web: the routes, the pages, the forms and their errors, the DSL's
//     access checks and their audit rows, WebSocket framing, limits and the
//     signalling messages (ws.go);
//   - live: which rooms run here, what each room's media and recording do,
//     what happens when a room ends or the gateway restarts;
//   - safeguard: what a concern does (hold, route, notify, who may read it).
//   - roster: reading, comparing and applying the class lists imported from
//     the MIS (the IT admin's Class lists page, roster.go, calls it).
package web
