package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// auditPageSize is how many rows the audit page shows at a time.
const auditPageSize = 200

// auditQuery is the audit page's filter: the store's filter plus the actor's
// name, which is matched here (case-insensitive, any script).
type auditQuery struct {
	store.AuditFilter
	Who string // lower-case; "" matches everyone
}

// auditQueryOf reads the audit page's filters from the request.
func (s *Server) auditQueryOf(r *http.Request) auditQuery {
	q := r.URL.Query()
	aq := auditQuery{AuditFilter: store.AuditFilter{Action: audit.Action(strings.TrimSpace(q.Get("action"))), SessionID: strings.TrimSpace(q.Get("session"))},
		Who: strings.ToLower(strings.TrimSpace(q.Get("who")))}
	aq.Since, aq.Until = s.dateFilter(q)
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		aq.Before = b
	}
	return aq
}

// detail is what the audit log records about a read of itself.
func (aq auditQuery) detail() audit.Query {
	return audit.Query{Action: string(aq.Action), Who: aq.Who, Session: aq.SessionID, Since: aq.Since, Until: aq.Until, Before: aq.Before}
}

// mayReadAudit is the access check for the audit log: the DSL and IT admins.
func mayReadAudit(who auth.Identity) error {
	if who.Has(auth.RoleDSL) || who.Has(auth.RoleAdmin) {
		return nil
	}
	return &lobby.Error{Kind: lobby.Forbidden, Message: "Only the safeguarding lead and IT admins can read the audit log."}
}

// auditRows returns up to limit rows matching aq, newest first (limit 0:
// all), and whether there are more. The name filter is applied here, so
// rows are read from the store in batches until enough match.
func (s *Server) auditRows(ctx context.Context, aq auditQuery, limit int) ([]store.AuditRecord, bool, error) {
	f := aq.AuditFilter
	if aq.Who == "" {
		if limit > 0 {
			f.Limit = limit + 1
		}
		rows, err := s.store.ListAudit(ctx, f)
		if err != nil {
			return nil, false, err
		}
		if limit > 0 && len(rows) > limit {
			return rows[:limit], true, nil
		}
		return rows, false, nil
	}
	const batch = 1000
	var out []store.AuditRecord
	for {
		f.Limit = batch
		rows, err := s.store.ListAudit(ctx, f)
		if err != nil {
			return nil, false, err
		}
		for _, a := range rows {
			if strings.Contains(strings.ToLower(a.ActorName), aq.Who) {
				if limit > 0 && len(out) == limit {
					return out, true, nil
				}
				out = append(out, a)
			}
		}
		if len(rows) < batch {
			return out, false, nil
		}
		f.Before = rows[len(rows)-1].Seq
	}
}

// auditRow is an audit record as the page shows it.
type auditRow struct{ When, Who, Action, What, Target, Session, SessionTitle, Detail string }

// pageAudit is GET /audit: the audit log, newest first, filtered, a page at
// a time, with the result of checking its hash chain.
func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	me := sessionFrom(r.Context()).Identity
	if err := mayReadAudit(me); err != nil {
		s.failErr(w, r, err)
		return
	}
	aq := s.auditQueryOf(r)
	rows, more, err := s.auditRows(r.Context(), aq, auditPageSize)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	chain := s.store.VerifyAudit(r.Context())
	if err := s.auditOrErr(r.Context(), me, audit.AuditViewed, "", aq.SessionID, aq.detail(), auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	view := make([]auditRow, len(rows))
	titles := map[string]string{} // session ID → title, read once each
	for i, a := range rows {
		title, ok := titles[a.SessionID]
		if !ok && a.SessionID != "" {
			if ss, err := s.store.GetSession(r.Context(), a.SessionID); err == nil {
				title = ss.Title
			}
			titles[a.SessionID] = title
		}
		view[i] = auditRow{When: a.Time.In(s.loc()).Format(time.DateTime), Who: a.ActorName, Action: string(a.Action),
			What: describe(a, audit.Read(a.Detail)), Target: a.Target, Session: a.SessionID, SessionTitle: title, Detail: a.Detail}
	}
	chainMsg := ""
	if chain != nil {
		chainMsg = chain.Error()
	}
	q := r.URL.Query()
	q.Del("before")
	older := ""
	if more {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(rows[len(rows)-1].Seq, 10))
		older = "/audit?" + next.Encode()
	}
	s.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Data: map[string]any{"Rows": view, "ChainOK": chain == nil,
		"ChainProblem": chainMsg, "Q": r.URL.Query(), "CSV": "/audit.csv?" + q.Encode(), "Older": older,
		"Newest": aq.Before > 0, "First": "/audit?" + q.Encode()}})
}

// auditCSV is GET /audit.csv: every row matching the audit page's filter.
func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request) {
	me := sessionFrom(r.Context()).Identity
	if err := mayReadAudit(me); err != nil {
		s.failErr(w, r, err)
		return
	}
	aq := s.auditQueryOf(r)
	rows, _, err := s.auditRows(r.Context(), aq, 0)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	d := aq.detail()
	n := len(rows)
	d.Rows = &n
	if err := s.auditOrErr(r.Context(), me, audit.AuditExported, "", aq.SessionID, d, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="chaperone-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "time", "who", "action", "target", "session", "detail", "hash"})
	for _, a := range rows {
		_ = cw.Write([]string{strconv.FormatInt(a.Seq, 10), a.Time.UTC().Format(time.RFC3339Nano), csvSafe(a.ActorName), csvSafe(string(a.Action)),
			csvSafe(a.Target), csvSafe(a.SessionID), csvSafe(a.Detail), a.Hash})
	}
	cw.Flush()
}
