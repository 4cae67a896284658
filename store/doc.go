// Package store persists chaperone's state: users, web sessions, pending
// sign-ins, sessions and approvals, concerns, the recording index and part
// numbers, chat, live rooms' durable state (rooms.go), the class lists
// imported from the MIS with their pending previews (roster.go), and the
// append-only, hash-chained audit log.
//
// One type, SQL, implements Store on SQLite (pure Go, modernc.org/sqlite;
// the default) and on Postgres (pgx/v5 through database/sql; for several
// gateways sharing one database). Both run the same queries, written with $N
// placeholders; what differs (DDL, locks, error codes, JSON functions) is in
// a dialect: sqlite.go and postgres.go. Each dialect has its own embedded
// migrations, numbered alike (migrations/ and migrations/postgres/). A new
// method that both dialects can run as it is goes on SQL once; one that
// needs dialect-specific SQL takes it from a dialect field.
package store
