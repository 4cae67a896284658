package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// t0 has a full nanosecond part, so round trips that lose precision fail.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// newTestStore opens a fresh database in the test's temporary directory.
func newTestStore(t testing.TB) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "chaperone.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
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

	_, err = Open(ctx, "postgres://chaperone:s3cret@db.example/chaperone")
	require.ErrorContains(t, err, "Postgres support is not built yet")
	require.NotContains(t, err.Error(), "s3cret")
	_, err = Open(ctx, "postgresql://db.example/chaperone")
	require.ErrorContains(t, err, "Postgres support is not built yet")

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
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chaperone.db")
	ms, err := migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)

	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.UpsertUser(ctx, User{Issuer: "iss", Subject: "sub", Name: "Ada", LastSeen: t0}))
	_, err = s.AppendAudit(ctx, AuditEntry{Time: t0, Action: "login.accepted"})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	for range 2 {
		s, err = OpenSQLite(ctx, path)
		require.NoError(t, err)
		var n int
		require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
		require.Equal(t, len(ms), n)
		u, err := s.GetUser(ctx, "iss", "sub")
		require.NoError(t, err)
		require.Equal(t, "Ada", u.Name)
		require.NoError(t, s.VerifyAudit(ctx))
		require.NoError(t, s.Close())
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chaperone.db")
	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	_, err = s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		9999, "9999_future.sql", mustEncodeTime(t0))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = OpenSQLite(ctx, path)
	require.ErrorContains(t, err, "newer than this binary")
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
