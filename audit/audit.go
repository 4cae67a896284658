// Package audit defines every action of the audit log (R11) and the typed
// detail each carries, and encodes and decodes details. It is the one place
// an action's name or a detail's shape is written down: the room (lobby),
// the live-room layer (live), safeguarding (safeguard) and the pages (web)
// write rows with these constants and structs, and whoever reads a row
// back (the attendance register, a recording's manifest, the DSL's pages)
// decodes its detail here instead of searching the JSON text.
//
// The store keeps a detail as the JSON text it was written with (the hash
// chain covers those bytes), so a field added here later is simply absent
// from older rows.
package audit

import (
	"encoding/json"
	"strings"
	"time"
)

// Action names what an audit row records: "<family>.<what>".
type Action string

// Family is the part of an action before its dot ("room", "gate", …).
type Family string

// Families of actions that readers select by.
const (
	FamilyRoom      Family = "room"
	FamilyGate      Family = "gate"
	FamilyRecording Family = "recording"
	FamilyConcern   Family = "concern"
	FamilySession   Family = "session"
	FamilyChat      Family = "chat"
	FamilyRoster    Family = "roster"
)

// Prefix is the filter that matches every action of the family
// (store.AuditFilter).
func (f Family) Prefix() Action { return Action(f + ".") }

// Family returns the action's family.
func (a Action) Family() Family {
	f, _, _ := strings.Cut(string(a), ".")
	return Family(f)
}

// The room: joining, the lobby, staff's tools (lobby writes these).
const (
	RoomJoin           Action = "room.join"            // Join
	RoomJoinRefused    Action = "room.join_refused"    // Reason
	RoomRejoin         Action = "room.rejoin"          // Rejoin
	RoomAdmit          Action = "room.admit"           // Person (Whom empty: staff joining directly)
	RoomDeny           Action = "room.deny"            // Person
	RoomRemove         Action = "room.remove"          // Person
	RoomLeave          Action = "room.leave"           // Left
	RoomConnectionLost Action = "room.connection_lost" // Lost
	RoomLock           Action = "room.lock"            // Lock
	RoomMute           Action = "room.mute"            // Person
	RoomUnmute         Action = "room.unmute"          // Person
	RoomMuteAll        Action = "room.mute_all"        // MuteAll
	RoomUnmuteSelf     Action = "room.unmute_self"     // Person
	RoomPupilMedia     Action = "room.pupil_media"     // PupilMedia
	RoomSpotlight      Action = "room.spotlight"       // Person (Cleared when none)
	RoomHandRaised     Action = "room.hand_raised"     // none
	RoomHandLowered    Action = "room.hand_lowered"    // Person
	RoomLetSpeak       Action = "room.let_speak"       // Person
	RoomScreenGrant    Action = "room.screen_grant"    // Person
	RoomRecordChosen   Action = "room.record_chosen"   // none: staff chose to record a lone pupil's lesson
)

// The media gate (R5) and the recording (R6, R7).
const (
	GateOpen                    Action = "gate.open"                     // Gate
	GateHeld                    Action = "gate.held"                     // Gate
	RecordingStarting           Action = "recording.starting"            // Reason
	RecordingConfirmed          Action = "recording.confirmed"           // Reason
	RecordingFailed             Action = "recording.failed"              // Reason
	RecordingOff                Action = "recording.off"                 // Reason
	RecordingNoticeAcknowledged Action = "recording.notice_acknowledged" // none
	RecordingStored             Action = "recording.stored"              // Stored
	RecordingDeleted            Action = "recording.deleted"             // Deleted
	RecordingViewed             Action = "recording.viewed"              // Access
	RecordingDownloaded         Action = "recording.downloaded"          // Access
	RecordingSessionViewed      Action = "recording.session_viewed"      // none
	RecordingsListed            Action = "recordings.listed"             // Search
	RecordingHoldPlaced         Action = "recording.hold_placed"         // Hold
	RecordingHoldReleased       Action = "recording.hold_released"       // Hold
)

// Sessions and delegations (R4).
const (
	SessionRequested  Action = "session.requested"  // Requested
	SessionApproved   Action = "session.approved"   // Decision
	SessionRejected   Action = "session.rejected"   // Decision
	SessionCancelled  Action = "session.cancelled"  // Decision
	SessionOpened     Action = "session.opened"     // Decision
	SessionEnded      Action = "session.ended"      // Reason
	DelegationCreated Action = "delegation.created" // Delegation
	DelegationRevoked Action = "delegation.revoked" // Delegation
)

// Chat and its transcript (R12).
const (
	ChatMessage              Action = "chat.message"               // Chat
	ChatDeleted              Action = "chat.deleted"               // Chat
	ChatPupils               Action = "chat.pupils"                // Allowed
	ChatPurged               Action = "chat.purged"                // Purged
	ChatTranscriptStored     Action = "chat.transcript_stored"     // Transcript
	ChatTranscriptFailed     Action = "chat.transcript_failed"     // Transcript
	ChatTranscriptDownloaded Action = "chat.transcript_downloaded" // Transcript
)

// Signing in (R1, R15).
const (
	LoginAccepted Action = "login.accepted" // Login
	LoginRefused  Action = "login.refused"  // Login
	Logout        Action = "logout"         // none
)

// Safeguarding concerns (R9, R14) and the audit log itself (R11).
const (
	ConcernRaised      Action = "concern.raised"       // Raised
	ConcernPending     Action = "concern.pending"      // Concern
	ConcernFiled       Action = "concern.filed"        // Concern
	ConcernWorry       Action = "concern.worry"        // Worry: a pupil's "I'm worried", never its text
	ConcernNotified    Action = "concern.notified"     // Notified
	ConcernEmailSent   Action = "concern.email_sent"   // Email
	ConcernEmailFailed Action = "concern.email_failed" // Email
	ConcernViewed      Action = "concern.viewed"       // none
	ConcernViewRefused Action = "concern.view_refused" // Refused
	AuditViewed        Action = "audit.viewed"         // Query
	AuditExported      Action = "audit.exported"       // Query
)

// Detail is the typed detail of an audit row: one of this package's
// structs (or None).
type Detail interface{ isDetail() }

// typed marks this package's detail structs.
type typed struct{}

func (typed) isDetail() {}

// None is the detail of an action that carries none.
type None struct{ typed }

// Reason is a detail that says why.
type Reason struct {
	typed
	Reason string `json:"reason,omitempty"`
}

// Join is the detail of RoomJoin.
type Join struct {
	typed
	Role         string `json:"role"`
	OnRoster     bool   `json:"on_roster"`
	SessionStaff bool   `json:"session_staff"`
}

// Rejoin is the detail of RoomRejoin.
type Rejoin struct {
	typed
	AwaySince time.Time `json:"away_since,omitzero"`
}

// Person is the detail of staff acting on one participant (Whom is their
// verified name).
type Person struct {
	typed
	Whom     string `json:"whom,omitempty"`
	OnRoster *bool  `json:"on_roster,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Kind     string `json:"kind,omitempty"` // audio or video
	By       string `json:"by,omitempty"`
	Allowed  *bool  `json:"allowed,omitempty"`
	Screen   bool   `json:"screen,omitempty"`
	Cleared  bool   `json:"cleared,omitempty"`
}

// Left is the detail of RoomLeave.
type Left struct {
	typed
	AwaySince time.Time `json:"away_since,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// Lost is the detail of RoomConnectionLost.
type Lost struct {
	typed
	Waiting bool `json:"waiting,omitempty"`
}

// Lock is the detail of RoomLock.
type Lock struct {
	typed
	Locked bool `json:"locked"`
}

// MuteAll is the detail of RoomMuteAll.
type MuteAll struct {
	typed
	Kind   string `json:"kind"`
	Pupils int    `json:"pupils"`
}

// PupilMedia is the detail of RoomPupilMedia.
type PupilMedia struct {
	typed
	Kind    string `json:"kind"`
	Allowed bool   `json:"allowed"`
}

// Allowed is the detail of a switch staff turn on or off.
type Allowed struct {
	typed
	Allowed bool `json:"allowed"`
}

// Gate is the detail of GateOpen and GateHeld.
type Gate struct {
	typed
	Reason string `json:"reason"`
	Pupils int    `json:"pupils"`
	Staff  int    `json:"staff"`
}

// Chat is the detail of a chat message's row: its hash, never its text.
type Chat struct {
	typed
	Role   string `json:"role,omitempty"`
	SHA256 string `json:"sha256"`
	Whom   string `json:"whom,omitempty"`
}

// Raised is the detail of ConcernRaised.
type Raised struct {
	typed
	Recording string `json:"recording"`
}

// Stored is the detail of RecordingStored.
type Stored struct {
	typed
	Participant string    `json:"participant"`
	Role        string    `json:"role,omitempty"`
	Part        int       `json:"part,omitempty"`
	Size        int64     `json:"size"`
	SpoolSize   int64     `json:"spool_size,omitempty"`
	RetainUntil time.Time `json:"retain_until"`
	// Recovered is set for a part indexed by the reconciler (a crash, a
	// restart, or a finish whose index write failed).
	Recovered bool `json:"recovered,omitempty"`
}

// Deleted is the detail of RecordingDeleted.
type Deleted struct {
	typed
	Version     string    `json:"version"`
	RetainUntil time.Time `json:"retain_until"`
	Size        int64     `json:"size"`
}

// Purged is the detail of ChatPurged.
type Purged struct {
	typed
	Messages int    `json:"messages"`
	Reason   string `json:"reason"`
}

// Transcript is the detail of a chat transcript's rows.
type Transcript struct {
	typed
	Messages    int       `json:"messages,omitempty"`
	Size        int64     `json:"size,omitempty"`
	Version     string    `json:"version,omitempty"`
	RetainUntil time.Time `json:"retain_until,omitzero"`
	Error       string    `json:"error,omitempty"`
}

// Access is the detail of a recording viewed or downloaded.
type Access struct {
	typed
	Key   string `json:"key"`
	Range string `json:"range,omitempty"`
	Bytes int64  `json:"bytes"`
	Via   string `json:"via"`
}

// Search is the detail of RecordingsListed.
type Search struct {
	typed
	Pupil      string `json:"pupil"`
	Teacher    string `json:"teacher"`
	From       string `json:"from"`
	To         string `json:"to"`
	HasConcern bool   `json:"has_concern"`
	OnHold     bool   `json:"on_hold"`
	Results    int    `json:"results"`
}

// Hold is the detail of a legal hold placed or released.
type Hold struct {
	typed
	Reason  string `json:"reason"`
	Objects int    `json:"objects"`
}

// Requested is the detail of SessionRequested.
type Requested struct {
	typed
	Title        string    `json:"title"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Series       string    `json:"series"`
	Kind         string    `json:"kind"`
	RosterGroup  string    `json:"roster_group"`
	RosterEmails []string  `json:"roster_emails"`
	CoStaff      []string  `json:"co_staff"`
}

// Decision is the detail of a session's approval, rejection, cancelling or
// opening.
type Decision struct {
	typed
	Title       string `json:"title,omitempty"`
	Host        string `json:"host,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Was         string `json:"was,omitempty"`
	DelegatedBy string `json:"delegated_by,omitempty"`
}

// Delegation is the detail of a delegation created or revoked.
type Delegation struct {
	typed
	Delegate string    `json:"delegate"`
	Until    time.Time `json:"until,omitzero"`
}

// Concern is the detail of a concern pending or filed.
type Concern struct {
	typed
	About       string   `json:"about,omitempty"`
	Pupils      []string `json:"pupils,omitempty"`
	Recorded    bool     `json:"recorded"`
	HeldObjects int      `json:"held_objects,omitempty"`
}

// Worry is the detail of ConcernWorry: whether the lesson was recorded and
// how many of its objects were held. The pupil's words are not here.
type Worry struct {
	typed
	Recorded    bool `json:"recorded"`
	HeldObjects int  `json:"held_objects,omitempty"`
}

// Notified is the detail of ConcernNotified.
type Notified struct {
	typed
	Recipients         []string `json:"recipients"`
	Pupils             []string `json:"pupils,omitempty"`
	DetailsAddedMailed []string `json:"details_added_mailed,omitempty"`
}

// Email is the detail of a concern's e-mail sent or failed.
type Email struct {
	typed
	To    string `json:"to"`
	Error string `json:"error,omitempty"`
}

// Login is the detail of a sign-in accepted or refused.
type Login struct {
	typed
	Reason   string   `json:"reason,omitempty"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Withheld []string `json:"withheld,omitempty"`
	AMR      []string `json:"amr,omitempty"`
}

// Refused is the detail of ConcernViewRefused.
type Refused struct {
	typed
	Roles []string `json:"roles"`
}

// Query is the detail of the audit log viewed or exported.
type Query struct {
	typed
	Action  string    `json:"action"`
	Who     string    `json:"who"`
	Session string    `json:"session"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	Before  int64     `json:"before,omitempty"`
	Rows    *int      `json:"rows,omitempty"`
}

// Class lists imported from the MIS (package roster writes these).
const (
	RosterPreviewed Action = "roster.previewed" // RosterImport
	RosterImported  Action = "roster.imported"  // RosterImport
	RosterRefused   Action = "roster.refused"   // RosterRefusal
)

// RosterImport is the detail of a class-list import previewed or applied:
// where it came from, its format and content hash, the pending preview's
// ID, the list's size after it and what it changes.
type RosterImport struct {
	typed
	Via            string `json:"via"`
	Format         string `json:"format"`
	Hash           string `json:"hash"`
	Pending        string `json:"pending,omitempty"`
	Classes        int    `json:"classes"`
	Pupils         int    `json:"pupils"`
	ClassesAdded   int    `json:"classes_added"`
	ClassesRemoved int    `json:"classes_removed"`
	ClassesRenamed int    `json:"classes_renamed"`
	PupilsJoined   int    `json:"pupils_joined"`
	PupilsLeft     int    `json:"pupils_left"`
}

// RosterRefusal is the detail of a class-list import refused: where it came
// from and why (the error the IT admin saw).
type RosterRefusal struct {
	typed
	Via    string `json:"via"`
	Reason string `json:"reason"`
}

// Encode returns d as the JSON text of a row's detail ("{}" for none).
func Encode(d Detail) string {
	if d == nil {
		return "{}"
	}
	b, err := json.Marshal(d)
	if err != nil { // only this package's structs: cannot happen
		return "{}"
	}
	return string(b)
}

// Fields are the fields readers pick out of any row's detail: who was
// acted on, why, and a joiner's role.
type Fields struct {
	Whom     string `json:"whom"`
	Reason   string `json:"reason"`
	Role     string `json:"role"`
	OnRoster *bool  `json:"on_roster"`
}

// Read decodes the common fields of a stored detail (zero for a detail
// that is not JSON: the row is still shown, with nothing picked out).
func Read(detail string) Fields {
	var f Fields
	_ = json.Unmarshal([]byte(detail), &f)
	return f
}

// Decode decodes a stored detail as the detail struct T of its action (the
// zero T for a detail that is not T's JSON).
func Decode[T Detail](detail string) T {
	var d T
	_ = json.Unmarshal([]byte(detail), &d)
	return d
}
