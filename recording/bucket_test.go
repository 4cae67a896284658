package recording_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London without the system's zoneinfo

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
)

// config returns a BucketConfig for bucket on s.
func config(s *testkit.S3, bucket, mode string) recording.BucketConfig {
	return recording.BucketConfig{
		Endpoint: s.Endpoint, Bucket: bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		Region: s.Region, RetentionDays: 28, LockMode: mode,
	}
}

// lockedBucket starts versitygw, makes a locked bucket and opens it.
func lockedBucket(t *testing.T, mode string) (*testkit.S3, *recording.Bucket) {
	t.Helper()
	s := testkit.StartS3(t)
	s.MakeLockedBucket(t, "recordings")
	b, err := recording.OpenBucket(ctxT(t, 10*time.Second), config(s, "recordings", mode))
	require.NoError(t, err)
	return s, b
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// objectSum returns the size and SHA-256 of the current version of key.
func objectSum(t *testing.T, s *testkit.S3, bucket, key string) (int64, [32]byte) {
	t.Helper()
	obj, err := s.Client.GetObject(ctxT(t, 30*time.Second), bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	require.NoError(t, err)
	return n, [32]byte(h.Sum(nil))
}

func TestOpenBucket(t *testing.T) {
	t.Parallel()
	s := testkit.StartS3(t)
	s.MakeLockedBucket(t, "locked")
	s.MakePlainBucket(t, "plain")
	s.MakeVersionedBucket(t, "versioned")

	t.Run("locked", func(t *testing.T) {
		b, err := recording.OpenBucket(ctxT(t, 10*time.Second), config(s, "locked", recording.LockGovernance))
		require.NoError(t, err)
		require.NoError(t, b.Ping(ctxT(t, 5*time.Second)))
		start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		require.Equal(t, time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC), b.RetainUntil(start))
		// Across the change to summer time: still 28 full days.
		london, err := time.LoadLocation("Europe/London")
		require.NoError(t, err)
		start = time.Date(2026, 3, 20, 9, 0, 0, 0, london)
		require.Equal(t, 28*24*time.Hour, b.RetainUntil(start).Sub(start))
	})
	for _, name := range []string{"plain", "versioned"} {
		t.Run(name+" has no object lock", func(t *testing.T) {
			_, err := recording.OpenBucket(ctxT(t, 10*time.Second), config(s, name, recording.LockGovernance))
			require.ErrorIs(t, err, recording.ErrNoObjectLock)
			require.Contains(t, err.Error(), `"`+name+`"`)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := recording.OpenBucket(ctxT(t, 10*time.Second), config(s, "nosuchbucket", recording.LockGovernance))
		require.ErrorIs(t, err, recording.ErrNoBucket)
		require.Contains(t, err.Error(), `"nosuchbucket"`)
	})
	t.Run("versioning cannot be suspended", func(t *testing.T) {
		// So ErrNoVersioning cannot happen to a locked bucket on
		// versitygw (nor on AWS); OpenBucket checks anyway.
		s.MakeLockedBucket(t, "suspended")
		require.Error(t, s.Client.SuspendVersioning(ctxT(t, 5*time.Second), "suspended"))
		_, err := recording.OpenBucket(ctxT(t, 10*time.Second), config(s, "suspended", recording.LockGovernance))
		require.NoError(t, err)
	})
	t.Run("wrong credentials", func(t *testing.T) {
		cfg := config(s, "locked", recording.LockGovernance)
		cfg.SecretKey = "not-the-secret"
		_, err := recording.OpenBucket(ctxT(t, 10*time.Second), cfg)
		require.Error(t, err)
		require.Contains(t, err.Error(), `"locked"`)
	})
}

func TestOpenBucketConfig(t *testing.T) {
	t.Parallel()
	good := recording.BucketConfig{Endpoint: "127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "s", RetentionDays: 28, LockMode: recording.LockCompliance}
	for _, tc := range []struct {
		name   string
		edit   func(*recording.BucketConfig)
		is     error
		naming string
	}{
		{"retention 27", func(c *recording.BucketConfig) { c.RetentionDays = 27 }, recording.ErrRetentionTooShort, "retention_days"},
		{"retention 0", func(c *recording.BucketConfig) { c.RetentionDays = 0 }, recording.ErrRetentionTooShort, "retention_days"},
		{"lock mode", func(c *recording.BucketConfig) { c.LockMode = "governance-ish" }, nil, "lock_mode"},
		{"no lock mode", func(c *recording.BucketConfig) { c.LockMode = "" }, nil, "lock_mode"},
		{"no endpoint", func(c *recording.BucketConfig) { c.Endpoint = "" }, nil, "s3_endpoint"},
		{"endpoint URL", func(c *recording.BucketConfig) { c.Endpoint = "https://s3.example.org" }, nil, "s3_endpoint"},
		{"no bucket", func(c *recording.BucketConfig) { c.Bucket = "" }, nil, "s3_bucket"},
		{"no secret", func(c *recording.BucketConfig) { c.SecretKey = "" }, nil, "s3_secret_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := recording.OpenBucket(context.Background(), cfg)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.naming)
		})
	}
}

func TestOpenBucketUnreachable(t *testing.T) {
	t.Parallel()
	port := testkit.FreePort(t) // nothing listens there
	cfg := recording.BucketConfig{Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Bucket: "recordings",
		AccessKey: "a", SecretKey: "s", Region: "us-east-1", RetentionDays: 28, LockMode: recording.LockGovernance}
	start := time.Now()
	_, err := recording.OpenBucket(ctxT(t, 60*time.Second), cfg)
	require.Error(t, err)
	require.Less(t, time.Since(start), 20*time.Second, "a refused connection must fail fast")
	require.Contains(t, err.Error(), cfg.Endpoint)
	require.False(t, errors.Is(err, recording.ErrNoBucket))
}

func TestPutJSONAndList(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockCompliance)
	ctx := ctxT(t, 30*time.Second)
	until := b.RetainUntil(time.Now())
	require.NoError(t, b.PutJSON(ctx, "sessions/s1/manifest.json", map[string]string{"title": "Year 9 maths"}, until))
	require.NoError(t, b.PutJSON(ctx, "sessions/s1/manifest.json", map[string]string{"title": "Year 9 maths (final)"}, until))

	st, err := s.Client.StatObject(ctx, "recordings", "sessions/s1/manifest.json", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, "application/json", st.ContentType)

	objs, err := b.List(ctx, "sessions/s1/")
	require.NoError(t, err)
	require.Len(t, objs, 2, "both versions")
	for _, o := range objs {
		// versitygw omits the lock headers on a HEAD of a noncurrent
		// version; List must still report its retention.
		require.Equal(t, recording.LockCompliance, o.Mode, "version %s", o.VersionID)
		require.WithinDuration(t, until, o.RetainUntil, time.Second, "version %s", o.VersionID)
		require.False(t, o.LegalHold)
		require.False(t, o.DeleteMarker)
	}

	// COMPLIANCE: no bypass.
	err = s.Client.RemoveObject(ctx, "recordings", "sessions/s1/manifest.json", minio.RemoveObjectOptions{VersionID: objs[0].VersionID, GovernanceBypass: true})
	require.Error(t, err, "a COMPLIANCE version was deleted before its retention ended")

	_, err = b.SetLegalHold(ctx, "", true)
	require.Error(t, err, "a hold on the whole bucket")
}

func TestUploadFile(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 30*time.Second)
	data := randomBytes(t, 7<<20) // more than one part
	path := t.TempDir() + "/a.webm"
	require.NoError(t, os.WriteFile(path, data, 0o600))
	info, err := b.UploadFile(ctx, "sessions/s1/a.webm", path, b.RetainUntil(time.Now()), map[string]string{"participant": "p1"})
	require.NoError(t, err)
	require.EqualValues(t, len(data), info.Size)
	require.NotEmpty(t, info.VersionID)
	n, sum := objectSum(t, s, "recordings", "sessions/s1/a.webm")
	require.EqualValues(t, len(data), n)
	require.Equal(t, sha256.Sum256(data), sum)

	st, err := s.Client.StatObject(ctx, "recordings", "sessions/s1/a.webm", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, "video/webm", st.ContentType)
	require.Equal(t, "p1", st.UserMetadata["Participant"])
	require.Equal(t, recording.LockGovernance, st.Metadata.Get("X-Amz-Object-Lock-Mode"))

	_, err = b.UploadFile(ctx, "sessions/s1/b.webm", path, time.Time{}, nil)
	require.Error(t, err, "upload without retention")
	_, err = b.UploadFile(ctx, "sessions/s1/c.webm", path+".missing", b.RetainUntil(time.Now()), nil)
	require.Error(t, err)
}

// keys returns "key@version" of objs, sorted as List returned them.
func keys(objs []recording.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s@%s", o.Key, o.VersionID))
	}
	return out
}

func sessionPrefix(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) < 3 {
		return key
	}
	return parts[0] + "/" + parts[1] + "/"
}
