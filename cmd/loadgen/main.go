// Command loadgen drives P publishers and S subscribers over real WebRTC
// against a running gateway and reports what the gateway forwarded, its CPU
// cost, packet loss and one-way latency.
//
// Every participant signs in through the gateway's identity provider like a
// browser, joins the room over the WebSocket signalling and connects a pion
// client. Publishers are staff (the first requests the session, the demo
// head approves it, the first opens it and admits the pupils); subscribers
// are pupils. The accounts are generated demo users, so the gateway must run
// with them:
//
//	loadgen -write-users data/loadgen-users.json -subscribers 200
//	chaperone dev -demo_users data/loadgen-users.json
//	loadgen -subscribers 200 -duration 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := defaultConfig()
	fs.StringVar(&cfg.URL, "url", cfg.URL, "the gateway's URL")
	fs.StringVar(&cfg.MetricsURL, "metrics_url", cfg.MetricsURL, "the gateway's /metrics (served on its metrics_listen)")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, fmt.Sprintf("publishers (staff, each sending VP8 and Opus; at most %d)", maxPublishers))
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "subscribers (pupils, receiving every publisher)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to measure, once every subscriber receives")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "how long to run before measuring")
	fs.DurationVar(&cfg.ConnectTimeout, "connect_timeout", cfg.ConnectTimeout, "how long sign-in and connecting may take")
	fs.IntVar(&cfg.Parallel, "parallel", cfg.Parallel, "subscribers signing in and connecting at once")
	fs.IntVar(&cfg.VideoBytes, "video_bytes", cfg.VideoBytes, "bytes per VP8 frame (30 a second, one packet each; at most 1100)")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "password of the demo accounts")
	fs.StringVar(&cfg.Head, "head", cfg.Head, "the demo account that approves the session")
	fs.StringVar(&cfg.HeadOTP, "head_otp", cfg.HeadOTP, "the approver's one-time code")
	fs.Float64Var(&cfg.DropRTP, "drop", 0, "fraction of RTP packets each subscriber drops on arrival, as on a lossy link (0 = none)")
	nack := fs.Bool("nack", true, "subscribers send NACKs for missing packets, as browsers do")
	usersOut := fs.String("write-users", "", "write the demo users file for `chaperone dev -demo_users` with the accounts -publishers and -subscribers need, then exit")
	verbose := fs.Bool("v", false, "log progress and the clients' errors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.NoNACK = !*nack
	if err := cfg.validate(); err != nil {
		return err
	}
	if *usersOut != "" {
		if err := writeUsers(*usersOut, cfg.Publishers, cfg.Subscribers); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: the demo school plus %d staff and %d pupils; start the gateway with\n  chaperone dev -demo_users %s\n",
			*usersOut, cfg.Publishers, cfg.Subscribers, *usersOut)
		return nil
	}
	cfg.Logf = func(string, ...any) {}
	if *verbose {
		cfg.Logf = func(format string, a ...any) {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
		}
	}
	res, err := run(ctx, cfg)
	if res != nil {
		res.print(stdout)
	}
	return err
}
