package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/chaperone-edu/chaperone/auth"
)

type ctxKey int

const sessionKey ctxKey = 1

func sessionFrom(ctx context.Context) *auth.Session {
	s, _ := ctx.Value(sessionKey).(*auth.Session)
	return s
}

func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/ws/") || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// withOptionalSession attaches the session, if any, to the request context.
// A cookie that names no valid session is cleared.
func (s *Server) withOptionalSession(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.auth.SessionFromRequest(r)
		switch {
		case err == nil:
			r = r.WithContext(context.WithValue(r.Context(), sessionKey, sess))
		case errors.Is(err, auth.ErrNoSession):
			if _, cerr := r.Cookie(auth.SessionCookie); cerr == nil {
				http.SetCookie(w, s.auth.ClearSessionCookie())
			}
		default:
			s.log.Error("session lookup", slog.Any("err", err))
		}
		next(w, r)
	}
}

// requireSession lets only signed-in people through; state-changing methods
// also need the session's CSRF token. Pages send people to sign in; the API
// answers 401.
func (s *Server) requireSession(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.auth.SessionFromRequest(r)
		if err != nil {
			if !errors.Is(err, auth.ErrNoSession) {
				s.log.Error("session lookup", slog.Any("err", err))
			}
			if _, cerr := r.Cookie(auth.SessionCookie); cerr == nil {
				http.SetCookie(w, s.auth.ClearSessionCookie())
			}
			if wantsJSON(r) || r.Method != http.MethodGet {
				s.fail(w, r, http.StatusUnauthorized, "not_signed_in", "You are not signed in, or your sign-in has expired. Sign in again.")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey, sess))
		if !safeMethod(r.Method) {
			if err := auth.CheckCSRF(r, sess); err != nil {
				s.fail(w, r, http.StatusForbidden, "csrf", "This request was not accepted because its security token was missing or wrong. Reload the page and try again.")
				return
			}
		}
		next(w, r)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// apiError is the JSON body of every API error.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// fail answers an error as JSON for the API and as a page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, apiError{Error: code, Message: msg})
		return
	}
	heading := map[int]string{400: "That did not work", 401: "Please sign in", 403: "Not allowed", 404: "Not found", 409: "That did not work", 413: "Too large", 429: "Too many attempts"}[status]
	if heading == "" {
		heading = "Something went wrong"
	}
	s.message(w, r, status, heading, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// securityHeaders sets the browser defences on every response. httpsOnly
// (the public URL is https) turns on HSTS even when TLS ends at a proxy in
// front of the gateway.
func securityHeaders(next http.Handler, httpsOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil || httpsOnly {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A class-list upload is bounded by its own handler (limitRosterUpload).
		if r.Body != nil && !(r.Method == http.MethodPost && r.URL.Path == rosterUploadPath) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", slog.Any("panic", v), slog.String("path", r.URL.Path))
				http.Error(w, "Something went wrong on our side. Please try again.", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// realIP takes the client's address from X-Forwarded-For when the request
// comes from a trusted proxy: the rightmost address that is not itself a
// trusted proxy (addresses further left could be made up by the client).
func realIP(next http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddr(auth.ClientIP(r))
		if err == nil && isTrusted(peer) {
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil {
					break
				}
				if !isTrusted(a) || i == 0 {
					r.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
					break
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
