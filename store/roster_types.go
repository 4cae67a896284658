package store

import (
	"context"
	"time"
)

// RosterRole is a person's role in a class of an imported class list.
type RosterRole string

// The roles of an enrolment that chaperone keeps.
const (
	RosterPupil   RosterRole = "student"
	RosterTeacher RosterRole = "teacher"
)

// RosterPerson is a pupil or teacher of the imported class list.
type RosterPerson struct {
	SourcedID  string `json:"id"`
	Email      string `json:"email"` // lower case
	GivenName  string `json:"given"`
	FamilyName string `json:"family"`
}

// RosterClass is a class of the imported class list.
type RosterClass struct {
	SourcedID string `json:"id"`
	Title     string `json:"title"`
}

// RosterEnrollment puts a person in a class.
type RosterEnrollment struct {
	ClassID  string     `json:"class"`
	PersonID string     `json:"person"`
	Role     RosterRole `json:"role"`
}

// Roster is a whole class list, as one import brings it.
type Roster struct {
	People      []RosterPerson     `json:"people"`
	Classes     []RosterClass      `json:"classes"`
	Enrollments []RosterEnrollment `json:"enrollments"`
}

// RosterState says which import is applied: its content hash ("" when none
// ever was), format and when and by whom.
type RosterState struct {
	Hash       string
	Source     string
	ImportedAt time.Time
	ImportedBy string
}

// RosterClassCount is a class with its number of pupils.
type RosterClassCount struct {
	RosterClass
	Pupils int
}

// PendingRoster is a previewed import waiting to be applied.
type PendingRoster struct {
	ID        string
	Created   time.Time
	CreatedBy string
	BaseHash  string // the applied roster's hash at preview time
	Source    string
	Hash      string
	Roster    Roster
}

// Rosters persists the imported class lists.
type Rosters interface {
	// ReplaceRoster replaces the whole class list in one transaction,
	// provided the applied list's hash is still base (ErrConflict
	// otherwise).
	ReplaceRoster(ctx context.Context, r Roster, base string, st RosterState) error
	// GetRoster returns the applied class list and its state.
	GetRoster(ctx context.Context) (Roster, RosterState, error)
	// ListRosterClasses returns the classes with their pupil counts, by title.
	ListRosterClasses(ctx context.Context) ([]RosterClassCount, error)
	// GetRosterClass returns one class (ErrNotFound when none).
	GetRosterClass(ctx context.Context, id string) (RosterClassCount, error)
	// RosterClassesOf returns the IDs of the classes an e-mail address is a
	// pupil in.
	RosterClassesOf(ctx context.Context, email string) ([]string, error)
	// SavePendingRoster keeps a previewed import; pending imports older
	// than a day are deleted on the way.
	SavePendingRoster(ctx context.Context, p PendingRoster) error
	// GetPendingRoster returns a previewed import (ErrNotFound when none).
	GetPendingRoster(ctx context.Context, id string) (PendingRoster, error)
	// DeletePendingRoster removes a previewed import.
	DeletePendingRoster(ctx context.Context, id string) error
}
