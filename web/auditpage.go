package web

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// auditFilter reads the audit page's filters from the query.
func (s *Server) auditFilter(r *http.Request) (store.AuditFilter, string) {
	q := r.URL.Query()
	f := store.AuditFilter{Action: strings.TrimSpace(q.Get("action")), SessionID: strings.TrimSpace(q.Get("session")), Limit: 200}
	loc := s.loc()
	if d, err := time.ParseInLocation("2006-01-02", q.Get("from"), loc); err == nil {
		f.Since = d
	}
	if d, err := time.ParseInLocation("2006-01-02", q.Get("to"), loc); err == nil {
		f.Until = d.AddDate(0, 0, 1)
	}
	return f, strings.ToLower(strings.TrimSpace(q.Get("who")))
}

func mayReadAudit(who auth.Identity) error {
	if who.Has(auth.RoleDSL) || who.Has(auth.RoleAdmin) {
		return nil
	}
	return &lobby.Error{Kind: lobby.Forbidden, Message: "Only the safeguarding lead and IT admins can read the audit log."}
}

func (s *Server) auditRows(r *http.Request, f store.AuditFilter, who string) ([]store.AuditRecord, error) {
	rows, err := s.store.ListAudit(r.Context(), f)
	if err != nil || who == "" {
		return rows, err
	}
	var out []store.AuditRecord
	for _, a := range rows {
		if strings.Contains(strings.ToLower(a.ActorName), who) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	me := sessionFrom(r.Context()).Identity
	if err := mayReadAudit(me); err != nil {
		s.failErr(w, r, err)
		return
	}
	f, who := s.auditFilter(r)
	rows, err := s.auditRows(r, f, who)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	chain := s.store.VerifyAudit(r.Context())
	s.audit(r.Context(), me, "audit.viewed", "", f.SessionID, map[string]any{"action": f.Action, "who": who}, auth.ClientIP(r))
	type row struct{ When, Who, Action, Target, Session, Detail string }
	view := make([]row, len(rows))
	for i, a := range rows {
		view[i] = row{a.Time.In(s.loc()).Format("2006-01-02 15:04:05"), a.ActorName, a.Action, a.Target, a.SessionID, a.Detail}
	}
	chainMsg := ""
	if chain != nil {
		chainMsg = chain.Error()
	}
	s.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Data: map[string]any{"Rows": view, "ChainOK": chain == nil,
		"ChainProblem": chainMsg, "Q": r.URL.Query(), "CSV": "/audit.csv?" + r.URL.RawQuery}})
}

func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request) {
	me := sessionFrom(r.Context()).Identity
	if err := mayReadAudit(me); err != nil {
		s.failErr(w, r, err)
		return
	}
	f, who := s.auditFilter(r)
	f.Limit = 0
	rows, err := s.auditRows(r, f, who)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.audit(r.Context(), me, "audit.exported", "", f.SessionID, map[string]any{"action": f.Action, "who": who, "rows": len(rows)}, auth.ClientIP(r))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="chaperone-audit.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "time", "who", "action", "target", "session", "detail", "hash"})
	for _, a := range rows {
		_ = cw.Write([]string{itoa(a.Seq), a.Time.UTC().Format(time.RFC3339), csvSafe(a.ActorName), a.Action, csvSafe(a.Target), a.SessionID, csvSafe(a.Detail), a.Hash})
	}
	cw.Flush()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
