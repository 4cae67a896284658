package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxBody bounds every request body.
const maxBody = 64 << 10

// Config configures the web layer.
type Config struct {
	PublicURL string // e.g. "http://localhost:8080"
	Logger    *slog.Logger
	Now       func() time.Time
	// Checks are extra readiness checks (S3, ...) run by /readyz, by name.
	Checks map[string]func(context.Context) error
	// Schedule is the school's policy for requesting and opening sessions.
	Schedule lobby.SchedulePolicy
	// RosterGroups are IdP groups offered as class rosters.
	RosterGroups []string
	// Rooms are the live rooms (live.Rooms); nil means rooms cannot open.
	Rooms Rooms
	// MetricsToken, when set, serves /metrics on this server too, to
	// requests bearing it (Authorization: Bearer). Unset, /metrics is only
	// where the caller serves MetricsHandler (metrics_listen).
	MetricsToken string
	// Recordings is the recordings' storage (playback, holds, the
	// retention sweep: live.Recordings); nil means none.
	Recordings Archive
	// Concerns is safeguarding (safeguard.Service); required.
	Concerns Concerns
	// Degradable are readiness checks whose failure leaves the gateway
	// serving with less (recording storage): /readyz lists them under
	// "degraded" and stays ready.
	Degradable map[string]func(context.Context) error
	// RecordingReauth is how recent a sign-in must be to play, download or
	// release recordings (0 means 15 minutes).
	RecordingReauth time.Duration
	// Limits are the sign-in and connection attempt limits.
	Limits Limits
	// TrustedProxies are reverse proxies in front of the gateway: from them,
	// X-Forwarded-For names the client's address (for limits and audit).
	TrustedProxies []netip.Prefix
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg    Config
	auth   *auth.Service
	store  store.Store
	log    *slog.Logger
	pages  map[string]*template.Template
	mux    *http.ServeMux
	limits throttles
	grants playbackGrants
}

// New builds the web server.
func New(cfg Config, a *auth.Service, st store.Store) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concerns == nil {
		return nil, errors.New("web: no concerns service configured (safeguard)")
	}
	s := &Server{cfg: cfg, auth: a, store: st, log: cfg.Logger, mux: http.NewServeMux()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.limits = newThrottles(cfg.Limits, cfg.Now)
	s.grants = playbackGrants{m: map[string]time.Time{}}
	s.routes()
	return s, nil
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{"roleLabel": auth.RoleLabel, "roleNames": auth.RoleNames, "add": func(a, b int) int { return a + b }}
	s.pages = map[string]*template.Template{}
	entries, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("list templates: %w", err)
	}
	for _, e := range entries {
		name := e[len("templates/") : len(e)-len(".html")]
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", e)
		if err != nil {
			return fmt.Errorf("parse template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.MetricsToken != "" {
		s.mux.Handle("GET /metrics", s.MetricsHandler())
	}
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("GET /auth/callback", s.callback)
	s.mux.HandleFunc("POST /logout", s.requireSession(s.logout))

	rs := s.requireSession
	s.mux.HandleFunc("GET /sessions", rs(s.pageMySessions))
	s.mux.HandleFunc("GET /sessions/new", rs(s.pageNewSession))
	s.mux.HandleFunc("POST /sessions", rs(s.postNewSession))
	s.mux.HandleFunc("GET /sessions/{id}", rs(s.pageSession))
	s.mux.HandleFunc("POST /sessions/{id}/approve", rs(s.postDecide(true)))
	s.mux.HandleFunc("POST /sessions/{id}/reject", rs(s.postDecide(false)))
	s.mux.HandleFunc("POST /sessions/{id}/cancel", rs(s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		ss, err := s.cancel(r.Context(), who, r.PathValue("id"), r.PostFormValue("reason"), auth.ClientIP(r))
		return "/sessions/" + ss.ID + "?done=cancelled", err
	})))
	s.mux.HandleFunc("POST /sessions/{id}/open", rs(s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		ss, err := s.open(r.Context(), who, r.PathValue("id"), auth.ClientIP(r))
		return "/rooms/" + ss.ID, err
	})))
	s.mux.HandleFunc("GET /approvals", rs(s.pageApprovals))
	s.mux.HandleFunc("GET /delegations", rs(s.pageDelegations))
	s.mux.HandleFunc("POST /delegations", rs(s.postDelegation))
	s.mux.HandleFunc("POST /delegations/{id}/revoke", rs(s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		_, err := s.revokeDelegation(r.Context(), who, r.PathValue("id"), auth.ClientIP(r))
		return "/delegations?done=revoked", err
	})))
	s.mux.HandleFunc("GET /rooms/{id}", rs(s.pageRoom))
	s.mux.HandleFunc("GET /sessions/{id}/concern", rs(s.pageConcern))
	s.mux.HandleFunc("POST /sessions/{id}/concern", rs(s.postConcern))
	s.mux.HandleFunc("GET /concerns/{id}", rs(s.pageConcernView))
	s.mux.HandleFunc("GET "+worryPath, rs(s.pageWorry))
	s.mux.HandleFunc("POST "+worryPath, rs(s.postWorry))
	s.mux.HandleFunc("GET /ws/rooms/{id}", rs(s.wsRoom))

	// The DSL's recordings and the audit log.
	s.mux.HandleFunc("GET /recordings", rs(s.pageRecordings))
	s.mux.HandleFunc("GET /recordings/{id}", rs(s.pageRecording))
	s.mux.HandleFunc("GET /recordings/{id}/media/{file}", rs(s.recordingMedia))
	s.mux.HandleFunc("GET /recordings/{id}/chat.csv", rs(s.transcriptDownload))
	s.mux.HandleFunc("POST /recordings/{id}/hold", rs(s.postHold(true)))
	s.mux.HandleFunc("POST /recordings/{id}/release", rs(s.postHold(false)))
	s.mux.HandleFunc("GET /admin/roster", rs(s.pageRoster))
	s.mux.HandleFunc("POST "+rosterUploadPath, s.limitRosterUpload(rs(s.postRosterPreview)))
	s.mux.HandleFunc("GET /admin/roster/preview/{id}", rs(s.pageRosterPreview))
	s.mux.HandleFunc("POST /admin/roster/preview/{id}/apply", rs(s.postRosterApply))
	s.mux.HandleFunc("GET /audit", rs(s.pageAudit))
	s.mux.HandleFunc("GET /audit.csv", rs(s.auditCSV))
	s.mux.HandleFunc("GET /sessions/{id}/attendance.csv", rs(s.attendanceCSV))

	s.mux.HandleFunc("GET /api/me", rs(s.apiMe))
	s.mux.HandleFunc("GET /api/sessions", rs(s.apiListSessions))
	s.mux.HandleFunc("POST /api/sessions", rs(s.apiCreateSession))
	s.mux.HandleFunc("GET /api/sessions/{id}", rs(s.apiGetSession))
	s.mux.HandleFunc("POST /api/sessions/{id}/approve", rs(s.apiDecide(true)))
	s.mux.HandleFunc("POST /api/sessions/{id}/reject", rs(s.apiDecide(false)))
	s.mux.HandleFunc("POST /api/sessions/{id}/cancel", rs(s.apiCancel))
	s.mux.HandleFunc("POST /api/sessions/{id}/open", rs(s.apiOpen))
	s.mux.HandleFunc("GET /api/approvals", rs(s.apiApprovals))
	s.mux.HandleFunc("GET /api/delegations", rs(s.apiListDelegations))
	s.mux.HandleFunc("POST /api/delegations", rs(s.apiCreateDelegation))
	s.mux.HandleFunc("POST /api/delegations/{id}/revoke", rs(s.apiRevokeDelegation))
	s.mux.HandleFunc("/api/", rs(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "not_found", "There is no such API endpoint.")
	}))
	s.mux.HandleFunc("/", s.notFound)
}

// Handler returns the HTTP handler with the common middleware.
func (s *Server) Handler() http.Handler {
	return s.recoverer(realIP(securityHeaders(limitBody(s.mux), strings.HasPrefix(s.cfg.PublicURL, "https://")), s.cfg.TrustedProxies))
}

// page is the data every page template gets.
type page struct {
	Title    string
	User     *auth.Identity
	CSRF     string
	Heading  string
	Message  string
	Error    bool
	Back     string
	BackText string
	Refusal  *auth.Refusal
	Next     []link
	Data     any
}

type link struct{ Text, Href string }

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("missing template", slog.String("name", name))
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	if sess := sessionFrom(r.Context()); sess != nil && p.User == nil {
		p.User, p.CSRF = &sess.Identity, sess.CSRFToken
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		s.log.Error("render", slog.String("page", name), slog.Any("err", err))
	}
}

// message renders a plain page with a heading and a sentence.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	s.render(w, r, status, "message", page{Title: heading, Heading: heading, Message: msg, Error: status >= 400})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.withOptionalSession(func(w http.ResponseWriter, r *http.Request) {
		s.message(w, r, http.StatusNotFound, "Page not found", "There is no page at this address. Check the link, or go back to the start page.")
	})(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{"database": s.store.Ping, "identity_provider": s.auth.Ping}
	for k, f := range s.cfg.Checks {
		checks[k] = f
	}
	result := map[string]string{}
	ok := true
	for name, check := range checks {
		if err := check(ctx); err != nil {
			s.log.Warn("readiness check failed", slog.String("check", name), slog.Any("err", err))
			result[name] = "unavailable"
			ok = false
		} else {
			result[name] = "ok"
		}
	}
	degraded := map[string]string{}
	for name, check := range s.cfg.Degradable {
		if err := check(ctx); err != nil {
			s.log.Warn("readiness: degraded", slog.String("check", name), slog.Any("err", err))
			result[name] = "unavailable"
			degraded[name] = degradedWhy(name, err)
		} else {
			result[name] = "ok"
		}
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": result, "degraded": degraded})
}

// degradedWhy says what a failed degradable check means for lessons.
func degradedWhy(name string, err error) string {
	if name == "recording_storage" {
		if live.Misconfigured(err) {
			return "the recording bucket is not usable (missing, or without Object Lock or versioning): lessons that must be recorded are held"
		}
		return "recording storage is unreachable: lessons that must be recorded are held until it is back; others carry media"
	}
	return "unavailable"
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.withOptionalSession(func(w http.ResponseWriter, r *http.Request) {
		p := page{Title: "Home"}
		if sess := sessionFrom(r.Context()); sess != nil {
			p.Next = s.nextSteps(r, sess.Identity)
			p.Data = s.homeData(r, sess.Identity)
		}
		s.render(w, r, http.StatusOK, "home", p)
	})(w, r)
}

// nextSteps lists what a person in these roles can do from the home page.
func (s *Server) nextSteps(r *http.Request, id auth.Identity) []link {
	var l []link
	if id.Has(auth.RolePupil) {
		l = append(l, link{Text: "My lessons: join a live lesson when your teacher opens it", Href: "/sessions"},
			link{Text: "I'm worried about something: tell the safeguarding team", Href: worryPath})
	}
	if id.Has(auth.RoleStaff) {
		l = append(l, link{Text: "My sessions", Href: "/sessions"}, link{Text: "Request a live session", Href: "/sessions/new"})
	}
	if ds, err := s.delegations(r.Context()); err == nil && lobby.IsApprover(id, ds, s.now()) {
		text := "Waiting for approval"
		if pending, err := s.store.ListSessions(r.Context(), store.SessionFilter{States: []string{store.StateRequested}, EndAfter: s.now()}); err == nil {
			text = fmt.Sprintf("Waiting for approval (%d)", len(pending))
		}
		l = append(l, link{Text: text, Href: "/approvals"})
	}
	if id.Has(auth.RoleHead) {
		l = append(l, link{Text: "Delegate approval to a senior leader", Href: "/delegations"})
	}
	if id.Has(auth.RoleDSL) {
		l = append(l, link{Text: "Recordings", Href: "/recordings"})
	}
	if id.Has(auth.RoleDSL) || id.Has(auth.RoleAdmin) {
		l = append(l, link{Text: "Audit log", Href: "/audit"})
	}
	if id.Has(auth.RoleAdmin) {
		l = append(l, link{Text: "Class lists from the MIS (import OneRoster or School Data Sync)", Href: "/admin/roster"})
		l = append(l, link{Text: "Gateway readiness (database, identity provider, storage)", Href: "/readyz"})
	}
	return l
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.limits.signinStart.Allow(addrKey(auth.ClientIP(r))) {
		s.tooMany(w, r, "There have been too many sign-in attempts from this network. Wait a minute, then try again.")
		return
	}
	q := r.URL.Query()
	lo := auth.LoginOptions{Again: q.Get("again") == "1"}
	if q.Get("fresh") == "1" {
		lo.MaxAge = s.reauthWindow()
	}
	u, c, err := s.auth.BeginLogin(r.Context(), q.Get("next"), lo)
	if err != nil {
		s.log.Error("begin login", slog.Any("err", err))
		s.message(w, r, http.StatusServiceUnavailable, "Sign-in is not available", "chaperone could not start your sign-in. Try again in a minute; if it keeps happening, tell your school's IT team.")
		return
	}
	http.SetCookie(w, c)
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	// Failed sign-ins are counted per address; past the limit a failure is
	// answered 429. A callback whose state is not the one this browser
	// started (forged, replayed, guessed) is refused before any work once
	// the limit is reached. One that carries its own browser's state is
	// checked in full and, if it succeeds, let in: one pupil's refused
	// account cannot lock a whole school (one NAT address) out.
	key := addrKey(auth.ClientIP(r))
	bound := auth.StateBound(r)
	if !bound && !s.limits.signinFail.Allow(key) {
		s.tooMany(w, r, "There have been too many failed sign-ins from this network. Wait a minute, then try again.")
		return
	}
	res, err := s.auth.FinishLogin(r.Context(), r)
	http.SetCookie(w, s.auth.ClearLoginCookie())
	var ref *auth.Refusal
	if errors.As(err, &ref) {
		over := false
		if bound {
			over = s.limits.signinFail.Blocked(key)
			s.limits.signinFail.Add(key)
		}
		status := http.StatusForbidden
		if over || ref.Code == auth.RefuseTooMany {
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", "60")
		}
		s.render(w, r, status, "refused", page{Title: "You cannot sign in", Refusal: ref})
		return
	}
	if err != nil {
		s.log.Error("finish login", slog.Any("err", err))
		s.message(w, r, http.StatusInternalServerError, "Sign-in failed", "chaperone could not complete your sign-in. Try again in a minute.")
		return
	}
	// A new session ID at every sign-in: the browser's previous session (if
	// any) ends, so a cookie planted or seen before sign-in is worthless.
	if old, err := s.auth.SessionFromRequest(r); err == nil && old.ID != res.Session.ID {
		if err := s.auth.Supersede(r.Context(), old); err != nil {
			s.log.Error("end previous session", slog.Any("err", err))
		}
	}
	http.SetCookie(w, res.Cookie)
	http.Redirect(w, r, res.ReturnTo, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	if err := s.auth.Logout(r.Context(), sess, auth.ClientIP(r)); err != nil {
		s.log.Error("logout", slog.Any("err", err))
	}
	http.SetCookie(w, s.auth.ClearSessionCookie())
	s.render(w, r.WithContext(context.Background()), http.StatusOK, "message", page{Title: "Signed out", Heading: "You have signed out",
		Message: "You have signed out of chaperone. On a shared computer, also sign out of your school account and close the browser."})
}
