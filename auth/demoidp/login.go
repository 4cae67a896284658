package demoidp

import (
	"crypto/subtle"
	"html/template"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/chaperone-edu/chaperone/auth"
)

const (
	loginPath     = "/login/username"
	loggedOutPath = "/logged-out"
	demoOTP       = "123456"

	msgWrongLogin = "Wrong username or password."
	msgWrongOTP   = "Wrong one-time code."
	msgTooMany    = "Too many wrong attempts from this computer. Wait a minute, then try again."
	msgExpired    = "This sign-in request has expired or was already used. Go back to the application and sign in again."
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Oakfield demo school sign-in</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
label{display:block;margin-top:1rem;font-weight:600}
input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
button{margin-top:1.5rem;font-size:1rem;padding:.5rem 1.5rem}
.error{color:#900;border:2px solid #900;padding:.5rem}
.hint{margin:.25rem 0 0;font-size:.9rem;color:#333}
</style>
</head>
<body>
<main>
<h1>Oakfield demo school sign-in</h1>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
{{if .ID}}<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus value="{{.Username}}"{{if .Error}} aria-describedby="error"{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="otp">One-time code (demo: 123456)</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby="otp-hint">
<p class="hint" id="otp-hint">Optional: only for accounts with a second factor.</p>
<button type="submit">Sign in</button>
</form>{{else}}<p>{{.Message}}</p>{{end}}
</main>
</body>
</html>
`))

type page struct{ ID, Action, Username, Error, Message string }

func renderPage(w http.ResponseWriter, status int, pg page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, pg)
}

// serveLogin is GET /login/username?authRequestID=ID (op redirects here from
// authorize) and POST /login/username with id, username, password, otp.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	var id string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id = r.URL.Query().Get("authRequestID")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id = r.PostForm.Get("id")
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	clientID, ok := p.st.pending(id)
	if !ok {
		renderPage(w, http.StatusBadRequest, page{Error: msgExpired, Message: "No sign-in is in progress."})
		return
	}
	pg := page{ID: id, Action: p.base + loginPath}
	if r.Method != http.MethodPost {
		renderPage(w, http.StatusOK, pg)
		return
	}

	pg.Username = r.PostForm.Get("username")
	addr := auth.ClientIP(r)
	if p.failures.Blocked(addr) {
		w.Header().Set("Retry-After", "60")
		pg.Error = msgTooMany
		renderPage(w, http.StatusTooManyRequests, pg)
		return
	}
	u, known := p.users[normUsername(pg.Username)]
	pwOK := subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(p.password)) == 1
	if !known || !pwOK {
		// Log the username only when it is an account: a mistyped password can land in that field.
		p.log.WarnContext(r.Context(), "demo sign-in refused: wrong username or password", "username", knownName(u, known), "client", clientID)
		p.failures.Add(addr)
		pg.Error = msgWrongLogin
		renderPage(w, http.StatusOK, pg)
		return
	}
	amr := []string{"pwd"}
	if otp := r.PostForm.Get("otp"); otp != "" && u.MFA {
		if subtle.ConstantTimeCompare([]byte(otp), []byte(demoOTP)) != 1 {
			p.log.WarnContext(r.Context(), "demo sign-in refused: wrong one-time code", "username", u.Username, "client", clientID)
			p.failures.Add(addr)
			pg.Error = msgWrongOTP
			renderPage(w, http.StatusOK, pg)
			return
		}
		amr = append(amr, "mfa", "otp")
	}
	if err := p.st.completeLogin(id, u.Sub, amr); err != nil {
		renderPage(w, http.StatusBadRequest, page{Error: msgExpired, Message: "No sign-in is in progress."})
		return
	}
	p.log.InfoContext(r.Context(), "demo sign-in", "username", u.Username, "sub", u.Sub, "client", clientID, "amr", amr)
	// op's callback issues the code and redirects to the client's redirect_uri.
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), id), http.StatusSeeOther)
}

func knownName(u User, known bool) string {
	if known {
		return u.Username
	}
	return "(unknown)"
}

func serveLoggedOut(w http.ResponseWriter, _ *http.Request) {
	renderPage(w, http.StatusOK, page{Message: "You are signed out of the Oakfield demo school."})
}
