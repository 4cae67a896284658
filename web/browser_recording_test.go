package web_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
)

// TestBrowserRecordingNotice: a teacher and one pupil in Chromium. The
// lesson is recorded (one-to-one); the pupil sees the notice and
// acknowledges it; both see the indicator; media then flows; the stored
// recording of the pupil plays (ffprobe: Opus and VP8).
func TestBrowserRecordingNotice(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head")
	id := liveSession(t, sc, onePupil)
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "teacher: #lobby", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	pupil := signInBrowser(t, sc.gw, "pupil")
	step(t, pupil, "pupil: #banner", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	pupilID := youID(t, pupil)
	waitLobby(t, teacher, pupilID)
	click(t, teacher, `#lobby-list li[data-participant="`+pupilID+`"] button.admit`)

	step(t, pupil, "pupil: #recording-notice", chromedp.WaitVisible(chromedp.CSS(`#recording-notice`)))
	require.Contains(t, text(t, pupil, `#recording-notice`), "This lesson is being recorded")
	require.Contains(t, text(t, pupil, `#banner`), "recorded")
	testkit.Screenshot(t, pupil, "recording-notice")
	teacherID := youID(t, teacher)
	require.Empty(t, inbound(t, pupil)[teacherID+"/video"], "no media before the notice is acknowledged")
	step(t, pupil, "pupil: #ack-recording, #recording-notice", chromedp.Click(chromedp.CSS(`#ack-recording`)), chromedp.WaitNotVisible(chromedp.CSS(`#recording-notice`)))
	for _, ctx := range []context.Context{teacher, pupil} {
		step(t, ctx, "ctx: #recording-indicator", chromedp.WaitVisible(chromedp.CSS(`#recording-indicator`)))
		require.Contains(t, text(t, ctx, `#recording-indicator`), "Recording")
	}
	waitInbound(t, teacher, "teacher", pupilID)
	waitInbound(t, pupil, "pupil", teacherID)
	testkit.Screenshot(t, teacher, "recording-teacher")
	time.Sleep(3 * time.Second) // a few seconds of lesson

	step(t, teacher, "teacher: #end-session, #end-confirm-yes", chromedp.Click(chromedp.CSS(`#end-session`)), chromedp.Click(chromedp.CSS(`#end-confirm-yes`)))
	step(t, pupil, "pupil: #notice", chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	require.Contains(t, strings.ToLower(text(t, pupil, `#notice`)), "ended")

	key := recording.PartKey(id, pupilID, 1)
	var path string
	require.Eventually(t, func() bool {
		obj, err := s3.Client.GetObject(context.Background(), sc.gw.BucketName, recording.PartManifestKey(id, pupilID, 1), minio.GetObjectOptions{})
		if err != nil {
			return false
		}
		defer obj.Close()
		if _, err := io.ReadAll(obj); err != nil {
			return false
		}
		return true
	}, 60*time.Second, 250*time.Millisecond, "manifest stored")
	obj, err := s3.Client.GetObject(context.Background(), sc.gw.BucketName, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "pupil.webm")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.Copy(f, obj)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	probe := webmtest.Probe(t, path)
	require.ElementsMatch(t, []string{"opus", "vp8"}, probe.Codecs())
	require.Greater(t, probe.Duration, 2*time.Second)
}
