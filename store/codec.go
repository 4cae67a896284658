package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// timeLayout is how times are stored: UTC, fixed width, nanoseconds. Fixed
// width makes text order equal time order, so SQL compares times as strings;
// nanoseconds make a stored time read back equal to what was written.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// encodeTime formats t for storage. Years outside 0000-9999 are refused: they
// would break the fixed width that ordering depends on.
func encodeTime(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("time %s out of range (years 0000-9999)", t)
	}
	return t.Format(timeLayout), nil
}

// mustEncodeTime is encodeTime for times known to be in range, such as now.
func mustEncodeTime(t time.Time) string {
	s, err := encodeTime(t)
	if err != nil {
		panic(err)
	}
	return s
}

// decodeTime parses a stored time. The result is in UTC with no monotonic
// reading, so it is == to normalise(t) for the t that was stored.
func decodeTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// normalise returns t as it reads back from the store: UTC, no monotonic
// clock reading.
func normalise(t time.Time) time.Time { return t.Round(0).UTC() }

// encodeList stores a list as a JSON array; nil is stored as null so that nil
// and empty lists read back as they were written.
func encodeList(l []string) string {
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // []string always marshals
	}
	return string(b)
}

func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("stored list %q: %w", s, err)
	}
	return l, nil
}

// rowEncoder collects the first error of encoding several fields, so callers
// can encode a row in a block and check once.
type rowEncoder struct{ err error }

func (e *rowEncoder) time(name string, t time.Time) string {
	s, err := encodeTime(t)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return s
}

// rowDecoder is rowEncoder's counterpart for reading rows.
type rowDecoder struct{ err error }

func (d *rowDecoder) time(name, s string) time.Time {
	t, err := decodeTime(s)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return t
}

func (d *rowDecoder) list(name, s string) []string {
	l, err := decodeList(s)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return l
}
