package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds each dialect's migrations: SQLite's in migrations/,
// Postgres's in migrations/postgres/, numbered alike (a change to the schema
// is one number with a file in each).
//
//go:embed migrations/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one embedded schema change, named NNNN_description.sql.
type migration struct {
	version int64
	name    string
	sql     string
}

// migrations returns the embedded migrations in dir, in version order.
func migrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number and '_'", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(migrationFiles, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the dialect's pending migrations in order, each in its own
// transaction together with its schema_migrations row (both SQLite and
// Postgres roll DDL back), so a reopen skips what is done and a failed
// migration leaves nothing half-applied.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	ms, err := migrations(d.migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := inTx(ctx, db, d.lockMigrations, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		)`)
		return err
	}); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}

	var latest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if n := len(ms); latest.Valid && (n == 0 || latest.Int64 > ms[n-1].version) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary knows; upgrade chaperone", latest.Int64)
	}

	for _, m := range ms {
		if err := applyMigration(ctx, db, d, m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, d dialect, m migration) error {
	return inTx(ctx, db, d.lockMigrations, func(tx *sql.Tx) error {
		// Checked under the lock (SQLite: the IMMEDIATE transaction's) so two
		// processes opening the same new database cannot both apply it.
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = $1`, m.version).Scan(&one)
		if err == nil {
			return nil // already applied
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, mustEncodeTime(time.Now()))
		return err
	})
}

// inTx runs f in a transaction that first runs lock (when not empty), and
// commits if f returns nil.
func inTx(ctx context.Context, db *sql.DB, lock string, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
