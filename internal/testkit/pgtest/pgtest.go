package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the Postgres server the tests use: a postgres:// URL of a
// database in which the role may create schemas. Unset, Postgres tests skip.
const EnvDSN = "CHAPERONE_TEST_POSTGRES"

// EnvRequire, when "1", turns a missing EnvDSN into a test failure instead of
// a skip. CI sets it so that the Postgres tests cannot silently skip.
const EnvRequire = "CHAPERONE_REQUIRE_POSTGRES"

// admin is the one connection pool to EnvDSN's database that creates and
// drops the tests' schemas.
var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// DSN returns a DSN of a new, empty schema (search_path set to it) in the
// database EnvDSN names; the schema is dropped when t ends. Every store
// opened on the DSN sees the same tables. Without EnvDSN it skips t, or
// fails it when EnvRequire is "1".
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		msg := "pgtest: no Postgres server: set " + EnvDSN + " to a postgres:// URL (scripts/pg-test.sh run go test … starts one)"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg + " (" + EnvRequire + "=1, so this is a failure)")
		}
		t.Skip(msg + " (set " + EnvRequire + "=1 to fail instead)")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s is not a postgres:// URL", EnvDSN) // the value may hold a password
	}
	db := adminDB(t, base)

	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "chaperone_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// adminDB opens the admin pool once per test binary.
func adminDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	admin.once.Do(func() {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			admin.err = err
			return
		}
		db := stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(4)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			admin.err = err
			return
		}
		admin.db = db
	})
	if admin.err != nil {
		// pgx's errors name user, host and database, not the password.
		msg := admin.err.Error()
		if u, err := url.Parse(dsn); err == nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
		t.Fatalf("pgtest: connect to %s: %s", EnvDSN, msg)
	}
	return admin.db
}
