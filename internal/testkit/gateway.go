package testkit

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/safeguard"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
	"github.com/chaperone-edu/chaperone/web"
)

// DemoPassword is the password of every seeded demo account.
const DemoPassword = "oakfield"

// DemoOTP is the demo IdP's one-time code for accounts with a second
// factor (head, slt, dsl, itadmin); other accounts ignore it.
const DemoOTP = "123456"

// GatewayOptions adjust StartGateway.
type GatewayOptions struct {
	// Issuer, ClientID and ClientSecret point the gateway at another provider
	// (a BadIdP) instead of starting the demo IdP.
	Issuer, ClientID, ClientSecret string
	// Now is the clock of the web layer (scheduling, approval windows, audit
	// times); nil means Now (the real clock, moved by ClockOffsetEnv).
	Now func() time.Time
	// AuthNow is the clock of sign-in and web sessions; nil means time.Now.
	// It is separate because ID tokens from the real demo IdP carry real times.
	AuthNow func() time.Time
	// Policy overrides the demo school's identity policy when set.
	Policy *auth.Policy
	// Groups fetches the groups of Entra accounts with a group overage
	// (auth.Config.Groups), e.g. an auth.Graph on a FakeGraph.
	Groups auth.GroupSource
	// ExtraUsers are added to the demo IdP's seeded users.
	ExtraUsers []demoidp.User
	// S3, when set, gives the gateway a recorder storing to a new locked
	// bucket on that server; without it recording cannot start (fail closed).
	S3 *S3
	// SpoolDir is the recorder's spool (default: a temporary directory).
	SpoolDir string
	// StaffGrace is how long a room waits for staff (0 = 5 minutes).
	StaffGrace time.Duration
	// RejoinGrace is how long a participant may be away and come back
	// without admission (0 = lobby.DefaultRejoinGrace).
	RejoinGrace time.Duration
	// LogTo, when set, also receives every log line of the gateway (debug
	// level and up), e.g. to check that no secret is ever logged.
	LogTo io.Writer
	// Limits override the gateway's attempt limits.
	Limits web.Limits
	// TLS serves the gateway over HTTPS (a test certificate; clients from
	// Gateway.TLSClient trust it): Secure cookies, HSTS.
	TLS bool
	// SMTP, when set, is where the gateway sends concern e-mail (plain
	// SMTP, retrying after MailRetry).
	SMTP *SMTPServer
	// MailRetry is the wait between e-mail attempts (default 200 ms).
	MailRetry time.Duration
	// DSLEmails are always told of a concern (web.Config.DSLEmails).
	DSLEmails []string
	// MetricsToken also serves /metrics on the gateway's address, to this
	// bearer token (web.Config.MetricsToken).
	MetricsToken string
	// WrapStore, when set, wraps the store the gateway uses (not
	// Gateway.Store), e.g. to inject failures.
	WrapStore func(store.Store) store.Store
	// S3Down stops the S3 server (after making the bucket) before the
	// gateway starts: it starts without recording storage.
	S3Down bool
	// RecorderOnClock times recordings by Now too (default: the real
	// clock), for a test whose Now runs (Clock.Run) and that compares a
	// recording's times with the audit log's.
	RecorderOnClock bool
	// ReconcileEvery is the wait between reconciler passes (default 1 s).
	ReconcileEvery time.Duration
	// SFU, when set, adjusts the media server's configuration (by default
	// on 127.0.0.1 with loopback candidates), e.g. to listen on a veth
	// address with ICE-TCP.
	SFU func(*sfu.Config)
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
	// MetricsURL is /metrics on an address of its own, as metrics_listen
	// serves it (the gateway's own address has no /metrics).
	MetricsURL string
	Bucket     *recording.Bucket // with GatewayOptions.S3
	// Recordings is the gateway's recording lifecycle and reconciler.
	Recordings *live.Recordings
	// Rooms are the gateway's live rooms (snapshots, SFU counters).
	Rooms *live.Rooms
	// Concerns is the gateway's safeguarding service.
	Concerns *safeguard.Service
	// BucketName is the bucket of Bucket.
	BucketName string
	// SFU is the gateway's media server.
	SFU *sfu.SFU
}

// DemoPolicy is the identity policy of the demo school (the seeded users).
func DemoPolicy() auth.Policy {
	return auth.Policy{
		AllowedDomains: []string{"oakfield.example"},
		PupilGroups:    []string{"pupils"}, StaffGroups: []string{"staff"}, SLTGroups: []string{"slt"},
		HeadGroups: []string{"head"}, DSLGroups: []string{"dsl"}, AdminGroups: []string{"it-admins"},
	}
}

// DemoYearLeads are the demo school's year leads (Directors of Learning):
// Priya Sharma (year8lead) for year 8, Daniel Hughes (year9lead) for year 9.
func DemoYearLeads() notify.YearLeads {
	return notify.YearLeads{"year-8": "p.sharma@oakfield.example", "year-9": "d.hughes@oakfield.example"}
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
	if o.Now == nil {
		o.Now = Now
	}
	gw := &Gateway{}
	gwSrv := httptest.NewUnstartedServer(nil)
	gw.URL = "http://" + gwSrv.Listener.Addr().String()
	if o.TLS {
		gw.URL = "https://" + gwSrv.Listener.Addr().String()
	}
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
	settled := &settledStore{Store: st}
	gw.Store = settled
	var wst store.Store = st // what the gateway uses
	if o.WrapStore != nil {
		wst = o.WrapStore(st)
	}
	policy := DemoPolicy()
	if o.Policy != nil {
		policy = *o.Policy
	}
	logger := TestLogger(t)
	if o.LogTo != nil {
		logger = slog.New(slog.NewTextHandler(io.MultiWriter(o.LogTo, tWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	gw.Auth, err = auth.New(ctx, auth.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		RedirectURL: gw.URL + "/auth/callback", Policy: policy, Now: o.AuthNow, Logger: logger, SecureCookies: o.TLS, Groups: o.Groups,
		Memberships: roster.Memberships{Store: st}}, st)
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	sfuCfg := sfu.Config{ListenIP: "127.0.0.1", Loopback: true, Logger: TestLogger(t)}
	if o.SFU != nil {
		o.SFU(&sfuCfg)
	}
	media, err := sfu.New(sfuCfg)
	if err != nil {
		t.Fatalf("sfu: %v", err)
	}
	gw.SFU = media
	t.Cleanup(func() { media.Close() })
	grace := o.StaffGrace
	if grace == 0 {
		grace = 5 * time.Minute
	}
	var rec *recording.Recorder
	if o.S3 != nil {
		gw.BucketName = "rec-" + randomHex(t, 6)
		o.S3.MakeLockedBucket(t, gw.BucketName)
		if o.S3Down {
			o.S3.Stop()
		}
		gw.Bucket, err = recording.NewBucket(recording.BucketConfig{Endpoint: o.S3.Endpoint, Bucket: gw.BucketName, AccessKey: o.S3.AccessKey,
			SecretKey: o.S3.SecretKey, Region: o.S3.Region, RetentionDays: 28, LockMode: recording.LockGovernance})
		if err != nil {
			t.Fatalf("open bucket: %v", err)
		}
		if !o.S3Down {
			if err := gw.Bucket.Check(ctx); err != nil {
				t.Fatalf("check bucket: %v", err)
			}
		}
		spool := o.SpoolDir
		if spool == "" {
			spool = filepath.Join(dir, "spool")
		}
		var recNow func() time.Time
		if o.RecorderOnClock {
			recNow = o.Now
		}
		rec, err = recording.New(recording.Config{Bucket: gw.Bucket, SpoolDir: spool, Retry: 500 * time.Millisecond, Logger: TestLogger(t),
			NextPart: wst.NextRecordingPart, Now: recNow})
		if err != nil {
			t.Fatalf("recorder: %v", err)
		}
	}
	var mailer *notify.Mailer
	if o.SMTP != nil {
		retry := o.MailRetry
		if retry == 0 {
			retry = 200 * time.Millisecond
		}
		mailer, err = notify.NewMailer(notify.SMTPConfig{Host: o.SMTP.Host, Port: o.SMTP.Port, From: "chaperone@oakfield.example", TLS: notify.TLSNone,
			Timeout: 10 * time.Second, Retries: []time.Duration{retry, retry, retry}}, TestLogger(t))
		if err != nil {
			t.Fatalf("mailer: %v", err)
		}
		t.Cleanup(mailer.Close) // before the store closes
	}
	every := o.ReconcileEvery
	if every == 0 {
		every = time.Second
	}
	gw.Recordings = live.New(live.Config{Store: wst, Recorder: rec, Bucket: gw.Bucket, Now: o.Now, Location: London, Logger: TestLogger(t), Every: every,
		RoomOpen: func(id string) bool { return gw.Rooms.IsOpen(id) }})
	gw.Concerns = safeguard.New(safeguard.Config{Store: wst, Bucket: gw.Bucket, Mailer: mailer, YearLeads: DemoYearLeads(), DSLEmails: o.DSLEmails,
		PublicURL: gw.URL, Now: o.Now, Logger: logger})
	gw.Rooms = live.NewRooms(live.RoomsConfig{Store: wst, SFU: media, Recorder: rec, Recordings: gw.Recordings,
		Policy: lobby.Policy{Record: "one_to_one"}, Now: o.Now, StaffGrace: grace, RejoinGrace: o.RejoinGrace, Logger: logger,
		Finished: gw.Concerns.Finished})
	gw.Web, err = web.New(web.Config{Rooms: gw.Rooms, Recordings: gw.Recordings, Concerns: gw.Concerns, Degradable: map[string]func(context.Context) error{"recording_storage": gw.Recordings.Ready}, PublicURL: gw.URL, Logger: logger, Now: o.Now, Schedule: DemoSchedule(),
		RosterGroups: []string{"year-7", "year-8", "year-9"}, Limits: o.Limits, MetricsToken: o.MetricsToken}, gw.Auth, wst)
	t.Cleanup(gw.Web.Close)
	w := gw.Web
	settled.web = w
	if err != nil {
		t.Fatalf("web: %v", err)
	}
	rctx, stopReconciler := context.WithCancel(context.Background())
	reconciled := make(chan struct{})
	go func() { defer close(reconciled); gw.Recordings.Run(rctx) }()
	t.Cleanup(func() { stopReconciler(); <-reconciled }) // runs before the web and store cleanups
	gwSrv.Config.Handler = w.Handler()
	if o.TLS {
		gwSrv.StartTLS()
	} else {
		gwSrv.Start()
	}
	gw.Server = gwSrv
	t.Cleanup(gwSrv.Close)
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", w.MetricsHandler())
	metricsSrv := httptest.NewServer(metricsMux)
	t.Cleanup(metricsSrv.Close)
	gw.MetricsURL = metricsSrv.URL + "/metrics"
	return gw
}

// Login signs in through the gateway and the demo IdP's login form with a
// real HTTP client, following every redirect, and returns the final
// response's status and body.
func Login(t testing.TB, c *http.Client, gatewayURL, username, password, otp string) (int, string) {
	t.Helper()
	return LoginAt(t, c, gatewayURL+"/login", username, password, otp)
}

// LoginAt is Login starting from startURL: any gateway address that leads to
// the IdP's login form (e.g. a sign-in asked for by a page).
func LoginAt(t testing.TB, c *http.Client, startURL, username, password, otp string) (int, string) {
	t.Helper()
	status, body, err := signin.SubmitAt(context.Background(), c, startURL, username, password, otp)
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

// TLSClient is a cookie client that trusts the gateway's test certificate
// (for a gateway started with TLS).
func (gw *Gateway) TLSClient(t testing.TB) *http.Client {
	c := CookieClient(t)
	c.Transport.(*http.Transport).TLSClientConfig = gw.Server.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return c
}

// settledStore is the store as a test reads it: the audit log includes the
// rows live rooms have queued so far (rooms write them off their goroutine),
// so a test that caused an event can read its row at once.
type settledStore struct {
	store.Store
	web *web.Server
}

func (s *settledStore) settle(ctx context.Context) {
	if s.web == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = s.web.AuditWritten(wctx)
}

func (s *settledStore) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	s.settle(ctx)
	return s.Store.ListAudit(ctx, f)
}

func (s *settledStore) VerifyAudit(ctx context.Context) error {
	s.settle(ctx)
	return s.Store.VerifyAudit(ctx)
}
