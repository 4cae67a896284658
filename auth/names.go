package auth

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The full-name rule (R2) beyond letters and words: a name is shown to
// staff as proof of who someone is, so it must not be blank-looking, huge,
// or built to look like somebody else's.

const (
	// MaxNameRunes bounds a name after normalising: it is copied into every
	// roster message and audit row.
	MaxNameRunes = 100
	// maxNameBytes is checked before normalising (which may expand text).
	maxNameBytes = 4 * MaxNameRunes * 4
	// maxMarksInARow bounds the combining marks on one letter: Vietnamese
	// stacks two, Thai and the Indic scripts a few; hundreds are "Zalgo"
	// text that spills over the names around it.
	maxMarksInARow = 4
)

// invisibleLetters are letters and marks that render as nothing (fillers),
// so a name made of them looks blank or hides extra characters. NFKC has
// already mapped U+3164 and U+FFA0 to U+1160.
var invisibleLetters = map[rune]bool{
	'\u115f': true, '\u1160': true, '\u3164': true, '\uffa0': true, // Hangul fillers
	'\u2800': true,                 // braille pattern blank
	'\u034f': true,                 // combining grapheme joiner
	'\u17b4': true, '\u17b5': true, // Khmer inherent vowels
	'\u180b': true, '\u180c': true, '\u180d': true, '\u180e': true, '\u180f': true, // Mongolian selectors
	'\u3000': true, // ideographic space (Fields splits on it; here for completeness)
}

// invisible reports letters that render as nothing: the fillers above and
// the variation selectors.
func invisible(r rune) bool {
	return invisibleLetters[r] || r >= '\ufe00' && r <= '\ufe0f' || r >= '\U000E0100' && r <= '\U000E01EF'
}

// isMark reports combining marks: nonspacing (é's accent), spacing (the
// vowel signs of Indic scripts) and enclosing.
func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Mc, unicode.Me) }

// normaliseName is NFKC: compatibility forms become the plain letters
// people see ("Ｚｏë" is "Zoë"), so the checks and the skeleton see them.
func normaliseName(s string) string { return norm.NFKC.String(s) }

// wordScripts are the alphabets whose letters look alike (A, А, Α): one word
// mixing them is built to deceive, not a real name. Other mixtures (Han and
// Hiragana in a Japanese name) are normal and allowed.
var wordScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek}

// mixesScripts reports whether word has letters from more than one of
// wordScripts.
func mixesScripts(word string) bool {
	seen := -1
	for _, r := range word {
		for i, t := range wordScripts {
			if unicode.Is(t, r) {
				if seen >= 0 && seen != i {
					return true
				}
				seen = i
			}
		}
	}
	return false
}

// tooManyMarks reports a letter carrying more than maxMarksInARow marks.
func tooManyMarks(word string) bool {
	n := 0
	for _, r := range word {
		if isMark(r) {
			if n++; n > maxMarksInARow {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

// confusables maps letters of other scripts to the Latin letter they look
// like (a small part of Unicode TR39's table: the Cyrillic and Greek letters
// that pass for Latin ones in a name). Capital I and l look alike in most
// fonts, so both become l.
var confusables = map[rune]rune{
	// Cyrillic capitals
	'А': 'A', 'В': 'B', 'Е': 'E', 'Ѐ': 'È', 'Ё': 'Ë', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T',
	'Х': 'X', 'Ѕ': 'S', 'І': 'l', 'Ї': 'Ï', 'Ј': 'J', 'Ү': 'Y', 'Ԛ': 'Q', 'Ԝ': 'W', 'Ӏ': 'l', 'Һ': 'h',
	// Cyrillic small
	'а': 'a', 'е': 'e', 'ѐ': 'è', 'ё': 'ë', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i',
	'ї': 'ï', 'ј': 'j', 'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ԁ': 'd', 'ү': 'y', 'ɡ': 'g',
	// Greek capitals
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'l', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P',
	'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
	// Greek small
	'ο': 'o', 'α': 'a', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ρ': 'p', 'υ': 'u', 'χ': 'x', 'ϲ': 'c', 'ϳ': 'j',
	// Latin look-alikes
	'I': 'l', 'ı': 'i', '’': '\'',
}

// NameSkeleton is what a name looks like, for telling whether two names
// could be mistaken for each other (after Unicode TR39's skeleton, with the
// table above): normalised, look-alike letters mapped to Latin, "rn" as
// "m", case and spacing ignored. Equal skeletons look alike.
func NameSkeleton(name string) string {
	look := func(r rune) rune {
		if c, ok := confusables[r]; ok {
			return c
		}
		return r
	}
	// Mapped before lower case (capital I is l) and after (the small
	// letter of an unmapped capital may be a look-alike: У, у, y).
	s := strings.Map(look, norm.NFD.String(normaliseName(name)))
	s = strings.Map(look, strings.ToLower(s))
	s = norm.NFD.String(s) // mapped letters with accents (È) decomposed again
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "rn", "m")
}

// LooksLike reports whether two different names look alike: same skeleton.
// Equal names look alike too (two pupils called Amelia Jones).
func LooksLike(a, b string) bool { return NameSkeleton(a) == NameSkeleton(b) }
