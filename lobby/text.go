package lobby

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Free text people type (session titles, reasons, concerns, chat) is shown
// to others. Unicode format characters (category Cf) are invisible and can
// disguise it: U+202E turns "gpj.exe" into what reads as "exe.jpg", and
// zero-width characters hide words from a search of the transcript or the
// audit log. So they are refused, except where emoji need them.

const (
	zwj        = '\u200d' // zero-width joiner: "👩‍🏫" is 👩 ZWJ 🏫
	vs16       = '\ufe0f' // emoji presentation selector (a mark, not Cf), often before a ZWJ
	blackFlag  = '\U0001F3F4'
	tagFirst   = '\U000E0020' // tag characters spell subdivision flags: 🏴 g b e n g ␡ = England
	tagLast    = '\U000E007E'
	cancelTag  = '\U000E007F'
	skinFirst  = '\U0001F3FB' // skin-tone modifiers
	skinLast   = '\U0001F3FF'
	emojiFirst = '\U0001F000' // the emoji planes' blocks (pictographs, transport, supplemental)
	emojiLast  = '\U0001FAFF'
)

// isEmoji approximates Extended_Pictographic, which package unicode lacks:
// the emoji blocks and the older symbols (☀…➿) that emoji sequences use.
func isEmoji(r rune) bool {
	return r >= emojiFirst && r <= emojiLast || r >= '\u2600' && r <= '\u27bf' || r == '\u2b50' || r == '\u2b55' ||
		r == '\u2640' || r == '\u2642' || r == '\u2695' || r == '\u2708'
}

// FormatChar returns the first format character of s that is not part of
// an emoji (a ZWJ between two emoji, the tags of a subdivision flag), and
// whether there is one.
func FormatChar(s string) (rune, bool) {
	prevEmoji, inFlag := false, false
	for i, r := range s {
		switch {
		case r == vs16 || r >= skinFirst && r <= skinLast:
			continue // modifies the emoji before it
		case r == zwj:
			next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
			if !prevEmoji || !isEmoji(next) {
				return r, true
			}
			continue
		case inFlag && (r >= tagFirst && r <= tagLast || r == cancelTag):
			inFlag = r != cancelTag
			continue
		case unicode.Is(unicode.Cf, r):
			return r, true
		}
		prevEmoji, inFlag = isEmoji(r), r == blackFlag
	}
	return 0, false
}

// CheckText refuses free text with a format character, naming the field
// and the character so the person can find and remove it.
func CheckText(field, what, s string) error {
	r, ok := FormatChar(s)
	if !ok {
		return nil
	}
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(
		"The %s has an invisible formatting character (U+%04X) that can disguise text. Delete it (retyping the text removes it) and try again.", what, r)}
}
