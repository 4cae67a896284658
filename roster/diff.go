package roster

import (
	"slices"
	"strings"

	"github.com/chaperone-edu/chaperone/store"
)

// GroupPrefix starts the roster group of an imported class: a session
// whose roster group is "class:7A-MA" is for the pupils of class 7A-MA.
const GroupPrefix = "class:"

// Group is the roster group of the class with this sourcedId.
func Group(classID string) string { return GroupPrefix + classID }

// ClassID returns the class a roster group names, if it names one.
func ClassID(group string) (string, bool) {
	id, ok := strings.CutPrefix(group, GroupPrefix)
	return id, ok && id != ""
}

// Diff is what applying an import changes.
type Diff struct {
	ClassesBefore, ClassesAfter int
	PupilsBefore, PupilsAfter   int // distinct pupils in any class
	Added, Removed              []store.RosterClass
	Renamed                     []Rename
	Changed                     []ClassChange // classes in both whose pupils changed, by title
}

// Rename is a class whose title changed.
type Rename struct {
	ID, From, To string
}

// ClassChange lists the pupils who join and leave a class.
type ClassChange struct {
	Class        store.RosterClass
	Joined, Left []store.RosterPerson
}

// Empty reports whether the import changes nothing.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Renamed)+len(d.Changed) == 0
}

// Joined and Left count pupil moves over all classes that stay.
func (d Diff) Joined() (n int) {
	for _, c := range d.Changed {
		n += len(c.Joined)
	}
	return n
}

// Left counts the pupils who leave classes that stay.
func (d Diff) Left() (n int) {
	for _, c := range d.Changed {
		n += len(c.Left)
	}
	return n
}

type index struct {
	classes map[string]store.RosterClass
	people  map[string]store.RosterPerson
	pupils  map[string]map[string]bool // class → pupil IDs
	all     map[string]bool
}

func indexOf(r store.Roster) index {
	ix := index{classes: map[string]store.RosterClass{}, people: map[string]store.RosterPerson{}, pupils: map[string]map[string]bool{}, all: map[string]bool{}}
	for _, c := range r.Classes {
		ix.classes[c.SourcedID] = c
		ix.pupils[c.SourcedID] = map[string]bool{}
	}
	for _, p := range r.People {
		ix.people[p.SourcedID] = p
	}
	for _, e := range r.Enrollments {
		if e.Role == store.RosterPupil && ix.pupils[e.ClassID] != nil {
			ix.pupils[e.ClassID][e.PersonID] = true
			ix.all[e.PersonID] = true
		}
	}
	return ix
}

// Compare returns what replacing old with new changes.
func Compare(old, new store.Roster) Diff {
	o, n := indexOf(old), indexOf(new)
	d := Diff{ClassesBefore: len(o.classes), ClassesAfter: len(n.classes), PupilsBefore: len(o.all), PupilsAfter: len(n.all)}
	for id, c := range n.classes {
		oc, ok := o.classes[id]
		if !ok {
			d.Added = append(d.Added, c)
			continue
		}
		if oc.Title != c.Title {
			d.Renamed = append(d.Renamed, Rename{ID: id, From: oc.Title, To: c.Title})
		}
		var ch ClassChange
		ch.Class = c
		for pid := range n.pupils[id] {
			if !o.pupils[id][pid] {
				ch.Joined = append(ch.Joined, n.people[pid])
			}
		}
		for pid := range o.pupils[id] {
			if !n.pupils[id][pid] {
				ch.Left = append(ch.Left, o.people[pid])
			}
		}
		if len(ch.Joined)+len(ch.Left) > 0 {
			byName := func(a, b store.RosterPerson) int {
				return strings.Compare(a.FamilyName+" "+a.GivenName+" "+a.SourcedID, b.FamilyName+" "+b.GivenName+" "+b.SourcedID)
			}
			slices.SortFunc(ch.Joined, byName)
			slices.SortFunc(ch.Left, byName)
			d.Changed = append(d.Changed, ch)
		}
	}
	for id, c := range o.classes {
		if _, ok := n.classes[id]; !ok {
			d.Removed = append(d.Removed, c)
		}
	}
	byTitle := func(a, b store.RosterClass) int {
		return strings.Compare(a.Title+"\x00"+a.SourcedID, b.Title+"\x00"+b.SourcedID)
	}
	slices.SortFunc(d.Added, byTitle)
	slices.SortFunc(d.Removed, byTitle)
	slices.SortFunc(d.Renamed, func(a, b Rename) int { return strings.Compare(a.To+"\x00"+a.ID, b.To+"\x00"+b.ID) })
	slices.SortFunc(d.Changed, func(a, b ClassChange) int { return byTitle(a.Class, b.Class) })
	return d
}
