package recording_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 1000
	for _, tc := range []struct {
		header        string
		size          int64
		start, length int64
		bad           bool
	}{
		{header: "", size: size, start: 0, length: size},
		{header: "bytes=0-499", size: size, start: 0, length: 500},
		{header: "bytes=500-999", size: size, start: 500, length: 500},
		{header: "bytes=500-", size: size, start: 500, length: 500},
		{header: "bytes=999-", size: size, start: 999, length: 1},
		{header: "bytes=0-0", size: size, start: 0, length: 1},
		{header: "bytes=-1", size: size, start: 999, length: 1},
		{header: "bytes=-500", size: size, start: 500, length: 500},
		{header: "bytes=-5000", size: size, start: 0, length: size},     // more than there is: all of it
		{header: "bytes=900-5000", size: size, start: 900, length: 100}, // clamped
		{header: "bytes=0-99999999999999999999999", size: size, start: 0, length: size},
		{header: "Bytes = 10-19", size: size, start: 10, length: 10},
		{header: "bytes= 10 - 19 ", size: size, start: 10, length: 10},

		{header: "bytes=1000-", size: size, bad: true}, // starts past the end
		{header: "bytes=1000-1001", size: size, bad: true},
		{header: "bytes=-0", size: size, bad: true},
		{header: "bytes=0-", size: 0, bad: true},
		{header: "bytes=-1", size: 0, bad: true},
		{header: "bytes=5-4", size: size, bad: true},
		{header: "bytes=0-1,5-6", size: size, bad: true},
		{header: "bytes=-", size: size, bad: true},
		{header: "bytes=", size: size, bad: true},
		{header: "bytes=a-b", size: size, bad: true},
		{header: "bytes=+1-2", size: size, bad: true},
		{header: "bytes=-+2", size: size, bad: true},
		{header: "bytes=1--2", size: size, bad: true},
		{header: "bytes=0x10-", size: size, bad: true},
		{header: "items=0-1", size: size, bad: true},
		{header: "bytes 0-1", size: size, bad: true},
		{header: "0-1", size: size, bad: true},
	} {
		start, length, err := recording.ParseRange(tc.header, tc.size)
		if tc.bad {
			require.ErrorIs(t, err, recording.ErrBadRange, "%q size %d", tc.header, tc.size)
			continue
		}
		require.NoError(t, err, "%q size %d", tc.header, tc.size)
		require.Equal(t, [2]int64{tc.start, tc.length}, [2]int64{start, length}, "%q size %d", tc.header, tc.size)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-499", "bytes=500-", "bytes=-500", "bytes=0-1,2-3", "bytes=-0", "bytes=9-1", "Bytes= 1 - 2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(1000))
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		start, length, err := recording.ParseRange(header, size)
		if err != nil {
			if !errors.Is(err, recording.ErrBadRange) {
				t.Fatalf("%q: error %v is not ErrBadRange", header, err)
			}
			return
		}
		if header == "" {
			if start != 0 || length != size {
				t.Fatalf("empty header: %d+%d of %d", start, length, size)
			}
			return
		}
		if start < 0 || length < 1 || start >= size || length > size-start {
			t.Fatalf("%q size %d: start %d length %d outside the object", header, size, start, length)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	_, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 30*time.Second)
	const key = "sessions/s1/p1.webm"
	old := randomBytes(t, 1000)
	data := randomBytes(t, 300_000)
	for _, d := range [][]byte{old, data} { // Open reads the current version
		path := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(path, d, 0o600))
		_, err := b.UploadFile(ctx, key, path, b.RetainUntil(time.Now()), nil)
		require.NoError(t, err)
	}

	info, err := b.Stat(ctx, key)
	require.NoError(t, err)
	require.EqualValues(t, len(data), info.Size)
	require.Equal(t, "video/webm", info.ContentType)

	read := func(off, n int64) ([]byte, recording.ObjectInfo, error) {
		rc, info, err := b.Open(ctx, key, off, n)
		if err != nil {
			return nil, info, err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		return got, info, err
	}
	for _, tc := range []struct{ off, n int64 }{{0, -1}, {0, int64(len(data))}, {10, 100}, {299_999, 1}, {299_999, -1}, {150_000, -1}, {5, 0}} {
		got, info, err := read(tc.off, tc.n)
		require.NoError(t, err, "%d+%d", tc.off, tc.n)
		end := int64(len(data))
		if tc.n >= 0 {
			end = tc.off + tc.n
		}
		require.Equal(t, data[tc.off:end], got, "%d+%d", tc.off, tc.n)
		require.EqualValues(t, len(data), info.Size, "the whole object's size")
	}

	// A Range header as a handler would pass it.
	start, length, err := recording.ParseRange("bytes=-100", info.Size)
	require.NoError(t, err)
	got, _, err := read(start, length)
	require.NoError(t, err)
	require.Equal(t, data[len(data)-100:], got)

	for _, tc := range []struct{ off, n int64 }{{300_000, 1}, {299_990, 11}, {-1, 5}, {300_001, -1}} {
		_, _, err := read(tc.off, tc.n)
		require.ErrorIs(t, err, recording.ErrBadRange, "%d+%d", tc.off, tc.n)
	}
	_, _, err = b.Open(ctx, "sessions/s1/none.webm", 0, -1)
	require.ErrorIs(t, err, recording.ErrNotFound)
}
