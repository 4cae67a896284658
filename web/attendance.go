package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// attendanceActions are the audit rows that make up the attendance register.
var attendanceActions = map[audit.Action]string{
	audit.RoomJoin: "joined", audit.RoomAdmit: "admitted", audit.RoomDeny: "denied", audit.RoomLeave: "left",
	audit.RoomRemove: "removed", audit.RoomConnectionLost: "connection lost", audit.RoomRejoin: "rejoined", audit.RoomJoinRefused: "refused entry", audit.SessionEnded: "session ended",
}

// attendanceCSV is GET /sessions/{id}/attendance.csv: the session's
// attendance register (from the audit log), for its staff, the head and the DSL.
func (s *Server) attendanceCSV(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.loadSession(r.Context(), who, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !lobby.IsSessionStaff(who, ss) && !who.Has(auth.RoleHead) && !who.Has(auth.RoleDSL) {
		s.fail(w, r, http.StatusForbidden, "forbidden", "Only the session's staff, the headteacher and the DSL can download its attendance.")
		return
	}
	if lr, ok := s.running(ss.ID); ok { // the register up to now: the room's queued rows too
		wctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if err := lr.Lobby().AuditWritten(wctx); err != nil {
			s.log.Warn("attendance register: some of the room's audit rows are not written yet", slog.Any("err", err))
		}
		cancel()
	}
	rows, err := s.store.ListAudit(r.Context(), store.AuditFilter{SessionID: ss.ID})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="attendance-%s.csv"`, ss.ID))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "event", "participant", "by", "detail"})
	loc := s.loc()
	for _, e := range attendanceRegister(rows) {
		_ = cw.Write([]string{e.Time.In(loc).Format(time.DateTime), e.Event, csvSafe(e.Participant), csvSafe(e.By), csvSafe(e.Detail)})
	}
	cw.Flush()
}

// attendanceEntry is one line of a session's attendance register.
type attendanceEntry struct {
	Time                           time.Time
	Event, Participant, By, Detail string
}

// attendanceRegister picks the attendance rows out of a session's audit rows
// (newest first, as ListAudit returns them) and returns them oldest first.
func attendanceRegister(rows []store.AuditRecord) []attendanceEntry {
	var out []attendanceEntry
	for i := len(rows) - 1; i >= 0; i-- {
		row := rows[i]
		event, ok := attendanceActions[row.Action]
		if !ok {
			continue
		}
		d := audit.Read(row.Detail)
		e := attendanceEntry{Time: row.Time, Event: event, Participant: row.ActorName}
		if d.Whom != "" {
			e.Participant, e.By = d.Whom, row.ActorName
		}
		if d.Reason != "" {
			e.Detail = d.Reason
		}
		if d.Role != "" {
			e.Detail = d.Role
			if d.OnRoster != nil && d.Role == string(lobby.Pupil) && !*d.OnRoster {
				e.Detail += ", not on the class list"
			}
		}
		out = append(out, e)
	}
	return out
}

// csvSafe stops a cell being read as a formula by spreadsheet programs.
func csvSafe(v string) string { return live.SafeCell(v) }
