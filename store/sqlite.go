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
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect: migrations in migrations/*.sql. Every transaction is BEGIN
// IMMEDIATE (connParams), which takes the database's one write lock at once,
// so migrations and AppendAudit need no lock of their own.
var sqliteDialect = dialect{
	name:           "sqlite",
	migrations:     "migrations",
	groupsContain:  `EXISTS (SELECT 1 FROM json_each(users.groups) AS g WHERE g.value = $1)`,
	isDuplicateKey: sqliteDuplicateKey,
}

// sqliteDuplicateKey reports whether err is SQLite refusing a row whose
// primary key or unique column is already taken.
func sqliteDuplicateKey(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

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

// OpenSQLite opens (creating if needed) the SQLite database at path and applies
// any pending migrations. A path of ":memory:" opens a private in-memory
// database held by a single connection.
func OpenSQLite(ctx context.Context, path string) (*SQL, error) {
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
	if err := pingSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return open(ctx, db, sqliteDialect, "sqlite "+path)
}

// pingSQLite makes the first connection. A new database's first
// connections switch it to WAL, which needs the file to themselves for a
// moment: another process doing the same then gets SQLITE_BUSY at once,
// without waiting under busy_timeout. So a busy first connection is tried
// again, every 50 ms for up to 5 s.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	for attempt := 0; ; attempt++ {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || attempt >= 100 || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
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
