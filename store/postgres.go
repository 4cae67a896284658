package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresDialect: migrations in migrations/postgres/*.sql, with the same
// numbers as SQLite's. Text columns are COLLATE "C", so comparisons and
// ORDER BY are bytewise as in SQLite (stored times sort as text; the audit
// action prefix filter relies on it). Transactions run at READ COMMITTED:
// each statement sees what committed before it started, so a statement after
// a lock sees everything the lock's previous holder wrote.
var postgresDialect = dialect{
	name:       "postgres",
	migrations: "migrations/postgres",
	// An advisory lock (per database, released at commit) rather than a
	// table lock: the first migration's transaction has no table to lock,
	// and two CREATE TABLE IF NOT EXISTS at once can still collide.
	lockMigrations: `SELECT pg_advisory_xact_lock(` + strconv.FormatInt(migrationLockKey, 10) + `)`,
	// EXCLUSIVE blocks every other writer of audit (INSERT takes ROW
	// EXCLUSIVE) but not readers, until this transaction ends; whichever
	// gateway process holds it reads the head and appends the next row.
	lockAuditHead:  `LOCK TABLE audit IN EXCLUSIVE MODE`,
	groupsContain:  `users.groups::jsonb @> jsonb_build_array($1::text)`,
	isDuplicateKey: postgresDuplicateKey,
}

// migrationLockKey is the advisory lock key migrations hold: "chaperon" in
// ASCII, unlikely to be another application's key in a shared database.
const migrationLockKey int64 = 0x6368617065726f6e

// pgUniqueViolation is Postgres's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

func postgresDuplicateKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgUniqueViolation
}

// Pool limits for Postgres: several gateways share one server, whose
// max_connections (100 by default) bounds them all.
const (
	pgMaxOpenConns    = 16
	pgMaxIdleConns    = 4
	pgConnMaxIdleTime = 5 * time.Minute
)

// OpenPostgres connects to the Postgres database a libpq-style URL names
// (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…; pgx reads the PG*
// environment variables and ~/.pgpass for what it leaves out) and applies
// any pending migrations. The database must exist; the tables are created
// in the first schema of its search_path (a search_path=NAME parameter in the
// URL sets it). Errors never repeat the URL: it may hold a password.
func OpenPostgres(ctx context.Context, dsn string) (*SQL, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the URL, with the password removed only as
		// far as it can tell where the password is.
		return nil, errors.New("store: open postgres: cannot parse the database DSN (not shown: it may hold a password); " +
			"want postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require")
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "chaperone"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxIdleConns)
	db.SetConnMaxIdleTime(pgConnMaxIdleTime)
	return open(ctx, db, postgresDialect, postgresWhere(cfg))
}

// postgresWhere names a database for errors and logs: user, host, port and
// database, never the password.
func postgresWhere(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres %s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
