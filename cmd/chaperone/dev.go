package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
)

const devClientSecret = "chaperone-dev-secret"

// devDefaults is the gateway configuration of `chaperone dev`.
func devDefaults(publicURL, issuer string) configDefaults {
	return configDefaults{
		"listen":             ":8080",
		"public_url":         publicURL,
		"oidc_issuer":        issuer,
		"oidc_client_id":     "chaperone",
		"oidc_client_secret": devClientSecret,
		"allowed_domains":    "oakfield.example",
		"pupil_groups":       "pupils",
		"staff_groups":       "staff",
		"slt_groups":         "slt",
		"head_groups":        "head",
		"dsl_groups":         "dsl",
		"admin_groups":       "it-admins",
		"database":           "sqlite:data/chaperone.db",
		"roster_groups":      "year-7,year-8,year-9,year-10,year-11",
		"ice_loopback":       "true",
		"year_leads":         "year-8=p.sharma@oakfield.example,year-9=d.hughes@oakfield.example",
	}
}

// dev runs the demo identity provider and the gateway on embedded defaults.
func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	idpListen := fs.String("idp_listen", "localhost:8081", "address of the demo identity provider")
	usersFile := fs.String("demo_users", "", "JSON file of demo users (default: the built-in Oakfield school)")
	public := fs.String("public_url", "http://localhost:8080", "URL of the gateway")
	listen := fs.String("listen", ":8080", "gateway listen address")
	database := fs.String("database", "sqlite:data/chaperone.db", "database")
	udpPort := fs.String("udp_port", "50000", "UDP port for media")
	metricsListen := fs.String("metrics_listen", defaultMetricsListen, "address serving /metrics, or off")
	versitygw := fs.String("versitygw", "bin/versitygw", "versitygw binary for the local S3 server")
	s3Listen := fs.String("s3_listen", "127.0.0.1:7070", "address of the local S3 server")
	dataDir := fs.String("data", "data", "directory for the dev S3 data and the recording spool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, "info")
	users, err := demoidp.SeedUsers()
	if *usersFile != "" {
		users, err = demoidp.LoadUsers(*usersFile)
	}
	if err != nil {
		return fmt.Errorf("demo users: %w", err)
	}
	ln, err := net.Listen("tcp", *idpListen)
	if err != nil {
		return fmt.Errorf("demo identity provider: listen on %s (flag -idp_listen): %w", *idpListen, err)
	}
	issuer := "http://" + *idpListen
	if h, p, _ := net.SplitHostPort(*idpListen); h == "" {
		issuer = "http://localhost:" + p
	}
	pub := strings.TrimSuffix(*public, "/")
	idp, err := demoidp.New(ctx, demoidp.Config{
		Issuer:  issuer,
		Users:   users,
		Clients: []demoidp.Client{{ID: "chaperone", Secret: devClientSecret, RedirectURIs: []string{pub + "/auth/callback"}}},
		Logger:  log.With(slog.String("component", "demoidp")),
	})
	if err != nil {
		return fmt.Errorf("demo identity provider: %w", err)
	}
	idpSrv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := idpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo identity provider stopped", slog.Any("err", err))
		}
	}()
	defer idpSrv.Close()

	if err := startDevS3(ctx, *versitygw, *s3Listen, filepath.Join(*dataDir, "s3"), log); err != nil {
		return err
	}
	defaults := devDefaults(pub, issuer)
	defaults["s3_endpoint"], defaults["s3_bucket"], defaults["s3_access_key"], defaults["s3_secret_key"] = *s3Listen, devS3Bucket, devS3Access, devS3Secret
	defaults["s3_tls"], defaults["spool_dir"] = "false", filepath.Join(*dataDir, "spool")
	defaults["listen"], defaults["database"], defaults["udp_port"] = *listen, *database, *udpPort
	defaults["metrics_listen"] = *metricsListen
	cfg, err := parseConfig("dev", nil, getenv, defaults)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		select {
		case <-ready:
			printDevBanner(stdout, pub, issuer, users)
		case <-ctx.Done():
		}
	}()
	return serve(ctx, cfg, log, ready)
}

func printDevBanner(w io.Writer, pub, issuer string, users []demoidp.User) {
	fmt.Fprintf(w, "\nchaperone is running (dev mode) at %s\n", pub)
	fmt.Fprintf(w, "Demo identity provider: %s\n\n", issuer)
	fmt.Fprintln(w, "Demo sign-ins (password for every account: oakfield).")
	fmt.Fprintln(w, "The DSL, head, senior leader and IT admin roles need the one-time code; without it those accounts sign in with their other roles only.")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  username\tname\tgroups\texpected")
	for _, u := range users {
		exp := "signed in"
		if u.MFA {
			exp = "signed in (second factor: code 123456)"
		}
		if u.Refused != "" {
			exp = "refused: " + u.Refused
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", u.Username, demoidp.DisplayName(u), strings.Join(u.Groups, ","), exp)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPress Ctrl+C to stop.")
}
