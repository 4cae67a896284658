package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is a Store backed by one SQLite database file. It is safe for
// concurrent use.
type SQLite struct {
	db *sql.DB

	// auditMu serialises AppendAudit so the hash chain is read and extended
	// by one writer at a time within this process; the IMMEDIATE transaction
	// around it covers other processes sharing the file.
	auditMu sync.Mutex
}

var _ Store = (*SQLite)(nil)

// memoryPath is the path (and the part after "sqlite:" in a DSN) that selects a
// private in-memory database, for tests.
const memoryPath = ":memory:"

// connParams are applied to every pooled connection. _txlock=immediate makes
// BEGIN take the write lock at once, so a transaction that reads and then
// writes waits under busy_timeout instead of failing with SQLITE_BUSY when
// another writer got in between.
const connParams = "_txlock=immediate" +
	"&_pragma=busy_timeout(5000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)"

// Open opens the store a DSN names: "sqlite:PATH" for a SQLite file (created
// with its parent directory if missing), or "sqlite::memory:" for a private
// in-memory database. Postgres DSNs are recognised but not supported yet.
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		// The DSN is not echoed: it may hold a password.
		return nil, errors.New("store: Postgres support is not built yet; use a sqlite:PATH DSN for now")
	default:
		scheme, _, ok := strings.Cut(dsn, ":")
		if !ok || scheme == "" {
			return nil, errors.New(`store: database DSN has no scheme: want "sqlite:PATH"`)
		}
		return nil, fmt.Errorf(`store: unsupported database DSN scheme %q: want "sqlite:PATH"`, scheme)
	}
}

// OpenSQLite opens (creating if needed) the SQLite database at path and applies
// any pending migrations. A path of ":memory:" opens a private in-memory
// database held by a single connection.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: open sqlite: empty path")
	}
	memory := path == memoryPath
	if !memory {
		// The driver reads everything after '?' as parameters.
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("store: open sqlite %s: path must not contain '?' or '#'", path)
		}
		if err := createFile(path); err != nil {
			return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
		}
	}

	db, err := sql.Open("sqlite", path+"?"+connParams)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if memory {
		// Each connection to ":memory:" is a separate database, so the pool
		// must hold exactly one, and never retire it.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	}
	s := &SQLite{db: db}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return s, nil
}

// createFile makes path's parent directory and, if path does not exist yet, an
// empty file readable by the owner only: the database holds personal data.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// DB returns the underlying database handle. It is for tests and
// administrative tools; the gateway itself goes through the Store methods.
func (s *SQLite) DB() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
