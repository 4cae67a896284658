package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRosterReplaceAndRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		r, st, err := s.GetRoster(ctx)
		require.NoError(t, err)
		require.Empty(t, r.Classes)
		require.Empty(t, st.Hash, "nothing imported yet")

		r = Roster{
			People:  []RosterPerson{{SourcedID: "p1", Email: "Amelia.Jones@oakfield.example", GivenName: "Amelia", FamilyName: "Jones"}, {SourcedID: "t1", Email: "s.whitfield@oakfield.example"}},
			Classes: []RosterClass{{SourcedID: "c1", Title: "7A Maths"}, {SourcedID: "c2", Title: "7A English"}},
			Enrollments: []RosterEnrollment{{ClassID: "c1", PersonID: "p1", Role: RosterPupil}, {ClassID: "c2", PersonID: "p1", Role: RosterPupil},
				{ClassID: "c1", PersonID: "t1", Role: RosterTeacher}},
		}
		require.NoError(t, s.ReplaceRoster(ctx, r, "", RosterState{Hash: "h1", Source: "oneroster-1.2", ImportedAt: t0, ImportedBy: "Tom Briggs"}))
		require.ErrorIs(t, s.ReplaceRoster(ctx, r, "", RosterState{Hash: "h2", ImportedAt: t0}), ErrConflict, "the base must be the applied hash")

		got, st, err := s.GetRoster(ctx)
		require.NoError(t, err)
		require.Equal(t, RosterState{Hash: "h1", Source: "oneroster-1.2", ImportedAt: t0, ImportedBy: "Tom Briggs"}, st)
		require.Len(t, got.Enrollments, 3)
		require.Equal(t, "amelia.jones@oakfield.example", got.People[0].Email, "e-mail addresses are kept in lower case")
		classes, err := s.ListRosterClasses(ctx)
		require.NoError(t, err)
		require.Equal(t, []RosterClassCount{{RosterClass{"c2", "7A English"}, 1}, {RosterClass{"c1", "7A Maths"}, 1}}, classes, "by title; teachers are not counted")
		ids, err := s.RosterClassesOf(ctx, " AMELIA.JONES@oakfield.example ")
		require.NoError(t, err)
		require.Equal(t, []string{"c1", "c2"}, ids)
		ids, err = s.RosterClassesOf(ctx, "s.whitfield@oakfield.example")
		require.NoError(t, err)
		require.Empty(t, ids, "a teacher is in no class as a pupil")

		// A replacement that fails half-way (an enrolment of an unknown class)
		// leaves the list as it was.
		bad := Roster{People: r.People, Enrollments: []RosterEnrollment{{ClassID: "nope", PersonID: "p1", Role: RosterPupil}}}
		require.Error(t, s.ReplaceRoster(ctx, bad, "h1", RosterState{Hash: "h3", ImportedAt: t0}))
		_, st, err = s.GetRoster(ctx)
		require.NoError(t, err)
		require.Equal(t, "h1", st.Hash)
		_, err = s.GetRosterClass(ctx, "c1")
		require.NoError(t, err)
	})
}

func TestPendingRoster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		p := PendingRoster{ID: "p1", Created: t0, CreatedBy: "sub-admin", BaseHash: "h0", Source: "sds-csv", Hash: "h1",
			Roster: Roster{Classes: []RosterClass{{SourcedID: "c1", Title: "7A"}}}}
		require.NoError(t, s.SavePendingRoster(ctx, p))
		got, err := s.GetPendingRoster(ctx, "p1")
		require.NoError(t, err)
		require.Equal(t, p, got)
		// A day later, saving another preview clears the old one.
		require.NoError(t, s.SavePendingRoster(ctx, PendingRoster{ID: "p2", Created: t0.Add(25 * time.Hour)}))
		_, err = s.GetPendingRoster(ctx, "p1")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeletePendingRoster(ctx, "p2"))
		_, err = s.GetPendingRoster(ctx, "p2")
		require.ErrorIs(t, err, ErrNotFound)
	})
}
