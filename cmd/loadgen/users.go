package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
)

// The load generator signs in as generated demo accounts: staff who publish
// and pupils who subscribe. `loadgen -write-users FILE` writes them, with
// the built-in demo school, to a users file for `chaperone dev -demo_users
// FILE`; nothing is added to the gateway itself.

const (
	maxPublishers  = 20
	rosterGroup    = "year-8"
	loadgenDomain  = "oakfield.example"
	staffUsername  = "lgstaff%02d"
	pupilUsername  = "lgpupil%04d"
	defaultHeadOTP = "123456"
)

var (
	givenNames  = []string{"Ava", "Ben", "Cara", "Dev", "Ella", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kira", "Leo", "Maya", "Nate", "Orla", "Priya", "Quinn", "Rosa", "Sami", "Tara"}
	familyNames = []string{"Adams", "Brook", "Carter", "Dunn", "Evans", "Fox", "Green", "Hale", "Irwin", "Jones", "Khan", "Lowe", "Moss", "Nash", "Owen", "Price", "Reed", "Shaw", "Todd", "Vale"}
	staffNames  = []string{"Ashworth", "Bramley", "Cowell", "Drummond", "Ellison", "Fairley", "Gosling", "Hartley", "Ingram", "Jessop", "Kendal", "Lockwood", "Marsden", "Norbury", "Oakley", "Pickering", "Radcliffe", "Sutcliffe", "Thornton", "Wragg"}
)

// fullName gives account i a distinct two-part name of letters only (the
// identity policy refuses digits and one-word names).
func fullName(i int, staff bool) (given, family string) {
	g, f := len(givenNames), len(familyNames)
	given, family = givenNames[i%g], familyNames[(i/g)%f]
	if staff { // never the same as a pupil's
		family = staffNames[i%len(staffNames)]
	}
	if n := i / (g * f); n > 0 {
		family += "-" + familyNames[(n-1)%f] + familyNames[(n-1)/f%f]
	}
	return given, family
}

// loadUsers returns the generated accounts: publishers staff, subscribers
// pupils of the roster group.
func loadUsers(publishers, subscribers int) []demoidp.User {
	var out []demoidp.User
	for i := 0; i < publishers; i++ {
		g, f := fullName(i, true)
		out = append(out, demoidp.User{Username: fmt.Sprintf(staffUsername, i+1), Sub: fmt.Sprintf("loadgen-staff-%02d", i+1),
			GivenName: g, FamilyName: f, Email: fmt.Sprintf("lgstaff%02d@%s", i+1, loadgenDomain), EmailVerified: true, Groups: []string{"staff"}})
	}
	for i := 0; i < subscribers; i++ {
		g, f := fullName(i, false)
		out = append(out, demoidp.User{Username: fmt.Sprintf(pupilUsername, i+1), Sub: fmt.Sprintf("loadgen-pupil-%04d", i+1),
			GivenName: g, FamilyName: f, Email: fmt.Sprintf("lgpupil%04d@%s", i+1, loadgenDomain), EmailVerified: true,
			Groups: []string{"pupils", rosterGroup}})
	}
	return out
}

// writeUsers writes the demo school's accounts plus the generated ones.
func writeUsers(path string, publishers, subscribers int) error {
	seed, err := demoidp.SeedUsers()
	if err != nil {
		return fmt.Errorf("demo users: %w", err)
	}
	file := struct {
		Note  string         `json:"note"`
		Users []demoidp.User `json:"users"`
	}{
		Note:  "Demo accounts for chaperone's built-in identity provider plus the load generator's (lgstaff*, lgpupil*). Every password is 'oakfield'. Written by `loadgen -write-users`; use with `chaperone dev -demo_users`.",
		Users: append(seed, loadUsers(publishers, subscribers)...),
	}
	b, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return fmt.Errorf("encode users: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write users: %w", err)
	}
	return nil
}
