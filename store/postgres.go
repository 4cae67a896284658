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
	// Both locks are transaction-level advisory locks (released at commit
	// or rollback) keyed by purpose and by schema, so two chaperone
	// deployments in one database under different schemas do not wait for
	// each other. Advisory rather than LOCK TABLE: the first migration has
	// no table to lock yet, and a role that may only INSERT into audit (an
	// append-only grant) may not take a table lock stronger than writers'.
	lockMigrations: advisoryLock(pgLockMigrations),
	// Every AppendAudit, in whichever gateway process, takes this before it
	// reads the chain head, and holds it until its row is committed.
	lockAuditHead:  advisoryLock(pgLockAuditHead),
	groupsContain:  `users.groups::jsonb @> jsonb_build_array($1::text)`,
	isDuplicateKey: postgresDuplicateKey,
}

// Advisory lock purposes (the first key of the two-key form): "migr" and
// "audi" in ASCII, unlikely to be another application's keys in a shared
// database.
const (
	pgLockMigrations = 0x6d696772
	pgLockAuditHead  = 0x61756469
)

// advisoryLock returns the statement that takes the transaction-level
// advisory lock for purpose in the current schema.
func advisoryLock(purpose int32) string {
	return `SELECT pg_advisory_xact_lock(` + strconv.Itoa(int(purpose)) + `, hashtext(current_schema()))`
}

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
