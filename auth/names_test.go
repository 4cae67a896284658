package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFullNameDeceptive (issue 18, finding 3): names that got past R2 when
// an IdP carried them, and their honest neighbours that must still pass.
func TestFullNameDeceptive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw, want, code string
	}{
		// The findings.
		{"Hangul fillers", "\u3164 \u3164", "", RefuseNameInvisible},
		{"Hangul filler after a name", "Amelia Jones\u3164", "", RefuseNameInvisible},
		{"halfwidth Hangul filler", "Amelia \uffa0Jones", "", RefuseNameInvisible},
		{"choseong filler", "\u115f\u115f Jones", "", RefuseNameInvisible},
		{"braille blank", "Amelia \u2800", "", RefuseNameInvisible},
		{"combining grapheme joiner", "Ame\u034flia Jones", "", RefuseNameInvisible},
		{"variation selector", "Amelia\ufe00 Jones", "", RefuseNameInvisible},
		{"Cyrillic A in Amelia", "Аmelia Jones", "", RefuseNameMixed},
		{"Cyrillic o in Jones", "Amelia Jоnes", "", RefuseNameMixed},
		{"Greek omicron in Jones", "Amelia Jοnes", "", RefuseNameMixed},
		{"Cyrillic S in Student", "Ѕtudent Тest", "", RefuseNameMixed},
		{"all-Cyrillic placeholder", "Аnna Тест", "", RefuseNameMixed},
		{"200 combining marks", "Amelia J" + strings.Repeat("\u0301", 200) + "ones", "", RefuseNameLong},
		{"five combining marks on a letter", "Amelia J" + strings.Repeat("\u0301", 5) + "ones", "", RefuseNameChars},
		{"only combining marks", "Amelia \u0301\u0302\u0303", "", RefuseNameChars},
		{"20,006-byte name", "Amelia " + strings.Repeat("x", 20000), "", RefuseNameLong},
		{"101 characters", "Amelia " + strings.Repeat("y", 94), "", RefuseNameLong},
		// Honest names.
		{"100 characters", "Amelia " + strings.Repeat("y", 93), "Amelia " + strings.Repeat("y", 93), ""},
		{"fullwidth letters normalised", "Ｚｏë Ｏ'Ｂｒｉｅｎ", "Zoë O'Brien", ""},
		{"decomposed accent composed", "Zoe\u0308 Lefe\u0300vre", "Zoë Lefèvre", ""},
		{"Vietnamese, two marks on a letter", "Nguyễn Thị Ánh", "Nguyễn Thị Ánh", ""},
		{"Vietnamese decomposed", "Nguye\u0302\u0303n Anh", "Nguyễn Anh", ""},
		{"Greek", "Νίκος Παπαδόπουλος", "Νίκος Παπαδόπουλος", ""},
		{"Cyrillic", "Дмитрий Иванов", "Дмитрий Иванов", ""},
		{"Devanagari (spacing vowel signs)", "सिद्धार्थ शर्मा", "सिद्धार्थ शर्मा", ""},
		{"Latin and Cyrillic words side by side", "Ivan Иванов", "Ivan Иванов", ""},
		{"Japanese", "山田 はなこ", "山田 はなこ", ""},
		{"Korean", "김 민준", "김 민준", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ref := testPolicy.FullName(Claims{Name: tc.raw})
			if tc.code == "" {
				require.Nil(t, ref, "%v", ref)
				require.Equal(t, tc.want, got)
				return
			}
			require.NotNil(t, ref, "accepted %q", got)
			require.Equal(t, tc.code, ref.Code, ref.Message)
			require.LessOrEqual(t, len(ref.Message), 600, "the refusal does not copy a huge name")
		})
	}
}

// TestPlaceholderBySkeleton: a placeholder word spelt in look-alike
// letters of one other alphabet is still a placeholder.
func TestPlaceholderBySkeleton(t *testing.T) {
	t.Parallel()
	p := testPolicy
	p.PlaceholderWords = []string{"coach"}
	_, ref := p.FullName(Claims{Name: "Maria соасһ"}) // all Cyrillic: с о а с һ
	require.NotNil(t, ref)
	require.Equal(t, RefuseNamePlaceholder, ref.Code)
	_, ref = p.FullName(Claims{Name: "Maria Коваль"})
	require.Nil(t, ref)
}

// TestNameSkeleton: names that look alike have equal skeletons.
func TestNameSkeleton(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b  string
		alike bool
	}{
		{"Amelia Jones", "Amelia Jones", true},
		{"Amelia Jones", "amelia  jones", true},
		{"Amelia Jones", "Аmеliа Jоnеѕ", true}, // Cyrillic а, е, о, ѕ
		{"Amelia Jones", "Αmelia Jones", true}, // Greek capital alpha
		{"Isla Brown", "lsla Brown", true},
		{"Kim Smith", "Kirn Smith", true},
		{"Zoë Lefèvre", "Zoe\u0308 Lefe\u0300vre", true},
		{"Amelia Jones", "Amelia James", false},
		{"Zoë Smith", "Zoe Smith", false},
		{"Дмитрий Иванов", "Dmitry Ivanov", false},
	} {
		require.Equal(t, tc.alike, LooksLike(tc.a, tc.b), "%q ~ %q: %q %q", tc.a, tc.b, NameSkeleton(tc.a), NameSkeleton(tc.b))
	}
}
