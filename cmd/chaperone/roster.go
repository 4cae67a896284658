package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

// rosterCmd runs "chaperone roster import [-dry-run] FILE": it imports a
// class-list export (a OneRoster 1.2 or School Data Sync .zip, a directory
// of its CSV files) into the database, printing what changes. It reads
// database and allowed_domains like serve (flag or CHAPERONE_*).
func rosterCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: chaperone roster import [-dry-run] [-database sqlite:PATH] [-allowed_domains d1,d2] FILE")
		return errUsage
	}
	fs := flag.NewFlagSet("roster import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	database := fs.String("database", "", "sqlite:PATH or postgres://... (env CHAPERONE_DATABASE; default sqlite:data/chaperone.db)")
	domains := fs.String("allowed_domains", "", "e-mail domains of school accounts, comma-separated (env CHAPERONE_ALLOWED_DOMAINS): a pupil outside them refuses the import")
	dry := fs.Bool("dry-run", false, "show what would change, change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: chaperone roster import [-dry-run] [-database sqlite:PATH] [-allowed_domains d1,d2] FILE")
		return errUsage
	}
	dsn := orDefault(orDefault(*database, getenv(envName("database"))), "sqlite:data/chaperone.db")
	opts := roster.Options{AllowedDomains: list(orDefault(*domains, getenv(envName("allowed_domains"))))}
	files, err := roster.ReadPath(fs.Arg(0))
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("open database (check database): %w", err)
	}
	defer st.Close()
	im := &roster.Importer{Store: st, Options: opts}
	by := roster.Actor{Name: "chaperone roster import (" + string(roster.ViaCLI) + ")"}
	if *dry {
		r, f, err := roster.Parse(files, opts)
		if err != nil {
			return err
		}
		cur, _, err := st.GetRoster(ctx)
		if err != nil {
			return err
		}
		printDiff(stdout, f, roster.Compare(cur, r))
		fmt.Fprintln(stdout, "Dry run: nothing was changed.")
		return nil
	}
	d, changed, err := im.Import(ctx, files, roster.ViaCLI, by)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintln(stdout, "The export is the same as the class list now: nothing to change.")
		return nil
	}
	printDiff(stdout, "", d)
	fmt.Fprintln(stdout, "Imported.")
	return nil
}

func printDiff(w io.Writer, f roster.Format, d roster.Diff) {
	if f != "" {
		fmt.Fprintf(w, "Format: %s\n", f)
	}
	fmt.Fprintf(w, "Classes: %d (were %d); pupils: %d (were %d)\n", d.ClassesAfter, d.ClassesBefore, d.PupilsAfter, d.PupilsBefore)
	fmt.Fprintf(w, "Classes added: %d, removed: %d, renamed: %d; pupils joining classes: %d, leaving: %d\n", len(d.Added), len(d.Removed), len(d.Renamed), d.Joined(), d.Left())
	for _, c := range d.Added {
		fmt.Fprintf(w, "  + %s (%s)\n", c.Title, c.SourcedID)
	}
	for _, c := range d.Removed {
		fmt.Fprintf(w, "  - %s (%s)\n", c.Title, c.SourcedID)
	}
	for _, r := range d.Renamed {
		fmt.Fprintf(w, "  ~ %s → %s (%s)\n", r.From, r.To, r.ID)
	}
	for _, c := range d.Changed {
		var names []string
		for _, p := range c.Joined {
			names = append(names, "+"+p.GivenName+" "+p.FamilyName)
		}
		for _, p := range c.Left {
			names = append(names, "-"+p.GivenName+" "+p.FamilyName)
		}
		fmt.Fprintf(w, "  %s: %s\n", c.Class.Title, strings.Join(names, ", "))
	}
}
