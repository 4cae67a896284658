// Command chaperone is the live-lesson safeguarding gateway.
//
//	chaperone serve [flags]   run against the school's IdP, S3 and database
//	chaperone dev   [flags]   run on embedded defaults: demo IdP, SQLite in ./data
//	chaperone roster import FILE   import a class-list export from the MIS
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "chaperone:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "serve":
		cfg, err := parseConfig("serve", args[1:], getenv, nil)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, newLogger(stderr, cfg.LogLevel), nil)
	case "dev":
		return dev(ctx, args[1:], getenv, stdout, stderr)
	case "roster":
		return rosterCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `chaperone: live-lesson safeguarding gateway for schools

Usage:
  chaperone serve [flags]   run with the school's identity provider and storage
  chaperone dev   [flags]   run on embedded defaults (demo identity provider, SQLite in ./data)
  chaperone roster import [-dry-run] FILE
                            import a class-list export (OneRoster 1.2 or School Data Sync CSV:
                            a .zip or a directory of the CSV files) into the database

Run "chaperone serve -h" for the configuration flags; each flag can also be
set with an environment variable CHAPERONE_<FLAG IN CAPITALS>.
`)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
