package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUserUpsertRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		_, err := s.GetUser(ctx, "https://idp.example", "sub-1")
		require.ErrorIs(t, err, ErrNotFound)

		u := User{
			Issuer:   "https://idp.example",
			Subject:  "sub-1",
			Name:     "Ada Lovelace",
			Email:    "ada@school.example",
			Roles:    []string{"teacher", "dsl"},
			LastSeen: t0,
		}
		require.NoError(t, s.UpsertUser(ctx, u))
		got, err := s.GetUser(ctx, u.Issuer, u.Subject)
		require.NoError(t, err)
		require.Equal(t, u, got)

		// A second sign-in refreshes everything but first_seen.
		u2 := u
		u2.Name = "Ada King"
		u2.Email = "ada.king@school.example"
		u2.Roles = []string{}
		u2.LastSeen = t0.Add(time.Hour)
		require.NoError(t, s.UpsertUser(ctx, u2))
		got, err = s.GetUser(ctx, u.Issuer, u.Subject)
		require.NoError(t, err)
		require.Equal(t, u2, got)

		var firstSeen string
		require.NoError(t, s.DB().QueryRowContext(ctx,
			`SELECT first_seen FROM users WHERE issuer = $1 AND subject = $2`, u.Issuer, u.Subject).Scan(&firstSeen))
		require.Equal(t, mustEncodeTime(t0), firstSeen)

		// Same subject at another issuer is another person; nil roles stay nil.
		other := User{Issuer: "https://other.example", Subject: "sub-1", Name: "Someone Else", LastSeen: t0}
		require.NoError(t, s.UpsertUser(ctx, other))
		got, err = s.GetUser(ctx, other.Issuer, other.Subject)
		require.NoError(t, err)
		require.Equal(t, other, got)
		require.Nil(t, got.Roles)

		require.Error(t, s.UpsertUser(ctx, User{Issuer: "x"}))
	})
}
