package testkit

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
)

func TestS3StopStart(t *testing.T) {
	s := StartS3(t)
	s.MakeLockedBucket(t, "locked")
	s.MakePlainBucket(t, "plain")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lock, _, _, _, err := s.Client.GetObjectLockConfig(ctx, "locked")
	require.NoError(t, err)
	require.Equal(t, "Enabled", lock)
	v, err := s.Client.GetBucketVersioning(ctx, "locked")
	require.NoError(t, err)
	require.True(t, v.Enabled())

	_, err = s.Client.PutObject(ctx, "plain", "a", bytes.NewReader([]byte("hello")), 5,
		minio.PutObjectOptions{DisableContentSha256: true})
	require.NoError(t, err)

	s.Stop()
	_, err = s.Client.ListBuckets(ctx)
	require.Error(t, err, "server answered after Stop")

	s.Start()
	st, err := s.Client.StatObject(ctx, "plain", "a", minio.StatObjectOptions{})
	require.NoError(t, err, "data kept across Stop/Start")
	require.EqualValues(t, 5, st.Size)
}
