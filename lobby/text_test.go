package lobby

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// TestFormatChar (issue 18, finding 4): format characters (Cf) are refused
// in free text, except inside emoji.
func TestFormatChar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, s string
		bad     rune // 0: accepted
	}{
		{"plain", "Year 8 maths catch-up", 0},
		{"accents and newlines", "Zoë's\nrevision", 0},
		{"right-to-left override", "Homework \u202egpj.exe", 0x202E},
		{"left-to-right isolate", "a\u2066b", 0x2066},
		{"pop directional", "a\u202cb", 0x202C},
		{"zero-width space", "ex\u200bam", 0x200B},
		{"zero-width non-joiner", "ex\u200cam", 0x200C},
		{"word joiner", "ex\u2060am", 0x2060},
		{"byte-order mark", "\ufeffTitle", 0xFEFF},
		{"soft hyphen", "in\u00advisible", 0x00AD},
		{"Arabic letter mark", "a\u061cb", 0x061C},
		{"interlinear annotation", "a\ufff9b", 0xFFF9},
		{"tag outside a flag", "hi\U000E0041", 0xE0041},
		{"ZWJ between letters", "a\u200db", 0x200D},
		{"ZWJ at the end", "🙂\u200d", 0x200D},
		{"ZWJ after emoji, before letter", "🙂\u200da", 0x200D},
		{"teacher emoji (ZWJ sequence)", "Well done 👩\u200d🏫", 0},
		{"heart on fire (VS16 then ZWJ)", "❤\ufe0f\u200d🔥", 0},
		{"skin tone then ZWJ", "👩🏽\u200d💻", 0},
		{"family", "👨\u200d👩\u200d👧", 0},
		{"England flag (tags)", "Go 🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F!", 0},
		{"tags after the flag ended", "🏴\U000E0067\U000E007F\U000E0067", 0xE0067},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, bad := FormatChar(tc.s)
			require.Equal(t, tc.bad != 0, bad, "%U", r)
			require.Equal(t, tc.bad, r)
			err := CheckText("title", "title", tc.s)
			if tc.bad == 0 {
				require.NoError(t, err)
				return
			}
			var le *Error
			require.True(t, errors.As(err, &le))
			require.Equal(t, Invalid, le.Kind)
			require.Contains(t, le.Message, "invisible formatting character")
		})
	}
}

// FuzzFormatChar: the character reported is a format character of the
// text; text reported clean has none but the joiners and tags of emoji.
func FuzzFormatChar(f *testing.F) {
	for _, s := range []string{"Year 8", "a\u202eb", "👩\u200d🏫", "🏴\U000E0067\U000E007F", "\u200d", "❤\ufe0f\u200d🔥"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, bad := FormatChar(s)
		if bad {
			require.True(t, unicode.Is(unicode.Cf, r), "%U", r)
			require.True(t, strings.ContainsRune(s, r))
			return
		}
		for _, c := range s {
			if unicode.Is(unicode.Cf, c) {
				require.True(t, c == zwj || c >= tagFirst && c <= cancelTag, "%U passed in %+q", c, s)
			}
		}
	})
}
