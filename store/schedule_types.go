package store

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is returned when a compare-and-set finds the row in another
// state than expected (someone else changed it first).
var ErrConflict = errors.New("store: conflicting change")

// Session states.
const (
	StateRequested = "requested"
	StateApproved  = "approved"
	StateRejected  = "rejected"
	StateLive      = "live"
	StateEnded     = "ended"
	StateCancelled = "cancelled"
)

// Session is one live lesson (one occurrence of a series).
type Session struct {
	ID           string
	SeriesID     string // shared by the occurrences of a weekly series; "" for a single session
	Title        string
	Kind         string // "interactive" or "streamed"
	HostSub      string
	HostName     string
	HostEmail    string
	CoStaff      []string // e-mail addresses of co-staff
	RosterGroup  string   // IdP group of the class, or ""
	RosterEmails []string // pupils' e-mail addresses, when no group
	Start        time.Time
	End          time.Time
	State        string
	Created      time.Time
	Updated      time.Time
	DecidedBySub string // who approved, rejected or cancelled
	DecidedBy    string // their name
	DecidedAt    time.Time
	Reason       string // rejection or cancellation reason
}

// SessionFilter selects sessions; zero fields match everything.
type SessionFilter struct {
	States     []string
	StaffEmail string // host e-mail or one of CoStaff
	SeriesID   string
	EndAfter   time.Time // sessions whose End is after this
	Limit      int
}

// SessionChange is what a state transition writes besides the state.
type SessionChange struct {
	At           time.Time
	DecidedBySub string
	DecidedBy    string
	Reason       string
}

// Delegation lets a senior leader approve sessions until a date.
type Delegation struct {
	ID            string
	HeadSub       string
	HeadName      string
	DelegateEmail string
	DelegateName  string // as typed or as last seen; informational
	Until         time.Time
	Created       time.Time
	RevokedAt     time.Time // zero while not revoked
	RevokedBy     string
}

// Schedule is the part of Store that holds sessions and delegations.
type Schedule interface {
	// CreateSessions stores new sessions (all occurrences of a series) in one
	// transaction.
	CreateSessions(ctx context.Context, ss []Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// ListSessions returns matching sessions ordered by Start.
	ListSessions(ctx context.Context, f SessionFilter) ([]Session, error)
	// TransitionSession moves a session from one of the states in from to
	// state to, atomically; ErrConflict when it is in another state,
	// ErrNotFound when it does not exist. It returns the updated session.
	TransitionSession(ctx context.Context, id string, from []string, to string, c SessionChange) (Session, error)

	CreateDelegation(ctx context.Context, d Delegation) error
	GetDelegation(ctx context.Context, id string) (Delegation, error)
	// ListDelegations returns delegations newest first; with activeAt set,
	// only those not revoked and with Until after it.
	ListDelegations(ctx context.Context, activeAt time.Time) ([]Delegation, error)
	// RevokeDelegation marks it revoked; ErrConflict if already revoked.
	RevokeDelegation(ctx context.Context, id string, at time.Time, by string) (Delegation, error)

	// CountUsersInGroup counts known users (signed in at least once) whose
	// IdP groups include group.
	CountUsersInGroup(ctx context.Context, group string) (int, error)
}
