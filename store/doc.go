// Package store persists chaperone's state: users, web sessions, pending
// sign-ins, sessions and approvals, concerns, the recording index and part
// numbers, chat, live rooms' durable state (rooms.go), the class lists imported
// from the MIS with their pending previews (roster.go), and the append-only,
// hash-chained audit log. SQLite (pure Go,
// modernc.org/sqlite) is the default; the Store interface lets a Postgres
// implementation slot in for multi-node deployments. Migrations are embedded
// and versioned.
package store
