package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		dsl := Notification{ID: "n1", ConcernID: "c1", RecipientEmail: "H.Murray@school.example", RecipientName: "Helen Murray",
			Reason: "safeguarding lead", Created: t0, EmailStatus: EmailQueued}
		lead := Notification{ID: "n2", ConcernID: "c1", RecipientEmail: "p.sharma@school.example", Reason: "year lead (year-8)",
			Created: t0.Add(time.Second)}
		other := Notification{ID: "n3", ConcernID: "c2", RecipientEmail: "h.murray@school.example", Reason: "safeguarding lead",
			Created: t0.Add(time.Minute)}
		for _, n := range []Notification{dsl, lead, other} {
			require.NoError(t, s.CreateNotification(ctx, n))
		}
		dup := dsl
		dup.ID = "n9"
		require.ErrorIs(t, s.CreateNotification(ctx, dup), ErrConflict, "one notification per concern and recipient")
		require.Error(t, s.CreateNotification(ctx, Notification{ID: "n8", ConcernID: "c1", Created: t0}), "a recipient is required")

		got, err := s.ListNotifications(ctx, NotificationFilter{ConcernID: "c1"})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, "n2", got[0].ID, "newest first")
		require.Equal(t, "h.murray@school.example", got[1].RecipientEmail, "e-mail stored in lower case")
		require.True(t, got[1].Opened.IsZero())
		mine, err := s.ListNotifications(ctx, NotificationFilter{Email: "H.MURRAY@school.example"})
		require.NoError(t, err)
		require.Equal(t, []string{"n3", "n1"}, notificationIDs(mine))
		one, err := s.ListNotifications(ctx, NotificationFilter{Email: "h.murray@school.example", Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []string{"n3"}, notificationIDs(one))

		// Opening: the first time counts, and fills in an unknown name.
		ok, err := s.MarkNotificationOpened(ctx, "c1", "P.Sharma@school.example", "Priya Sharma", t0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.MarkNotificationOpened(ctx, "c1", "p.sharma@school.example", "Someone Else", t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.MarkNotificationOpened(ctx, "c2", "p.sharma@school.example", "Priya Sharma", t0)
		require.NoError(t, err)
		require.False(t, ok, "not told of c2")
		got, err = s.ListNotifications(ctx, NotificationFilter{ConcernID: "c1", Email: "p.sharma@school.example"})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, t0.Add(time.Hour), got[0].Opened)
		require.Equal(t, "Priya Sharma", got[0].RecipientName)

		// E-mail state.
		require.NoError(t, s.SetNotificationEmail(ctx, "n1", EmailFailed, "connection refused", t0.Add(time.Minute)))
		require.ErrorIs(t, s.SetNotificationEmail(ctx, "nope", EmailSent, "", t0), ErrNotFound)
		got, err = s.ListNotifications(ctx, NotificationFilter{ConcernID: "c1", Email: "h.murray@school.example"})
		require.NoError(t, err)
		require.Equal(t, EmailFailed, got[0].EmailStatus)
		require.Equal(t, "connection refused", got[0].EmailError)
		require.Equal(t, t0.Add(time.Minute), got[0].EmailAt)
	})
}

func notificationIDs(ns []Notification) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func TestListUsersWithRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		for _, u := range []User{
			{Issuer: "i", Subject: "1", Name: "Helen Murray", Email: "h@x", Roles: []string{"staff", "dsl"}, LastSeen: t0},
			{Issuer: "i", Subject: "2", Name: "Adam Deputy", Email: "a@x", Roles: []string{"dsl"}, LastSeen: t0},
			{Issuer: "i", Subject: "3", Name: "Sarah Whitfield", Email: "s@x", Roles: []string{"staff"}, Groups: []string{"dsl-watchers"}, LastSeen: t0},
		} {
			require.NoError(t, s.UpsertUser(ctx, u))
		}
		us, err := s.ListUsersWithRole(ctx, "dsl")
		require.NoError(t, err)
		require.Len(t, us, 2)
		require.Equal(t, "Adam Deputy", us[0].Name)
		require.Equal(t, "Helen Murray", us[1].Name)
		none, err := s.ListUsersWithRole(ctx, "head")
		require.NoError(t, err)
		require.Empty(t, none)
	})
}
