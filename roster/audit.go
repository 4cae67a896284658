package roster

// Via says where an import came from (the via of its audit detail,
// audit.RosterImport and audit.RosterRefusal).
type Via string

// The ways in.
const (
	ViaPage      Via = "admin page"
	ViaCLI       Via = "command line"
	ViaDirectory Via = "roster_dir"
)
