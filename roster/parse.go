package roster

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/store"
)

// Format is the layout of a class-list export.
type Format string

// The formats Parse reads.
const (
	FormatOneRoster Format = "oneroster-1.2"
	FormatSDS       Format = "sds-csv"
)

// Limits of an import.
const (
	// MaxImportBytes bounds an upload and the uncompressed total of its
	// CSV files: a school of 3,000 pupils in 300 classes exports about 2 MB.
	MaxImportBytes = 32 << 20
	maxZipEntries  = 64
	maxFieldRunes  = 320
)

// ErrInvalid is wrapped by every error about the content of an import: the
// message says which file, line and column, and what to fix.
var ErrInvalid = errors.New("class list not imported")

// ErrTooLarge is wrapped when an import is larger than MaxImportBytes.
var ErrTooLarge = fmt.Errorf("%w: larger than %d MB", ErrInvalid, MaxImportBytes>>20)

// Options are the checks that depend on the school.
type Options struct {
	// AllowedDomains are the school's e-mail domains: a pupil whose
	// address is in none of them could never sign in, so the import is
	// refused. Empty means any domain.
	AllowedDomains []string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ReadZip reads the CSV files of a zip archive, keyed by lower-case base
// name, refusing archives over the limits.
func ReadZip(b []byte) (map[string][]byte, error) {
	if len(b) > MaxImportBytes {
		return nil, ErrTooLarge
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, invalid("the file is not a zip archive of CSV files (%v)", err)
	}
	if len(zr.File) > maxZipEntries {
		return nil, invalid("the archive holds %d files; a class-list export has fewer than %d", len(zr.File), maxZipEntries)
	}
	files := map[string][]byte{}
	total := int64(0)
	for _, f := range zr.File {
		name := strings.ToLower(filepath.Base(f.Name))
		if f.FileInfo().IsDir() || !strings.HasSuffix(name, ".csv") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, invalid("%s in the archive cannot be read (%v)", f.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, MaxImportBytes-total+1))
		rc.Close()
		if err != nil {
			return nil, invalid("%s in the archive cannot be read (%v)", f.Name, err)
		}
		if total += int64(len(data)); total > MaxImportBytes {
			return nil, ErrTooLarge
		}
		if _, dup := files[name]; dup {
			return nil, invalid("the archive holds two files called %s", name)
		}
		files[name] = data
	}
	return files, nil
}

// ReadPath reads an export from disk: a zip archive, a single CSV (not
// enough on its own, but named in the error), or a directory holding the
// CSV files or one zip archive (the newest, when several).
func ReadPath(path string) (map[string][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read class list: %w", err)
	}
	if !fi.IsDir() {
		if fi.Size() > MaxImportBytes {
			return nil, ErrTooLarge
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read class list: %w", err)
		}
		if strings.HasSuffix(strings.ToLower(path), ".csv") {
			return map[string][]byte{strings.ToLower(filepath.Base(path)): b}, nil
		}
		return ReadZip(b)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read class list: %w", err)
	}
	files := map[string][]byte{}
	var total int64
	newestZip, newestTime := "", int64(0)
	for _, e := range entries {
		name := strings.ToLower(e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".zip"):
			if t := info.ModTime().UnixNano(); newestZip == "" || t > newestTime {
				newestZip, newestTime = e.Name(), t
			}
		case strings.HasSuffix(name, ".csv"):
			if total += info.Size(); total > MaxImportBytes {
				return nil, ErrTooLarge
			}
			b, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("read class list: %w", err)
			}
			files[name] = b
		}
	}
	if len(files) == 0 && newestZip != "" {
		return ReadPath(filepath.Join(path, newestZip))
	}
	return files, nil
}

// Parse reads an export's CSV files (keyed by lower-case base name),
// telling the format from the file names.
func Parse(files map[string][]byte, o Options) (store.Roster, Format, error) {
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := files[n]; !ok {
				return false
			}
		}
		return true
	}
	var r store.Roster
	var err error
	switch {
	case has("users.csv", "classes.csv", "enrollments.csv"):
		r, err = parseOneRoster(files, o)
		return r, FormatOneRoster, err
	case has("section.csv", "student.csv", "studentenrollment.csv"):
		r, err = parseSDS(files, o)
		return r, FormatSDS, err
	}
	var got []string
	for n := range files {
		got = append(got, n)
	}
	slices.Sort(got)
	return r, "", invalid("the export has %s; it needs users.csv, classes.csv and enrollments.csv (OneRoster 1.2), or Section.csv, Student.csv and StudentEnrollment.csv (School Data Sync)",
		orNone(strings.Join(got, ", ")))
}

func orNone(s string) string {
	if s == "" {
		return "no CSV files"
	}
	return s
}

// table is one CSV file with its header.
type table struct {
	name string
	cols map[string]int // lower-case header → index
	rows [][]string
	line []int // line of each row
}

// readTable decodes a CSV file, checking its encoding and that the
// required columns are there.
func readTable(files map[string][]byte, name, display string, required ...string) (*table, error) {
	b, ok := files[name]
	if !ok {
		return nil, invalid("%s is missing", display)
	}
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, invalid("%s is not UTF-8 text (line %d): save it as “CSV UTF-8” and import it again", display, bytes.Count(b[:i], []byte("\n"))+1)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, invalid("%s has no header row (%v)", display, err)
	}
	t := &table{name: display, cols: map[string]int{}}
	for i, h := range header {
		t.cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	var missing []string
	for _, c := range required {
		if _, ok := t.cols[strings.ToLower(c)]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, invalid("%s has no column %s (its header row is: %s)", display, strings.Join(missing, ", "), strings.Join(header, ","))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalid("%s: %v", display, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(rec) != len(header) {
			return nil, invalid("%s line %d has %d columns; the header has %d", display, line, len(rec), len(header))
		}
		for i, f := range rec {
			if utf8.RuneCountInString(f) > maxFieldRunes {
				return nil, invalid("%s line %d: column %s is longer than %d characters", display, line, header[i], maxFieldRunes)
			}
		}
		t.rows = append(t.rows, rec)
		t.line = append(t.line, line)
	}
	return t, nil
}

// get returns row i's value of column c (lower case), trimmed; "" when the
// table has no such column.
func (t *table) get(i int, c string) string {
	j, ok := t.cols[strings.ToLower(c)]
	if !ok {
		return ""
	}
	return strings.TrimSpace(t.rows[i][j])
}

func (t *table) require(i int, c string) (string, error) {
	v := t.get(i, c)
	if v == "" {
		return "", invalid("%s line %d: %s is empty", t.name, t.line[i], c)
	}
	return v, nil
}

func deleted(status string) bool {
	return strings.EqualFold(status, "tobedeleted") || strings.EqualFold(status, "inactive")
}

// builder collects people, classes and enrolments, checking references.
type builder struct {
	o        Options
	people   map[string]store.RosterPerson
	personAt map[string]string // id → "users.csv line 7"
	classes  map[string]store.RosterClass
	enrolled map[[2]string]store.RosterRole
}

func newBuilder(o Options) *builder {
	return &builder{o: o, people: map[string]store.RosterPerson{}, personAt: map[string]string{}, classes: map[string]store.RosterClass{}, enrolled: map[[2]string]store.RosterRole{}}
}

func (b *builder) addPerson(t *table, i int, p store.RosterPerson) error {
	if _, dup := b.people[p.SourcedID]; dup {
		return invalid("%s line %d: the ID %q is used twice (also at %s)", t.name, t.line[i], p.SourcedID, b.personAt[p.SourcedID])
	}
	p.Email = strings.ToLower(p.Email)
	b.people[p.SourcedID] = p
	b.personAt[p.SourcedID] = fmt.Sprintf("%s line %d", t.name, t.line[i])
	return nil
}

func (b *builder) addClass(t *table, i int, c store.RosterClass) error {
	if _, dup := b.classes[c.SourcedID]; dup {
		return invalid("%s line %d: the class ID %q is used twice", t.name, t.line[i], c.SourcedID)
	}
	b.classes[c.SourcedID] = c
	return nil
}

func (b *builder) enrol(t *table, i int, classID, personID string, role store.RosterRole) error {
	if _, ok := b.classes[classID]; !ok {
		return invalid("%s line %d: there is no class %q", t.name, t.line[i], classID)
	}
	p, ok := b.people[personID]
	if !ok {
		return invalid("%s line %d: there is no person %q", t.name, t.line[i], personID)
	}
	if role == store.RosterPupil {
		if err := b.checkEmail(p); err != nil {
			return err
		}
	}
	key := [2]string{classID, personID}
	if prev, ok := b.enrolled[key]; ok && prev != role {
		return invalid("%s line %d: %q is both a pupil and a teacher of class %q", t.name, t.line[i], personID, classID)
	}
	b.enrolled[key] = role
	return nil
}

func (b *builder) checkEmail(p store.RosterPerson) error {
	e := p.Email
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 || strings.ContainsAny(e, " ,;<>") {
		return invalid("%s: pupil %q has no school e-mail address (%q), so the lobby could not match them", b.personAt[p.SourcedID], p.SourcedID, e)
	}
	if len(b.o.AllowedDomains) > 0 && !slices.ContainsFunc(b.o.AllowedDomains, func(d string) bool { return strings.EqualFold(d, e[at+1:]) }) {
		return invalid("%s: pupil %q has the address %s, which is not in allowed_domains (%s), so they could never sign in",
			b.personAt[p.SourcedID], p.SourcedID, e, strings.Join(b.o.AllowedDomains, ", "))
	}
	return nil
}

// roster returns the enrolled people, all classes and the enrolments,
// sorted by ID.
func (b *builder) roster() store.Roster {
	var r store.Roster
	keep := map[string]bool{}
	for k, role := range b.enrolled {
		r.Enrollments = append(r.Enrollments, store.RosterEnrollment{ClassID: k[0], PersonID: k[1], Role: role})
		keep[k[1]] = true
	}
	for id, p := range b.people {
		if keep[id] {
			r.People = append(r.People, p)
		}
	}
	for _, c := range b.classes {
		r.Classes = append(r.Classes, c)
	}
	sortRoster(&r)
	return r
}

func sortRoster(r *store.Roster) {
	slices.SortFunc(r.People, func(a, b store.RosterPerson) int { return strings.Compare(a.SourcedID, b.SourcedID) })
	slices.SortFunc(r.Classes, func(a, b store.RosterClass) int { return strings.Compare(a.SourcedID, b.SourcedID) })
	slices.SortFunc(r.Enrollments, func(a, b store.RosterEnrollment) int {
		if c := strings.Compare(a.ClassID, b.ClassID); c != 0 {
			return c
		}
		return strings.Compare(a.PersonID, b.PersonID)
	})
}

// addClasses adds each class of t (rows with status tobedeleted skipped).
func (b *builder) addClasses(t *table, idCol, titleCol string) error {
	for i := range t.rows {
		if deleted(t.get(i, "status")) {
			continue
		}
		id, title, err := t.pair(i, idCol, titleCol)
		if err != nil {
			return err
		}
		if err := b.addClass(t, i, store.RosterClass{SourcedID: id, Title: title}); err != nil {
			return err
		}
	}
	return nil
}

// addPeople adds each person of t; person builds them from a row.
func (b *builder) addPeople(t *table, idCol string, person func(i int, id string) store.RosterPerson) error {
	for i := range t.rows {
		if deleted(t.get(i, "status")) || strings.EqualFold(t.get(i, "enabledUser"), "false") {
			continue
		}
		id, err := t.require(i, idCol)
		if err != nil {
			return err
		}
		if err := b.addPerson(t, i, person(i, id)); err != nil {
			return err
		}
	}
	return nil
}

// addEnrolments adds each enrolment of t whose role keeps it.
func (b *builder) addEnrolments(t *table, classCol, personCol string, role func(i int) (store.RosterRole, bool)) error {
	for i := range t.rows {
		if deleted(t.get(i, "status")) {
			continue
		}
		r, ok := role(i)
		if !ok {
			continue
		}
		cid, uid, err := t.pair(i, classCol, personCol)
		if err != nil {
			return err
		}
		if err := b.enrol(t, i, cid, uid, r); err != nil {
			return err
		}
	}
	return nil
}

// pair returns row i's values of two required columns.
func (t *table) pair(i int, a, b string) (string, string, error) {
	va, err := t.require(i, a)
	if err != nil {
		return "", "", err
	}
	vb, err := t.require(i, b)
	return va, vb, err
}

func parseOneRoster(files map[string][]byte, o Options) (store.Roster, error) {
	users, err := readTable(files, "users.csv", "users.csv", "sourcedId", "givenName", "familyName", "email")
	if err != nil {
		return store.Roster{}, err
	}
	classes, err := readTable(files, "classes.csv", "classes.csv", "sourcedId", "title")
	if err != nil {
		return store.Roster{}, err
	}
	enrols, err := readTable(files, "enrollments.csv", "enrollments.csv", "classSourcedId", "userSourcedId", "role")
	if err != nil {
		return store.Roster{}, err
	}
	b := newBuilder(o)
	err = b.addPeople(users, "sourcedId", func(i int, id string) store.RosterPerson {
		return store.RosterPerson{SourcedID: id, Email: users.get(i, "email"), GivenName: users.get(i, "givenName"), FamilyName: users.get(i, "familyName")}
	})
	if err == nil {
		err = b.addClasses(classes, "sourcedId", "title")
	}
	if err == nil {
		err = b.addEnrolments(enrols, "classSourcedId", "userSourcedId", func(i int) (store.RosterRole, bool) {
			switch strings.ToLower(enrols.get(i, "role")) {
			case "student":
				return store.RosterPupil, true
			case "teacher":
				return store.RosterTeacher, true
			}
			return "", false // aides, guardians, proctors: not on the class list
		})
	}
	if err != nil {
		return store.Roster{}, err
	}
	return b.roster(), nil
}

// parseSDS reads the classic School Data Sync CSV files. A student's
// Username is their sign-in name (UPN); when it is not an address, the
// Secondary Email column is used.
func parseSDS(files map[string][]byte, o Options) (store.Roster, error) {
	sections, err := readTable(files, "section.csv", "Section.csv", "SIS ID", "Section Name")
	if err != nil {
		return store.Roster{}, err
	}
	students, err := readTable(files, "student.csv", "Student.csv", "SIS ID", "Username", "First Name", "Last Name")
	if err != nil {
		return store.Roster{}, err
	}
	enrols, err := readTable(files, "studentenrollment.csv", "StudentEnrollment.csv", "Section SIS ID", "SIS ID")
	if err != nil {
		return store.Roster{}, err
	}
	person := func(t *table) func(i int, id string) store.RosterPerson {
		return func(i int, id string) store.RosterPerson {
			email := t.get(i, "Username")
			if !strings.Contains(email, "@") {
				email = t.get(i, "Secondary Email")
			}
			return store.RosterPerson{SourcedID: id, Email: email, GivenName: t.get(i, "First Name"), FamilyName: t.get(i, "Last Name")}
		}
	}
	fixed := func(r store.RosterRole) func(int) (store.RosterRole, bool) {
		return func(int) (store.RosterRole, bool) { return r, true }
	}
	b := newBuilder(o)
	err = b.addClasses(sections, "SIS ID", "Section Name")
	if err == nil {
		err = b.addPeople(students, "SIS ID", person(students))
	}
	if err == nil {
		err = b.addEnrolments(enrols, "Section SIS ID", "SIS ID", fixed(store.RosterPupil))
	}
	if _, ok := files["teacher.csv"]; ok && err == nil {
		var teachers, ros *table
		if teachers, err = readTable(files, "teacher.csv", "Teacher.csv", "SIS ID", "Username", "First Name", "Last Name"); err != nil {
			return store.Roster{}, err
		}
		if ros, err = readTable(files, "teacherroster.csv", "TeacherRoster.csv", "Section SIS ID", "SIS ID"); err != nil {
			return store.Roster{}, err
		}
		if err = b.addPeople(teachers, "SIS ID", person(teachers)); err == nil {
			err = b.addEnrolments(ros, "Section SIS ID", "SIS ID", fixed(store.RosterTeacher))
		}
	}
	if err != nil {
		return store.Roster{}, err
	}
	return b.roster(), nil
}

// Hash is a digest of a class list's content (sorted): two imports with
// the same classes, people and enrolments have the same hash.
func Hash(r store.Roster) string {
	r = store.Roster{People: slices.Clone(r.People), Classes: slices.Clone(r.Classes), Enrollments: slices.Clone(r.Enrollments)}
	sortRoster(&r)
	b, _ := json.Marshal(r)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
