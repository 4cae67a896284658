package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// SQL is a Store on a SQL database: SQLite (OpenSQLite) or Postgres
// (OpenPostgres). The queries, written with $N placeholders, and the Go around
// them are shared; what differs between the two is in its dialect. It is safe
// for concurrent use, by several processes sharing one database too.
type SQL struct {
	db *sql.DB
	d  dialect

	// auditMu serialises AppendAudit within this process, so its callers
	// queue here rather than for the database's lock; the dialect's
	// lockAuditHead, inside the writing transaction, is what keeps the hash
	// chain one chain across processes.
	auditMu sync.Mutex
}

// SQLite is the name SQL had when SQLite was its only database.
//
// Deprecated: use SQL.
type SQLite = SQL

var _ Store = (*SQL)(nil)

// dialect is what differs between the databases SQL runs on. Most of the
// SQL is the same on both: upserts (INSERT … ON CONFLICT … DO UPDATE …
// WHERE …), RETURNING, and conditional UPDATEs as compare-and-set. A lease
// (TryLease/RenewLease for room ownership) is one such upsert, "take it if
// it is free, expired or mine", and needs no dialect field.
type dialect struct {
	name string // "sqlite" or "postgres"
	// migrations is the directory of migrationFiles with this database's
	// migrations; every dialect has the same migration numbers.
	migrations string
	// lockMigrations, run first in each migration's transaction, keeps two
	// processes opening a new database from applying a migration twice.
	lockMigrations string
	// lockAuditHead, run first in AppendAudit's transaction, makes it the
	// only writer of the audit log until it commits, so the chain head it
	// reads is still the head when it appends.
	lockAuditHead string
	// groupsContain is an SQL condition: users.groups (a JSON list) holds $1.
	groupsContain string
	// isDuplicateKey reports whether err is the database refusing a row
	// whose primary key or unique columns are taken.
	isDuplicateKey func(error) bool
}

// Open opens the store a DSN names: "sqlite:PATH" for a SQLite file (created
// with its parent directory if missing), "sqlite::memory:" for a private
// in-memory database, or "postgres://…" / "postgresql://…" for a Postgres
// database (see OpenPostgres).
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn)
	default:
		scheme, _, ok := strings.Cut(dsn, ":")
		if !ok || scheme == "" {
			return nil, errors.New(`store: database DSN has no scheme: want "sqlite:PATH" or "postgres://…"`)
		}
		return nil, fmt.Errorf(`store: unsupported database DSN scheme %q: want "sqlite:PATH" or "postgres://…"`, scheme)
	}
}

// open pings db and brings its schema up to date; on failure it closes db.
// where names the database in errors, without secrets.
func open(ctx context.Context, db *sql.DB, d dialect, where string) (*SQL, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", where, err)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", where, err)
	}
	return &SQL{db: db, d: d}, nil
}

// DB returns the underlying database handle. It is for tests and
// administrative tools; the gateway itself goes through the Store methods.
func (s *SQL) DB() *sql.DB { return s.db }

// Dialect names the database: "sqlite" or "postgres".
func (s *SQL) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *SQL) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *SQL) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
