package roster

// Action is an audit action this package writes.
type Action string

// Audit actions of class-list imports. Their details are the typed structs
// below, encoded as JSON.
const (
	ActionPreviewed Action = "roster.previewed" // ImportDetail
	ActionImported  Action = "roster.imported"  // ImportDetail
	ActionRefused   Action = "roster.refused"   // RefusedDetail
)

// Via says where an import came from.
type Via string

// The ways in.
const (
	ViaPage      Via = "admin page"
	ViaCLI       Via = "command line"
	ViaDirectory Via = "roster_dir"
)

// ImportDetail is the detail of ActionPreviewed and ActionImported.
type ImportDetail struct {
	Via            Via    `json:"via"`
	Format         Format `json:"format"`
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

// RefusedDetail is the detail of ActionRefused.
type RefusedDetail struct {
	Via    Via    `json:"via"`
	Reason string `json:"reason"`
}
