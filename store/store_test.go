package store

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit/pgtest"
)

// t0 has a full nanosecond part, so round trips that lose precision fail.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// backends are the databases the store suite runs on. Postgres needs a
// server: see pgtest.DSN (without one its subtests skip, or fail in CI).
var backends = []string{"sqlite", "postgres"}

// testDSN returns the DSN of a new, empty database of backend, removed when t
// ends: a file in t's temporary directory, or a Postgres schema of its own.
func testDSN(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case "sqlite":
		return "sqlite:" + filepath.Join(t.TempDir(), "chaperone.db")
	case "postgres":
		return pgtest.DSN(t)
	}
	t.Fatalf("unknown backend %q", backend)
	return ""
}

// openTest opens the store at dsn and closes it when t ends.
func openTest(t testing.TB, dsn string) *SQL {
	t.Helper()
	st, err := Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st.(*SQL)
}

// forEachDSN runs f as a parallel subtest per backend, named for it, with
// the DSN of a fresh database, for tests that open it more than once.
func forEachDSN(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			f(t, testDSN(t, b))
		})
	}
}

// forEachBackend runs f as a parallel subtest per backend with a fresh,
// open store.
func forEachBackend(t *testing.T, f func(t *testing.T, s *SQL)) {
	t.Helper()
	forEachDSN(t, func(t *testing.T, dsn string) { f(t, openTest(t, dsn)) })
}

// dropTrigger removes one of the audit table's append-only triggers, as
// someone with write access to the database could.
func dropTrigger(t testing.TB, s *SQL, name string) {
	t.Helper()
	q := `DROP TRIGGER ` + name
	if s.Dialect() == "postgres" {
		q += ` ON audit`
	}
	_, err := s.DB().ExecContext(context.Background(), q)
	require.NoError(t, err)
}

func TestOpenSQLiteCreatesDirAndPrivateFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "chaperone.db")
	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Ping(ctx))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	var mode string
	require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
	require.Equal(t, "wal", mode)
	var fk, busy, sync int
	require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
	require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy))
	require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync))
	require.Equal(t, 1, fk)
	require.Equal(t, 5000, busy)
	require.Equal(t, 1, sync) // NORMAL
}

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	st, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "x", "c.db"))
	require.NoError(t, err)
	require.NoError(t, st.Ping(ctx))
	require.NoError(t, st.Close())

	// A Postgres DSN is taken, and a password in it is never repeated:
	// neither when it does not parse nor when the server is not there.
	_, err = Open(ctx, "postgres://chaperone:s3cret@db.example:notaport/chaperone")
	require.ErrorContains(t, err, "cannot parse the database DSN")
	require.NotContains(t, err.Error(), "s3cret")
	_, err = Open(ctx, "postgres://chaperone:s3cr%ZZet@127.0.0.1:1/chaperone")
	require.ErrorContains(t, err, "cannot parse the database DSN")
	require.NotContains(t, err.Error(), "s3cr")
	port := closedPort(t)
	_, err = Open(ctx, "postgresql://chaperone:s3cret@127.0.0.1:"+port+"/chaperone?connect_timeout=5")
	require.ErrorContains(t, err, "open postgres chaperone@127.0.0.1:"+port+"/chaperone")
	require.NotContains(t, err.Error(), "s3cret")

	_, err = Open(ctx, "mysql://root:pw@localhost/x")
	require.ErrorContains(t, err, `unsupported database DSN scheme "mysql"`)
	require.NotContains(t, err.Error(), "pw")
	_, err = Open(ctx, "/var/lib/chaperone.db")
	require.ErrorContains(t, err, "no scheme")
	_, err = Open(ctx, "sqlite:")
	require.ErrorContains(t, err, "empty path")
}

func TestOpenMemoryUsableConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := Open(ctx, "sqlite::memory:")
	require.NoError(t, err)
	defer st.Close()

	// One connection holds the database; concurrent callers queue for it
	// and all see the same tables.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, err := st.AppendAudit(ctx, AuditEntry{Time: t0, Action: "test.memory"})
			require.NoError(t, err)
			require.NoError(t, st.UpsertUser(ctx, User{Issuer: "i", Subject: string(rune('a' + i)), LastSeen: t0}))
		})
	}
	wg.Wait()
	rs, err := st.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Len(t, rs, 10)
	require.NoError(t, st.VerifyAudit(ctx))

	// A second in-memory store is a separate database.
	other, err := Open(ctx, "sqlite::memory:")
	require.NoError(t, err)
	defer other.Close()
	rs, err = other.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, rs)
}

func TestMigrationsIdempotentAcrossReopen(t *testing.T) {
	t.Parallel()
	forEachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := Open(ctx, dsn)
		require.NoError(t, err)
		s := st.(*SQL)
		ms, err := migrations(s.d.migrations)
		require.NoError(t, err)
		require.NotEmpty(t, ms)
		require.NoError(t, s.UpsertUser(ctx, User{Issuer: "iss", Subject: "sub", Name: "Ada", LastSeen: t0}))
		_, err = s.AppendAudit(ctx, AuditEntry{Time: t0, Action: "login.accepted"})
		require.NoError(t, err)
		require.NoError(t, s.Close())

		for range 2 {
			s := openTest(t, dsn)
			var n int
			require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
			require.Equal(t, len(ms), n)
			u, err := s.GetUser(ctx, "iss", "sub")
			require.NoError(t, err)
			require.Equal(t, "Ada", u.Name)
			require.NoError(t, s.VerifyAudit(ctx))
			require.NoError(t, s.Close())
		}
	})
}

// TestMigrationsConcurrentOpen: gateways starting at once on a new database
// apply each migration once between them.
func TestMigrationsConcurrentOpen(t *testing.T) {
	t.Parallel()
	forEachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				st, err := Open(ctx, dsn)
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				st.Close()
			})
		}
		wg.Wait()
		s := openTest(t, dsn)
		ms, err := migrations(s.d.migrations)
		require.NoError(t, err)
		var n, distinct int
		require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct))
		require.Equal(t, len(ms), n)
		require.Equal(t, len(ms), distinct)
	})
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	t.Parallel()
	forEachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openTest(t, dsn)
		_, err := s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			9999, "9999_future.sql", mustEncodeTime(t0))
		require.NoError(t, err)

		_, err = Open(ctx, dsn)
		require.ErrorContains(t, err, "newer than this binary")
	})
}

// TestMigrationsSameInEveryDialect: each schema change is one number with a
// file of the same name for every database, so neither falls behind.
func TestMigrationsSameInEveryDialect(t *testing.T) {
	t.Parallel()
	names := func(d dialect) []string {
		ms, err := migrations(d.migrations)
		require.NoError(t, err)
		var out []string
		for _, m := range ms {
			out = append(out, m.name)
		}
		return out
	}
	sqlite := names(sqliteDialect)
	require.NotEmpty(t, sqlite)
	require.Equal(t, sqlite, names(postgresDialect), "migrations/ and migrations/postgres/ must hold the same file names")
}

func TestTimeEncodingRoundTripsAndSorts(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	times := []time.Time{
		{}, // zero time: year 1
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		t0,
		t0.In(paris),
		time.Now(), // with a monotonic reading
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for _, tm := range times {
		s, err := encodeTime(tm)
		require.NoError(t, err)
		got, err := decodeTime(s)
		require.NoError(t, err)
		require.Equal(t, normalise(tm), got)
		require.True(t, tm.Equal(got))
	}

	ascending := []time.Time{
		{},
		time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		t0.Add(-time.Nanosecond),
		t0,
		t0.Add(time.Nanosecond),
		t0.Add(time.Second),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i := 1; i < len(ascending); i++ {
		require.Less(t, mustEncodeTime(ascending[i-1]), mustEncodeTime(ascending[i]), "text order must be time order")
	}
	_, err = encodeTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, err)
}

// closedPort returns a loopback TCP port that nothing listens on (it was
// free a moment ago).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return strconv.Itoa(port)
}

// TestTextOrderIsBytewise: text compares and sorts by bytes, as SQLite does,
// on every backend, whatever the Postgres database's collation (CI's test
// database has an ICU en-US one, under which "adam" sorts before "Zoe").
func TestTextOrderIsBytewise(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		for i, name := range []string{"adam Bell", "Émile Dubois", "Zoe Clark"} {
			require.NoError(t, s.UpsertUser(ctx, User{Issuer: "i", Subject: strconv.Itoa(i), Name: name, Roles: []string{"dsl"}, LastSeen: t0}))
		}
		us, err := s.ListUsersWithRole(ctx, "dsl")
		require.NoError(t, err)
		var names []string
		for _, u := range us {
			names = append(names, u.Name)
		}
		require.Equal(t, []string{"Zoe Clark", "adam Bell", "Émile Dubois"}, names)

		for _, a := range []string{"login.b", "LOGIN.a", "login-c", "login.A", "loginz"} {
			_, err := s.AppendAudit(ctx, AuditEntry{Time: t0, Action: audit.Action(a)})
			require.NoError(t, err)
		}
		rs, err := s.ListAudit(ctx, AuditFilter{Action: "login."})
		require.NoError(t, err)
		var actions []string
		for _, r := range rs {
			actions = append(actions, string(r.Action))
		}
		require.Equal(t, []string{"login.A", "login.b"}, actions)
	})
}

// TestOpenPostgresRefusedSignIn: a server that refuses the password is an
// error naming user, host and database, never the password.
func TestOpenPostgresRefusedSignIn(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.DSN(t))
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), "wrong-s3cret")
	_, err = Open(context.Background(), u.String())
	require.Error(t, err)
	require.ErrorContains(t, err, "open postgres "+u.User.Username()+"@"+u.Hostname())
	require.NotContains(t, err.Error(), "wrong-s3cret")
}

// TestSchemasMatch: once migrated, both databases have the same tables with
// the same columns, so a migration ported to one dialect and not (or not
// wholly) to the other is caught here.
func TestSchemasMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	columns := func(s *SQL) []string {
		q := `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
		if s.Dialect() == "postgres" {
			q = `SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = current_schema()`
		}
		rows, err := s.DB().QueryContext(ctx, q)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var c string
			require.NoError(t, rows.Scan(&c))
			out = append(out, c)
		}
		require.NoError(t, rows.Err())
		slices.Sort(out)
		return out
	}
	sqlite := columns(openTest(t, testDSN(t, "sqlite")))
	require.Contains(t, sqlite, "audit.hash")
	require.Equal(t, sqlite, columns(openTest(t, testDSN(t, "postgres"))))
}
