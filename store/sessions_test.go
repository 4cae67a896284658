package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoginStateTakeOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		ls := LoginState{ID: "state-hash", Nonce: "n", PKCEVerifier: "v", ReturnTo: "/lesson/42", Created: t0, MaxAge: 15 * time.Minute}
		require.NoError(t, s.CreateLoginState(ctx, ls))
		require.Error(t, s.CreateLoginState(ctx, ls), "IDs are unique")

		got, err := s.TakeLoginState(ctx, ls.ID, t0.Add(time.Minute), 10*time.Minute)
		require.NoError(t, err)
		require.Equal(t, ls, got)

		_, err = s.TakeLoginState(ctx, ls.ID, t0.Add(time.Minute), 10*time.Minute)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.TakeLoginState(ctx, "never-created", t0, time.Minute)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestLoginStateConcurrentTakersExactlyOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		require.NoError(t, s.CreateLoginState(ctx, LoginState{ID: "contested", Nonce: "n", Created: t0}))

		const takers = 20
		var won, lost atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range takers {
			wg.Go(func() {
				<-start
				_, err := s.TakeLoginState(ctx, "contested", t0, time.Minute)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, ErrNotFound):
					lost.Add(1)
				default:
					t.Errorf("take: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		require.EqualValues(t, 1, won.Load())
		require.EqualValues(t, takers-1, lost.Load())
	})
}

func TestLoginStateMaxAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		maxAge := 10 * time.Minute

		require.NoError(t, s.CreateLoginState(ctx, LoginState{ID: "just-in-time", Created: t0}))
		_, err := s.TakeLoginState(ctx, "just-in-time", t0.Add(maxAge), maxAge)
		require.NoError(t, err, "exactly maxAge old is still valid")

		require.NoError(t, s.CreateLoginState(ctx, LoginState{ID: "stale", Created: t0}))
		_, err = s.TakeLoginState(ctx, "stale", t0.Add(maxAge+time.Nanosecond), maxAge)
		require.ErrorIs(t, err, ErrNotFound)
		// A stale state is consumed by the failed attempt too.
		_, err = s.TakeLoginState(ctx, "stale", t0, maxAge)
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func testSession(id string) WebSession {
	return WebSession{
		ID:        id,
		Issuer:    "https://idp.example",
		Subject:   "sub-1",
		Name:      "Ada Lovelace",
		Email:     "ada@school.example",
		Roles:     []string{"teacher"},
		CSRFToken: "csrf-" + id,
		AuthTime:  t0.Add(-time.Minute),
		AMR:       []string{"pwd", "otp"},
		Created:   t0,
		LastSeen:  t0,
		Expires:   t0.Add(8 * time.Hour),
	}
}

func TestWebSessionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		idle := 30 * time.Minute

		ws := testSession("s1")
		require.NoError(t, s.CreateWebSession(ctx, ws))
		got, err := s.GetWebSession(ctx, ws.ID, t0, idle)
		require.NoError(t, err)
		require.Equal(t, ws, got)

		_, err = s.GetWebSession(ctx, "missing", t0, idle)
		require.ErrorIs(t, err, ErrNotFound)

		// Touch keeps an active session alive past the first idle window.
		at := t0.Add(25 * time.Minute)
		require.NoError(t, s.TouchWebSession(ctx, ws.ID, at))
		got, err = s.GetWebSession(ctx, ws.ID, t0.Add(50*time.Minute), idle)
		require.NoError(t, err)
		require.Equal(t, at, got.LastSeen)

		// Touch never moves last_seen back.
		require.NoError(t, s.TouchWebSession(ctx, ws.ID, t0))
		got, err = s.GetWebSession(ctx, ws.ID, at, idle)
		require.NoError(t, err)
		require.Equal(t, at, got.LastSeen)

		require.ErrorIs(t, s.TouchWebSession(ctx, "missing", at), ErrNotFound)

		require.NoError(t, s.DeleteWebSession(ctx, ws.ID))
		_, err = s.GetWebSession(ctx, ws.ID, at, idle)
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteWebSession(ctx, ws.ID), "deleting twice is harmless")
	})
}

func TestWebSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		idle := 30 * time.Minute
		ws := testSession("idle")
		require.NoError(t, s.CreateWebSession(ctx, ws))

		_, err := s.GetWebSession(ctx, ws.ID, t0.Add(idle), idle)
		require.NoError(t, err, "exactly idle since last seen is still valid")
		_, err = s.GetWebSession(ctx, ws.ID, t0.Add(idle+time.Nanosecond), idle)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetWebSession(ctx, ws.ID, t0.Add(2*time.Hour), 0)
		require.NoError(t, err, "idle <= 0 turns the idle check off")
	})
}

func TestWebSessionAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		ws := testSession("abs")
		require.NoError(t, s.CreateWebSession(ctx, ws))

		// Kept busy right up to the end, it still ends at Expires.
		require.NoError(t, s.TouchWebSession(ctx, ws.ID, ws.Expires.Add(-time.Nanosecond)))
		_, err := s.GetWebSession(ctx, ws.ID, ws.Expires.Add(-time.Nanosecond), time.Hour)
		require.NoError(t, err)
		_, err = s.GetWebSession(ctx, ws.ID, ws.Expires, time.Hour)
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, s.TouchWebSession(ctx, ws.ID, ws.Expires), ErrNotFound, "touch does not revive")

		bad := testSession("no-expiry")
		bad.Expires = time.Time{}
		require.Error(t, s.CreateWebSession(ctx, bad))
	})
}

func TestDeleteExpiredWebSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		idle := 30 * time.Minute
		now := t0.Add(2 * time.Hour)

		live := testSession("live")
		live.LastSeen = now.Add(-idle) // exactly at the idle limit: kept
		idled := testSession("idled")
		idled.LastSeen = now.Add(-idle - time.Nanosecond)
		ended := testSession("ended")
		ended.LastSeen = now
		ended.Expires = now
		for _, ws := range []WebSession{live, idled, ended} {
			require.NoError(t, s.CreateWebSession(ctx, ws))
		}
		require.NoError(t, s.CreateLoginState(ctx, LoginState{ID: "fresh", Created: now.Add(-LoginStateRetention)}))
		require.NoError(t, s.CreateLoginState(ctx, LoginState{ID: "old", Created: now.Add(-LoginStateRetention - time.Nanosecond)}))

		n, err := s.DeleteExpiredWebSessions(ctx, now, idle)
		require.NoError(t, err)
		require.EqualValues(t, 3, n) // idled, ended, old

		var ids []string
		rows, err := s.DB().QueryContext(ctx, `SELECT id FROM web_sessions UNION ALL SELECT id FROM login_states ORDER BY id`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"fresh", "live"}, ids)

		// What survived is exactly what GetWebSession still returns.
		_, err = s.GetWebSession(ctx, "live", now, idle)
		require.NoError(t, err)

		n, err = s.DeleteExpiredWebSessions(ctx, now, idle)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
