package store

import (
	"context"
	"errors"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
)

// ErrNotFound is returned when a looked-up row does not exist (or has expired).
var ErrNotFound = errors.New("store: not found")

// User is a person who has signed in at least once.
type User struct {
	Issuer   string
	Subject  string
	Name     string
	Email    string
	Roles    []string
	Groups   []string // the IdP groups at the last sign-in (class rosters use them), and a pupil's imported classes ("class:<id>") then
	LastSeen time.Time
}

// WebSession is a signed-in browser. ID is the SHA-256 hex of the cookie
// value: the raw cookie value is never stored.
type WebSession struct {
	ID        string
	Issuer    string
	Subject   string
	Name      string
	Email     string
	Roles     []string
	Groups    []string // IdP groups at sign-in
	CSRFToken string
	AuthTime  time.Time // when the person authenticated at the IdP
	AMR       []string  // authentication methods the IdP reported
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time // absolute limit; idle expiry is checked with LastSeen
}

// LoginState is a sign-in in progress: created at /login, consumed once at the
// callback. ID is the SHA-256 hex of the OAuth2 state value.
type LoginState struct {
	ID           string
	Nonce        string
	PKCEVerifier string
	ReturnTo     string
	Created      time.Time
	// MaxAge, when not zero, is the max_age sent to the IdP: the ID token's
	// auth_time must be no older than this.
	MaxAge time.Duration
}

// AuditEntry is what a caller appends to the audit log.
type AuditEntry struct {
	Time      time.Time
	ActorSub  string       // subject of who acted ("" for the system)
	ActorName string       // verified full name of who acted
	Action    audit.Action // one of package audit's constants
	Target    string       // what it acted on: a session ID, a subject, an object key
	SessionID string       // live session this belongs to, if any
	Detail    string       // JSON object with further facts (reason, role, ...)
	RemoteIP  string
}

// AuditRecord is a stored audit row with its position and chain hash.
type AuditRecord struct {
	Seq      int64
	PrevHash string
	Hash     string
	AuditEntry
}

// AuditFilter selects audit rows; zero fields match everything.
type AuditFilter struct {
	Action    audit.Action // exact action, or a prefix ending in "." (audit.Family.Prefix)
	ActorSub  string
	Target    string
	SessionID string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	Before    int64     // only rows with a lower seq (paging back); 0 means no bound
	Limit     int       // 0 means no limit
}

// Store is everything the gateway persists. Implementations must be safe for
// concurrent use.
type Store interface {
	Schedule
	Safeguarding
	Notifications
	Chat
	Rooms
	Rosters

	// UpsertUser records a sign-in: creates the user or refreshes name, e-mail,
	// roles and last-seen time.
	UpsertUser(ctx context.Context, u User) error
	// GetUser returns a user by issuer and subject.
	GetUser(ctx context.Context, issuer, subject string) (User, error)
	// ListUsersWithRole returns the users whose roles at their last sign-in
	// include role, by name.
	ListUsersWithRole(ctx context.Context, role string) ([]User, error)

	CreateLoginState(ctx context.Context, s LoginState) error
	// TakeLoginState returns and deletes a login state in one step, so a state
	// can be used once only. States older than maxAge are ErrNotFound.
	TakeLoginState(ctx context.Context, id string, now time.Time, maxAge time.Duration) (LoginState, error)

	CreateWebSession(ctx context.Context, s WebSession) error
	// GetWebSession returns a session that has not expired at now (absolute
	// expiry, or idle longer than idle).
	GetWebSession(ctx context.Context, id string, now time.Time, idle time.Duration) (WebSession, error)
	TouchWebSession(ctx context.Context, id string, now time.Time) error
	DeleteWebSession(ctx context.Context, id string) error
	// DeleteExpiredWebSessions removes sessions and login states past expiry.
	DeleteExpiredWebSessions(ctx context.Context, now time.Time, idle time.Duration) (int64, error)

	// AppendAudit appends one row to the audit log, chaining its hash to the
	// previous row. There is no update or delete.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditRecord, error)
	// ListAudit returns matching rows, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// VerifyAudit recomputes the hash chain. It returns nil when intact, or an
	// error wrapping ErrAuditTampered naming the first bad row.
	VerifyAudit(ctx context.Context) error

	Ping(ctx context.Context) error
	Close() error
}

// ErrAuditTampered reports that the audit hash chain does not verify.
var ErrAuditTampered = errors.New("store: audit log hash chain broken")
