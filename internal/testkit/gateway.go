package testkit

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
	"github.com/chaperone-edu/chaperone/web"
)

// DemoPassword is the password of every seeded demo account.
const DemoPassword = "oakfield"

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// GatewayOptions adjust StartGateway.
type GatewayOptions struct {
	// Issuer, ClientID and ClientSecret point the gateway at another provider
	// (a BadIdP) instead of starting the demo IdP.
	Issuer, ClientID, ClientSecret string
	// Now is the clock of the web layer (scheduling, approval windows, audit
	// times); nil means time.Now.
	Now func() time.Time
	// AuthNow is the clock of sign-in and web sessions; nil means time.Now.
	// It is separate because ID tokens from the real demo IdP carry real times.
	AuthNow func() time.Time
	// Policy overrides the demo school's identity policy when set.
	Policy *auth.Policy
	// ExtraUsers are added to the demo IdP's seeded users.
	ExtraUsers []demoidp.User
	// S3, when set, gives the gateway a recorder storing to a new locked
	// bucket on that server; without it recording cannot start (fail closed).
	S3 *S3
	// SpoolDir is the recorder's spool (default: a temporary directory).
	SpoolDir string
	// StaffGrace is how long a room waits for staff (0 = 5 minutes).
	StaffGrace time.Duration
}

// Gateway is a running chaperone gateway (web + auth + SQLite store) and,
// unless another issuer was given, the demo IdP it signs in with.
type Gateway struct {
	URL    string
	IdP    *demoidp.Provider
	IdPURL string
	Store  store.Store
	Auth   *auth.Service
	Web    *web.Server
	Server *httptest.Server
	Bucket *recording.Bucket // with GatewayOptions.S3
	// BucketName is the bucket of Bucket.
	BucketName string
}

// DemoPolicy is the identity policy of the demo school (the seeded users).
func DemoPolicy() auth.Policy {
	return auth.Policy{
		AllowedDomains: []string{"oakfield.example"},
		PupilGroups:    []string{"pupils"}, StaffGroups: []string{"staff"}, SLTGroups: []string{"slt"},
		HeadGroups: []string{"head"}, DSLGroups: []string{"dsl"}, AdminGroups: []string{"it-admins"},
	}
}

// London is the demo school's time zone.
var London = mustLoad("Europe/London")

func mustLoad(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// DemoSchedule is the demo school's scheduling policy.
func DemoSchedule() lobby.SchedulePolicy {
	return lobby.DefaultSchedulePolicy([]string{"oakfield.example"}, London)
}

// TestLogger logs to the test's output at warn level and above.
func TestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartGateway starts the demo IdP and a gateway wired to it, on loopback
// test servers closed when the test ends.
func StartGateway(t testing.TB, o GatewayOptions) *Gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	gw := &Gateway{}
	gwSrv := httptest.NewUnstartedServer(nil)
	gw.URL = "http://" + gwSrv.Listener.Addr().String()
	if o.Issuer == "" {
		users, err := demoidp.SeedUsers()
		if err != nil {
			t.Fatalf("seed users: %v", err)
		}
		users = append(users, o.ExtraUsers...)
		idpSrv := httptest.NewUnstartedServer(nil)
		gw.IdPURL = "http://" + idpSrv.Listener.Addr().String()
		o.ClientID, o.ClientSecret, o.Issuer = "chaperone", "test-secret", gw.IdPURL
		gw.IdP, err = demoidp.New(ctx, demoidp.Config{Issuer: gw.IdPURL, Users: users,
			Clients: []demoidp.Client{{ID: o.ClientID, Secret: o.ClientSecret, RedirectURIs: []string{gw.URL + "/auth/callback"}}},
			Logger:  TestLogger(t)})
		if err != nil {
			t.Fatalf("demo IdP: %v", err)
		}
		idpSrv.Config.Handler = gw.IdP.Handler()
		idpSrv.Start()
		t.Cleanup(idpSrv.Close)
	}
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "chaperone.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	gw.Store = st
	policy := DemoPolicy()
	if o.Policy != nil {
		policy = *o.Policy
	}
	gw.Auth, err = auth.New(ctx, auth.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURL: gw.URL + "/auth/callback", Policy: policy, Now: o.AuthNow, Logger: TestLogger(t)}, st)
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	media, err := sfu.New(sfu.Config{ListenIP: "127.0.0.1", Loopback: true, Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("sfu: %v", err)
	}
	t.Cleanup(func() { media.Close() })
	grace := o.StaffGrace
	if grace == 0 {
		grace = 5 * time.Minute
	}
	var rec *recording.Recorder
	if o.S3 != nil {
		gw.BucketName = "rec-" + randomHex(t, 6)
		o.S3.MakeLockedBucket(t, gw.BucketName)
		gw.Bucket, err = recording.OpenBucket(ctx, recording.BucketConfig{Endpoint: o.S3.Endpoint, Bucket: gw.BucketName, AccessKey: o.S3.AccessKey,
			SecretKey: o.S3.SecretKey, Region: o.S3.Region, RetentionDays: 28, LockMode: recording.LockGovernance})
		if err != nil {
			t.Fatalf("open bucket: %v", err)
		}
		spool := o.SpoolDir
		if spool == "" {
			spool = filepath.Join(dir, "spool")
		}
		rec, err = recording.New(recording.Config{Bucket: gw.Bucket, SpoolDir: spool, Retry: 500 * time.Millisecond, Logger: TestLogger(t)})
		if err != nil {
			t.Fatalf("recorder: %v", err)
		}
	}
	gw.Web, err = web.New(web.Config{Recorder: rec, Bucket: gw.Bucket, PublicURL: gw.URL, Logger: TestLogger(t), Now: o.Now, Schedule: DemoSchedule(),
		RosterGroups: []string{"year-7", "year-8", "year-9"}, SFU: media, RoomPolicy: lobby.Policy{Record: "one_to_one"}, StaffGrace: grace}, gw.Auth, st)
	t.Cleanup(gw.Web.Close)
	w := gw.Web
	if err != nil {
		t.Fatalf("web: %v", err)
	}
	gwSrv.Config.Handler = w.Handler()
	gwSrv.Start()
	gw.Server = gwSrv
	t.Cleanup(gwSrv.Close)
	return gw
}

// Login signs in through the gateway and the demo IdP's login form with a
// real HTTP client, following every redirect, and returns the final
// response's status and body.
func Login(t testing.TB, c *http.Client, gatewayURL, username, password, otp string) (int, string) {
	t.Helper()
	status, body, err := signin.Submit(context.Background(), c, gatewayURL, username, password, otp)
	if err != nil {
		t.Fatalf("sign in as %s: %v: %s", username, err, body)
	}
	return status, body
}

// CSRFToken extracts the CSRF token from a page's sign-out form.
func CSRFToken(page string) string {
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}
