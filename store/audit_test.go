package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
)

func TestAuditAppendChains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		e := AuditEntry{
			Time: t0, ActorSub: "sub-1", ActorName: "Ada Lovelace", Action: "login.accepted",
			Target: "sub-1", SessionID: "", Detail: `{"role":"teacher"}`, RemoteIP: "192.0.2.7",
		}
		r1, err := s.AppendAudit(ctx, e)
		require.NoError(t, err)
		require.EqualValues(t, 1, r1.Seq)
		require.Equal(t, GenesisHash, r1.PrevHash)
		require.Len(t, r1.Hash, 64)
		require.Equal(t, e, r1.AuditEntry)

		r2, err := s.AppendAudit(ctx, AuditEntry{Action: "session.approved"}) // zero time: now
		require.NoError(t, err)
		require.EqualValues(t, 2, r2.Seq)
		require.Equal(t, r1.Hash, r2.PrevHash)
		require.WithinDuration(t, time.Now(), r2.Time, time.Minute)

		// What AppendAudit returns is what ListAudit reads back.
		rs, err := s.ListAudit(ctx, AuditFilter{})
		require.NoError(t, err)
		require.Equal(t, []AuditRecord{r2, r1}, rs)
		require.NoError(t, s.VerifyAudit(ctx))

		_, err = s.AppendAudit(ctx, AuditEntry{Action: "x.y", Detail: "{not json"})
		require.ErrorContains(t, err, "not valid JSON")
		_, err = s.AppendAudit(ctx, AuditEntry{})
		require.ErrorContains(t, err, "empty action")
	})
}

func TestAuditConcurrentAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		const n = 100
		seqs := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := s.AppendAudit(ctx, AuditEntry{Time: t0.Add(time.Duration(i)), Action: "test.append", Target: fmt.Sprint(i)})
				if err != nil {
					t.Errorf("append %d: %v", i, err)
					return
				}
				seqs[i] = r.Seq
			})
		}
		wg.Wait()
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for i, seq := range seqs {
			require.EqualValues(t, i+1, seq)
		}
		require.NoError(t, s.VerifyAudit(ctx))
		rs, err := s.ListAudit(ctx, AuditFilter{})
		require.NoError(t, err)
		require.Len(t, rs, n)
	})
}

// TestAuditConcurrentAppendsFromSeveralStores: stores opened on one database
// stand in for several gateway processes. Each has its own connection pool
// and its own mutex, so only the lock taken inside the writing transaction
// (SQLite: BEGIN IMMEDIATE; Postgres: LOCK TABLE audit) keeps the chain one
// chain: seqs 1..n with no gap or repeat, and VerifyAudit passes.
func TestAuditConcurrentAppendsFromSeveralStores(t *testing.T) {
	t.Parallel()
	const stores, perStore = 4, 200
	forEachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		var wg sync.WaitGroup
		seqs := make([][]int64, stores)
		start := time.Now()
		for g := range stores {
			st := openTest(t, dsn)
			wg.Go(func() {
				for i := range perStore {
					r, err := st.AppendAudit(ctx, AuditEntry{Time: t0.Add(time.Duration(i)), Action: "test.several",
						ActorSub: fmt.Sprint("store-", g), Target: fmt.Sprint(i)})
					if err != nil {
						t.Errorf("store %d, append %d: %v", g, i, err)
						return
					}
					seqs[g] = append(seqs[g], r.Seq)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		t.Logf("%d stores × %d appends: %v (%.0f appends/s)", stores, perStore, elapsed.Round(time.Millisecond),
			float64(stores*perStore)/elapsed.Seconds())

		var all []int64
		for _, ss := range seqs {
			require.True(t, sort.SliceIsSorted(ss, func(i, j int) bool { return ss[i] < ss[j] }), "one store's seqs only grow")
			all = append(all, ss...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		require.Len(t, all, stores*perStore)
		for i, seq := range all {
			require.EqualValues(t, i+1, seq, "seqs are contiguous")
		}
		s := openTest(t, dsn)
		require.NoError(t, s.VerifyAudit(ctx))
		rs, err := s.ListAudit(ctx, AuditFilter{Action: "test.several"})
		require.NoError(t, err)
		require.Len(t, rs, stores*perStore)
	})
}

func TestListAuditFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		entries := []AuditEntry{
			{Time: t0, ActorSub: "ada", Action: "login.accepted", Target: "ada"},
			{Time: t0.Add(1 * time.Minute), ActorSub: "bob", Action: "login.refused", Target: "bob"},
			{Time: t0.Add(2 * time.Minute), ActorSub: "ada", Action: "session.approved", Target: "lesson-1", SessionID: "lesson-1"},
			{Time: t0.Add(3 * time.Minute), ActorSub: "ada", Action: "loginx.other", Target: "lesson-1"},
			{Time: t0.Add(4 * time.Minute), ActorSub: "", Action: "LOGIN.upper", SessionID: "lesson-1"},
			{Time: t0.Add(5 * time.Minute), ActorSub: "bob", Action: "login", Target: "x%_"},
		}
		for _, e := range entries {
			_, err := s.AppendAudit(ctx, e)
			require.NoError(t, err)
		}

		seqs := func(f AuditFilter) []int64 {
			t.Helper()
			rs, err := s.ListAudit(ctx, f)
			require.NoError(t, err)
			out := []int64{}
			for _, r := range rs {
				out = append(out, r.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    AuditFilter
			want []int64
		}{
			{"all newest first", AuditFilter{}, []int64{6, 5, 4, 3, 2, 1}},
			{"exact action", AuditFilter{Action: "login"}, []int64{6}},
			{"exact action, no prefix match", AuditFilter{Action: "login.accept"}, []int64{}},
			{"prefix, case-sensitive, dot-bounded", AuditFilter{Action: "login."}, []int64{2, 1}},
			{"actor", AuditFilter{ActorSub: "ada"}, []int64{4, 3, 1}},
			{"target", AuditFilter{Target: "lesson-1"}, []int64{4, 3}},
			{"target with LIKE wildcards is literal", AuditFilter{Target: "x%_"}, []int64{6}},
			{"session", AuditFilter{SessionID: "lesson-1"}, []int64{5, 3}},
			{"since inclusive", AuditFilter{Since: t0.Add(4 * time.Minute)}, []int64{6, 5}},
			{"until exclusive", AuditFilter{Until: t0.Add(2 * time.Minute)}, []int64{2, 1}},
			{"window", AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []int64{3, 2}},
			{"limit", AuditFilter{Limit: 2}, []int64{6, 5}},
			{"before, paging back", AuditFilter{Before: 5, Limit: 2}, []int64{4, 3}},
			{"before with a filter", AuditFilter{ActorSub: "ada", Before: 3}, []int64{1}},
			{"combined", AuditFilter{ActorSub: "ada", Target: "lesson-1", Limit: 1}, []int64{4}},
			{"since in another zone", AuditFilter{Since: t0.Add(5 * time.Minute).In(time.FixedZone("X", -5*3600))}, []int64{6}},
		} {
			require.Equal(t, tc.want, seqs(tc.f), tc.name)
		}
	})
}

func appendN(t *testing.T, s *SQL, n int) {
	t.Helper()
	for i := range n {
		_, err := s.AppendAudit(context.Background(), AuditEntry{
			Time: t0.Add(time.Duration(i) * time.Second), ActorSub: "ada", Action: "test.row", Target: fmt.Sprint(i),
		})
		require.NoError(t, err)
	}
}

func TestAuditTriggersRefuseUpdateAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		appendN(t, s, 3)

		_, err := s.DB().ExecContext(ctx, `UPDATE audit SET action = 'forged' WHERE seq = 2`)
		require.ErrorContains(t, err, "append-only")
		_, err = s.DB().ExecContext(ctx, `DELETE FROM audit WHERE seq = 2`)
		require.ErrorContains(t, err, "append-only")
		_, err = s.DB().ExecContext(ctx, `DELETE FROM audit`)
		require.ErrorContains(t, err, "append-only")
		if s.Dialect() == "postgres" {
			_, err = s.DB().ExecContext(ctx, `TRUNCATE audit`)
			require.ErrorContains(t, err, "append-only")
		}
		require.NoError(t, s.VerifyAudit(ctx))
	})
}

func TestAuditVerifyDetectsEditedRow(t *testing.T) {
	t.Parallel()
	for _, col := range []string{"time", "actor_sub", "actor_name", "action", "target", "session_id", "detail", "remote_ip", "hash"} {
		t.Run(col, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			forEachBackend(t, func(t *testing.T, s *SQL) {
				appendN(t, s, 5)
				dropTrigger(t, s, "audit_no_update")
				_, err := s.DB().ExecContext(ctx, `UPDATE audit SET `+col+` = `+col+` || '0' WHERE seq = 3`)
				require.NoError(t, err)

				err = s.VerifyAudit(ctx)
				require.ErrorIs(t, err, ErrAuditTampered)
				require.ErrorContains(t, err, "seq 3")
			})
		})
	}
}

func TestAuditVerifyDetectsRehashedRow(t *testing.T) {
	// Someone who edits a row and recomputes its hash breaks the next link.
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		appendN(t, s, 5)
		rs, err := s.ListAudit(ctx, AuditFilter{})
		require.NoError(t, err)
		r := rs[len(rs)-3] // seq 3
		require.EqualValues(t, 3, r.Seq)
		r.Action = "forged"
		forged := auditHash(r.PrevHash, r.Seq, mustEncodeTime(r.Time), r.AuditEntry)

		dropTrigger(t, s, "audit_no_update")
		_, err = s.DB().ExecContext(ctx, `UPDATE audit SET action = $1, hash = $2 WHERE seq = 3`, r.Action, forged)
		require.NoError(t, err)
		err = s.VerifyAudit(ctx)
		require.ErrorIs(t, err, ErrAuditTampered)
		require.ErrorContains(t, err, "seq 4")
	})
}

func TestAuditVerifyDetectsDeletedRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		deleted int
		bad     string
	}{{1, "seq 2"}, {3, "seq 4"}} {
		t.Run(fmt.Sprint(tc.deleted), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			forEachBackend(t, func(t *testing.T, s *SQL) {
				appendN(t, s, 5)
				dropTrigger(t, s, "audit_no_delete")
				_, err := s.DB().ExecContext(ctx, `DELETE FROM audit WHERE seq = $1`, tc.deleted)
				require.NoError(t, err)

				err = s.VerifyAudit(ctx)
				require.ErrorIs(t, err, ErrAuditTampered)
				require.ErrorContains(t, err, tc.bad)
			})
		})
	}
}

func TestAuditHashFieldBoundaries(t *testing.T) {
	t.Parallel()
	ts := mustEncodeTime(t0)
	a := auditHash(GenesisHash, 1, ts, AuditEntry{Action: "a", Target: "bc"})
	b := auditHash(GenesisHash, 1, ts, AuditEntry{Action: "ab", Target: "c"})
	require.NotEqual(t, a, b)
	require.Equal(t, a, auditHash(GenesisHash, 1, ts, AuditEntry{Action: "a", Target: "bc"}), "deterministic")
}

// auditFields returns pointers to the string fields the hash covers, in
// canonical order, so the fuzz test can shift and alter each.
func auditFields(e *AuditEntry) []*string {
	return []*string{&e.ActorSub, &e.ActorName, (*string)(&e.Action), &e.Target, &e.SessionID, &e.Detail, &e.RemoteIP}
}

func FuzzAuditHash(f *testing.F) {
	f.Add(int64(1), t0.UnixNano(), "sub", "Ada", "a", "bc", "", "{}", "192.0.2.1")
	f.Add(int64(7), int64(0), "", "", "", "", "", "", "")
	f.Add(int64(12), t0.UnixNano(), "1:", ",", "3:abc,", "\n", "0:", ":,", "\x00")
	f.Fuzz(func(t *testing.T, seq, nanos int64, sub, name, action, target, session, detail, ip string) {
		ts := mustEncodeTime(time.Unix(0, nanos))
		base := AuditEntry{ActorSub: sub, ActorName: name, Action: audit.Action(action), Target: target, SessionID: session, Detail: detail, RemoteIP: ip}
		h := auditHash(GenesisHash, seq, ts, base)

		// Changing any one field changes the hash.
		for i := range auditFields(&base) {
			e := base
			*auditFields(&e)[i] += "x"
			require.NotEqual(t, h, auditHash(GenesisHash, seq, ts, e), "field %d", i)
		}
		require.NotEqual(t, h, auditHash(GenesisHash, seq+1, ts, base), "seq")
		require.NotEqual(t, h, auditHash(GenesisHash, seq, mustEncodeTime(time.Unix(0, nanos+1)), base), "time")
		require.NotEqual(t, h, auditHash(h, seq, ts, base), "prev hash")

		// Moving bytes across a boundary between neighbouring fields changes
		// the hash, in either direction.
		for i := 0; i+1 < len(auditFields(&base)); i++ {
			if l := *auditFields(&base)[i]; l != "" {
				e := base
				fs := auditFields(&e)
				*fs[i], *fs[i+1] = l[:len(l)-1], l[len(l)-1:]+*fs[i+1]
				require.NotEqual(t, h, auditHash(GenesisHash, seq, ts, e), "shift right at %d", i)
			}
			if r := *auditFields(&base)[i+1]; r != "" {
				e := base
				fs := auditFields(&e)
				*fs[i], *fs[i+1] = *fs[i]+r[:1], r[1:]
				require.NotEqual(t, h, auditHash(GenesisHash, seq, ts, e), "shift left at %d", i)
			}
		}
	})
}
