package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrBadRange means a Range header is malformed, asks for more than one
// range, or cannot be satisfied; an HTTP handler answers 416.
var ErrBadRange = errors.New("recording: bad or unsatisfiable range")

// ObjectInfo describes the current version of an object for playback.
type ObjectInfo struct {
	Key          string
	VersionID    string
	Size         int64 // of the whole object, for Content-Range
	ContentType  string
	ETag         string
	LastModified time.Time
}

// Stat returns the current version of key; ErrNotFound if there is none.
func (b *Bucket) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	st, err := b.client.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NoSuchVersion" {
			return ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return ObjectInfo{}, fmt.Errorf("recording: stat %s: %w", key, err)
	}
	return ObjectInfo{Key: key, VersionID: st.VersionID, Size: st.Size, ContentType: st.ContentType, ETag: st.ETag, LastModified: st.LastModified}, nil
}

// Open reads length bytes of key from offset (length -1: to the end) for
// playback. The range must lie inside the object (ErrBadRange otherwise;
// see ParseRange); info describes the whole object, and the bytes come from
// that same version.
func (b *Bucket) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	info, err := b.Stat(ctx, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	if length == -1 {
		length = info.Size - offset
	}
	if offset < 0 || length < 0 || offset > info.Size || length > info.Size-offset {
		return nil, ObjectInfo{}, fmt.Errorf("%w: %d bytes from %d of %s (%d bytes)", ErrBadRange, length, offset, key, info.Size)
	}
	opts := minio.GetObjectOptions{VersionID: info.VersionID}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), info, nil
	}
	if offset != 0 || length != info.Size {
		if err := opts.SetRange(offset, offset+length-1); err != nil {
			return nil, ObjectInfo{}, fmt.Errorf("%w: %v", ErrBadRange, err)
		}
	}
	obj, err := b.client.GetObject(ctx, b.name, key, opts)
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("recording: get %s: %w", key, err)
	}
	// GetObject is lazy: Stat sends the request, so a failure shows here
	// and not in the middle of a response.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, ObjectInfo{}, fmt.Errorf("recording: get %s: %w", key, err)
	}
	return obj, info, nil
}

// ParseRange parses a Range header for an object of size bytes: one range,
// "bytes=a-b", "bytes=a-" or "bytes=-n". It returns the first byte and the
// number of bytes, clamped to the object. An empty header means the whole
// object (0, size); the caller answers 200 then, 206 otherwise.
// Malformed headers, several ranges and ranges outside the object are
// ErrBadRange.
func ParseRange(header string, size int64) (start, length int64, err error) {
	if header == "" {
		return 0, size, nil
	}
	bad := func(why string) (int64, int64, error) {
		return 0, 0, fmt.Errorf("%w: %q: %s", ErrBadRange, header, why)
	}
	unit, spec, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return bad("not a bytes range")
	}
	spec = strings.Trim(spec, " \t")
	if strings.Contains(spec, ",") {
		return bad("more than one range")
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return bad("no '-'")
	}
	first, last = strings.Trim(first, " \t"), strings.Trim(last, " \t")
	if first == "" {
		// Suffix: the last n bytes.
		n, ok := parseDigits(last)
		if !ok {
			return bad("bad suffix length")
		}
		if n == 0 || size == 0 {
			return bad("unsatisfiable")
		}
		n = min(n, size)
		return size - n, n, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return bad("bad first byte")
	}
	if a >= size {
		return bad("unsatisfiable")
	}
	if last == "" {
		return a, size - a, nil
	}
	z, ok := parseDigits(last)
	if !ok || z < a {
		return bad("bad last byte")
	}
	z = min(z, size-1)
	return a, z - a + 1, nil
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces);
// a number too large for int64 is math.MaxInt64, which is past any object.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64) // n is MaxInt64 on ErrRange
	return n, err == nil || errors.Is(err, strconv.ErrRange)
}
