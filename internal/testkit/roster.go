package testkit

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// RosterPupil is one pupil of a generated class list.
type RosterPupil struct {
	ID, Given, Family, Email string
}

// ClassList is a generated MIS export: Classes[i] has the pupils
// Pupils[Members[i][0]], … Teachers are added one per class.
type ClassList struct {
	Classes []string // titles; the IDs are "cls-01", "cls-02", …
	Pupils  []RosterPupil
	Members [][]int
}

// ClassID is the sourcedId of class i.
func ClassID(i int) string { return fmt.Sprintf("cls-%02d", i+1) }

// NewClassList generates pupils pupils in classes classes of equal size
// (pupil n is in class n mod classes), e-mail at domain.
func NewClassList(pupils, classes int, domain string) *ClassList {
	cl := &ClassList{Members: make([][]int, classes)}
	years := []string{"7", "8", "9", "10", "11"}
	for i := range classes {
		cl.Classes = append(cl.Classes, fmt.Sprintf("%s%c Maths", years[i%len(years)], 'A'+rune(i/len(years))))
	}
	for n := range pupils {
		p := RosterPupil{ID: fmt.Sprintf("stu-%04d", n+1), Given: "Pupil", Family: fmt.Sprintf("Number-%s", words(n)), Email: fmt.Sprintf("pupil%04d@%s", n+1, domain)}
		cl.Pupils = append(cl.Pupils, p)
		cl.Members[n%classes] = append(cl.Members[n%classes], n)
	}
	return cl
}

// words spells n in letters (names have no digits).
func words(n int) string {
	s := ""
	for {
		s = string(rune('a'+n%26)) + s
		n /= 26
		if n == 0 {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
}

// OneRoster returns the OneRoster 1.2 CSV files of the list.
func (cl *ClassList) OneRoster() map[string][]byte {
	var users, classes, enrols strings.Builder
	users.WriteString("sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n")
	classes.WriteString("sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods\n")
	enrols.WriteString("sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n")
	for _, p := range cl.Pupils {
		fmt.Fprintf(&users, "%s,active,2026-09-01T00:00:00Z,true,%s,,%s,%s,,,%s,,,,07,\n", p.ID, p.Email, p.Given, p.Family, p.Email)
	}
	for i, title := range cl.Classes {
		fmt.Fprintf(&classes, "%s,active,2026-09-01T00:00:00Z,%s,07,crs-ma,%s,scheduled,,sch-1,term-1,Maths,,1\n", ClassID(i), title, ClassID(i))
		fmt.Fprintf(&users, "tch-%02d,active,2026-09-01T00:00:00Z,true,t%02d,,Teacher,Of-%s,,,t%02d@oakfield.example,,,,,\n", i+1, i+1, words(i), i+1)
		fmt.Fprintf(&enrols, "enr-t%02d,active,2026-09-01T00:00:00Z,%s,sch-1,tch-%02d,teacher,true,,\n", i+1, ClassID(i), i+1)
		for _, n := range cl.Members[i] {
			fmt.Fprintf(&enrols, "enr-%s-%s,active,2026-09-01T00:00:00Z,%s,sch-1,%s,student,false,,\n", ClassID(i), cl.Pupils[n].ID, ClassID(i), cl.Pupils[n].ID)
		}
	}
	return map[string][]byte{
		"manifest.csv":    []byte("propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.users,bulk\nfile.classes,bulk\nfile.enrollments,bulk\n"),
		"users.csv":       []byte(users.String()),
		"classes.csv":     []byte(classes.String()),
		"enrollments.csv": []byte(enrols.String()),
	}
}

// SDS returns the classic School Data Sync CSV files of the list.
func (cl *ClassList) SDS() map[string][]byte {
	var sec, stu, enr, tch, ros strings.Builder
	tch.WriteString("SIS ID,School SIS ID,Username,First Name,Last Name\n")
	ros.WriteString("Section SIS ID,SIS ID\n")
	sec.WriteString("SIS ID,School SIS ID,Section Name\n")
	stu.WriteString("SIS ID,School SIS ID,Username,First Name,Last Name\n")
	enr.WriteString("Section SIS ID,SIS ID\n")
	for _, p := range cl.Pupils {
		fmt.Fprintf(&stu, "%s,sch-1,%s,%s,%s\n", p.ID, p.Email, p.Given, p.Family)
	}
	for i, title := range cl.Classes {
		fmt.Fprintf(&sec, "%s,sch-1,%s\n", ClassID(i), title)
		fmt.Fprintf(&tch, "tch-%02d,sch-1,t%02d@oakfield.example,Teacher,Of-%s\n", i+1, i+1, words(i))
		fmt.Fprintf(&ros, "%s,tch-%02d\n", ClassID(i), i+1)
		for _, n := range cl.Members[i] {
			fmt.Fprintf(&enr, "%s,%s\n", ClassID(i), cl.Pupils[n].ID)
		}
	}
	return map[string][]byte{"school.csv": []byte("SIS ID,Name\nsch-1,Oakfield Academy\n"), "section.csv": []byte(sec.String()), "student.csv": []byte(stu.String()), "studentenrollment.csv": []byte(enr.String()),
		"teacher.csv": []byte(tch.String()), "teacherroster.csv": []byte(ros.String())}
}

// Zip packs CSV files into a zip archive (names as given).
func Zip(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatalf("zip: %v", err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatalf("zip: %v", err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("zip: %v", err)
	}
	return buf.Bytes()
}
