package roster_test

import (
	"slices"
	"testing"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

// FuzzParse feeds arbitrary users, classes and enrolments files: whatever
// parses refers only to known classes and people.
func FuzzParse(f *testing.F) {
	files := testkit.NewClassList(6, 2, "oakfield.example").OneRoster()
	f.Add(string(files["users.csv"]), string(files["classes.csv"]), string(files["enrollments.csv"]))
	f.Add("sourcedId,givenName,familyName,email\nu1,A,B,a@oakfield.example\n", "sourcedId,title\nc1,7A\n", "classSourcedId,userSourcedId,role\nc1,u1,student\nc1,u1,teacher\n")
	f.Fuzz(func(t *testing.T, users, classes, enrols string) {
		r, _, err := roster.Parse(map[string][]byte{"users.csv": []byte(users), "classes.csv": []byte(classes), "enrollments.csv": []byte(enrols)},
			roster.Options{AllowedDomains: []string{"oakfield.example"}})
		if err != nil {
			return
		}
		cs, ps := map[string]bool{}, map[string]bool{}
		for _, c := range r.Classes {
			cs[c.SourcedID] = true
		}
		for _, p := range r.People {
			ps[p.SourcedID] = true
		}
		for _, e := range r.Enrollments {
			if !cs[e.ClassID] || !ps[e.PersonID] || (e.Role != store.RosterPupil && e.Role != store.RosterTeacher) {
				t.Fatalf("enrolment %+v refers to nothing known", e)
			}
		}
		shuffled := store.Roster{People: slices.Clone(r.People), Classes: slices.Clone(r.Classes), Enrollments: slices.Clone(r.Enrollments)}
		slices.Reverse(shuffled.People)
		slices.Reverse(shuffled.Enrollments)
		if roster.Hash(shuffled) != roster.Hash(r) {
			t.Fatal("the hash depends on the order of rows")
		}
	})
}

// FuzzReadZip feeds arbitrary archives: ReadZip and Parse refuse or
// return, never panic, and never return more than the limit.
func FuzzReadZip(f *testing.F) {
	f.Add(testkit.Zip(f, testkit.NewClassList(4, 2, "oakfield.example").OneRoster()))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := roster.ReadZip(b)
		if err != nil {
			return
		}
		total := 0
		for _, v := range files {
			total += len(v)
		}
		if total > roster.MaxImportBytes {
			t.Fatalf("read %d bytes", total)
		}
		_, _, _ = roster.Parse(files, roster.Options{})
	})
}
