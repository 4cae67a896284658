package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
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

// serve wires the packages together and serves until ctx is cancelled.
// ready, when not nil, receives the listening address once serving.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ready chan<- string) error {
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()

	var groups auth.GroupSource
	if cfg.GroupOverage == groupOverageGraph {
		if groups, err = auth.NewGraph(auth.GraphConfig{TokenURL: cfg.GraphTokenURL, BaseURL: cfg.GraphURL, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret}); err != nil {
			return fmt.Errorf("microsoft graph (check group_overage, graph_url, graph_token_url): %w", err)
		}
	}
	a, err := auth.New(ctx, auth.Config{
		Groups:        groups,
		Memberships:   roster.Memberships{Store: st},
		Issuer:        cfg.OIDCIssuer,
		ClientID:      cfg.OIDCClientID,
		ClientSecret:  cfg.OIDCClientSecret,
		RedirectURL:   cfg.PublicURL + "/auth/callback",
		Scopes:        cfg.OIDCScopes,
		SessionIdle:   cfg.SessionIdle,
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
		Logger:        log.With(slog.String("component", "auth")),
		Policy: auth.Policy{
			AllowedDomains:   cfg.AllowedDomains,
			Tenant:           cfg.Tenant,
			PlaceholderWords: cfg.PlaceholderWords,
			PupilGroups:      cfg.PupilGroups,
			StaffGroups:      cfg.StaffGroups,
			SLTGroups:        cfg.SLTGroups,
			HeadGroups:       cfg.HeadGroups,
			DSLGroups:        cfg.DSLGroups,
			AdminGroups:      cfg.AdminGroups,
			PupilDomains:     cfg.PupilDomains,
			StaffDomains:     cfg.StaffDomains,
			RoleList:         cfg.RoleList,
			MFARoles:         mfaRoles(cfg.MFARoles),
			MFAACR:           cfg.MFAACR,
		},
	}, st)
	if err != nil {
		return fmt.Errorf("identity provider %s (check oidc_issuer): %w", cfg.OIDCIssuer, err)
	}
	bucket, err := openStorage(ctx, cfg.S3, log)
	if err != nil {
		return err
	}
	recorder, err := recording.New(recording.Config{Bucket: bucket, SpoolDir: cfg.SpoolDir, Logger: log.With(slog.String("component", "recording")),
		NextPart: st.NextRecordingPart})
	if err != nil {
		return fmt.Errorf("recording spool (check spool_dir): %w", err)
	}
	var rooms *live.Rooms // set below; the reconciler starts once it is
	recs := live.New(live.Config{Store: st, Recorder: recorder, Bucket: bucket, Location: cfg.Location, Logger: log.With(slog.String("component", "live")),
		RoomOpen: func(id string) bool { return rooms.IsOpen(id) }})
	turnCfg, err := cfg.TURN.sfuTURN()
	if err != nil {
		return err
	}
	media, err := sfu.New(sfu.Config{UDPPort: cfg.UDPPort, TURN: turnCfg, TCP: cfg.ICETCPPort >= 0, TCPPort: max(cfg.ICETCPPort, 0), PublicIPs: cfg.ICEPublicIPs, Loopback: cfg.ICELoopback, AllowPrivate: cfg.ICEAllowPrivate,
		Logger: log.With(slog.String("component", "sfu"))})
	if err != nil {
		return fmt.Errorf("media server on UDP port %d, TCP port %d (check udp_port, ice_tcp_port, turn_*): %w", cfg.UDPPort, cfg.ICETCPPort, err)
	}
	defer media.Close()
	log.Info("media server listening", slog.String("udp", media.UDPAddr()), slog.String("tcp", media.TCPAddr()))
	sched := lobby.DefaultSchedulePolicy(cfg.AllowedDomains, cfg.Location)
	sched.RecordPolicy = cfg.RecordPolicy
	var mailer *notify.Mailer
	if cfg.SMTP != nil {
		if mailer, err = notify.NewMailer(*cfg.SMTP, log.With(slog.String("component", "mail"))); err != nil {
			return fmt.Errorf("e-mail (check smtp_host, smtp_from, smtp_tls): %w", err)
		}
		defer mailer.Close()
		log.Info("concern e-mail on", slog.String("smtp_host", cfg.SMTP.Host), slog.Int("smtp_port", cfg.SMTP.Port), slog.String("smtp_tls", cfg.SMTP.TLS))
	}
	concerns := safeguard.New(safeguard.Config{Store: st, Bucket: bucket, Mailer: mailer, YearLeads: cfg.YearLeads, DSLEmails: cfg.DSLEmails,
		PublicURL: cfg.PublicURL, Logger: log.With(slog.String("component", "safeguard"))})
	rooms = live.NewRooms(live.RoomsConfig{Store: st, SFU: media, Recorder: recorder, Recordings: recs,
		Policy: lobby.Policy{Record: cfg.RecordPolicy}, StaffGrace: cfg.StaffGrace, RejoinGrace: cfg.RejoinGrace,
		Logger: log.With(slog.String("component", "live")), Finished: concerns.Finished})
	w, err := web.New(web.Config{PublicURL: cfg.PublicURL, Logger: log.With(slog.String("component", "web")),
		Schedule: sched, RosterGroups: cfg.RosterGroups, Rooms: rooms, Recordings: recs, Concerns: concerns,
		RecordingReauth: cfg.RecordingReauth, Limits: web.Limits{SigninFailures: cfg.SigninFailures, SigninStarts: cfg.SigninStarts, WSPerAddress: cfg.RoomConnsPerAddr}, TrustedProxies: cfg.TrustedProxies, Degradable: map[string]func(context.Context) error{"recording_storage": recs.Ready},
		MetricsToken: cfg.MetricsToken}, a, st)
	if err != nil {
		return err
	}
	defer w.Close()
	if cfg.RosterDir != "" {
		im := &roster.Importer{Store: st, Options: roster.Options{AllowedDomains: cfg.AllowedDomains}, Log: log.With(slog.String("component", "roster"))}
		go im.Watch(ctx, cfg.RosterDir, cfg.RosterInterval)
	}
	go recs.Run(ctx) // spool leftovers, indexing, retries, sessions left live: at once and every 30 s
	go recs.RunSweep(ctx)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (check listen): %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go sweepSessions(ctx, st, cfg.SessionIdle, log)
	if cfg.MetricsListen != "" {
		msrv, err := serveMetrics(cfg.MetricsListen, w.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer msrv.Close()
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("chaperone serving", slog.String("listen", ln.Addr().String()), slog.String("public_url", cfg.PublicURL))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// serveMetrics serves /metrics alone on its own address (metrics_listen).
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s (check metrics_listen): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", slog.Any("err", err))
		}
	}()
	log.Info("metrics serving", slog.String("metrics_listen", ln.Addr().String()))
	return srv, nil
}

// sweepSessions removes expired web sessions and sign-in states every 10 minutes.
func sweepSessions(ctx context.Context, st store.Store, idle time.Duration, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := st.DeleteExpiredWebSessions(ctx, now, idle); err != nil {
				log.Warn("sweep sessions", slog.Any("err", err))
			} else if n > 0 {
				log.Debug("swept sessions", slog.Int64("count", n))
			}
		}
	}
}

// openStorage makes the recording bucket's client and checks the bucket
// when S3 answers: a bucket that is missing or has no Object Lock stops
// start-up; an S3 that does not answer does not (the gateway serves, and
// lessons that must be recorded are held until it answers; the lock is
// checked then).
func openStorage(ctx context.Context, c S3Config, log *slog.Logger) (*recording.Bucket, error) {
	bucket, err := recording.NewBucket(recording.BucketConfig{Endpoint: c.Endpoint, TLS: c.TLS, Bucket: c.Bucket,
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, Region: c.Region, RetentionDays: c.RetentionDays, LockMode: c.LockMode})
	if err != nil {
		return nil, fmt.Errorf("recording storage (check s3_endpoint, s3_bucket): %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch err := bucket.Check(cctx); {
	case recording.Misconfigured(err):
		return nil, fmt.Errorf("recording storage (check s3_endpoint, s3_bucket): %w", err)
	case err != nil:
		log.Warn("recording storage unreachable at start-up: serving without it; lessons that must be recorded are held until it answers",
			slog.String("s3_endpoint", c.Endpoint), slog.Any("err", err))
	}
	return bucket, nil
}

// mfaRoles maps the configured role names to roles; nil keeps the default.
func mfaRoles(names []string) []auth.Role {
	if names == nil {
		return nil
	}
	roles := []auth.Role{}
	for _, n := range names {
		roles = append(roles, auth.Role(n))
	}
	return roles
}
