package web_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestBrowserPrejoinCheck: a pupil waiting in the lobby sees that the
// connection to the lesson works (and how), with no camera asked for by
// itself; pressing "Check my camera and microphone" shows the camera's
// picture and a microphone bar that moves. Admitted, the pupil joins with
// that same camera and microphone (no second request), media flows both
// ways, and both pages say how they are connected.
func TestBrowserPrejoinCheck(t *testing.T) {
	t.Parallel()
	sc := newRecordingSchool(t, testkit.StartS3(t), "teacher", "head")
	id := liveSession(t, sc, onePupil) // one-to-one: recorded, with the notice
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	waitEval(t, teacher, "the teacher is in the lesson", `document.getElementById('room').dataset.phase`, "admitted")

	pupil := signInBrowser(t, sc.gw, "pupil")
	step(t, pupil, "the pupil opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#precheck`)))
	waitText(t, pupil, "the pupil waits", `#banner`, "Waiting for your teacher")
	waitEval(t, pupil, "the lobby check connects", `window.chaperoneRoom.check.network + ' ' + window.chaperoneRoom.check.transport`, "ok udp")
	require.Contains(t, text(t, pupil, `#check-network`), "Your connection to the lesson works (a direct connection)")
	require.Equal(t, "0", evalString(t, pupil, `String(window.chaperoneRoom.mediaRequests || 0)`), "no camera asked for in the lobby unless the pupil presses the button")

	click(t, pupil, `#check-devices-btn`)
	waitEval(t, pupil, "camera and microphone checked", `window.chaperoneRoom.check.devices`, "ok")
	require.Contains(t, text(t, pupil, `#check-devices`), "Your camera works")
	step(t, pupil, "the camera's picture shows", chromedp.WaitVisible(chromedp.CSS(`#precheck-preview video`)))
	waitUntil(t, pupil, "the microphone bar moves", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(pupil, `String(window.chaperoneRoom.check.micLevel)`)
		if !assert.NoError(c, err) {
			return
		}
		level, err := strconv.ParseFloat(s, 64)
		assert.NoError(c, err)
		assert.Greater(c, level, 0.01)
	})
	waitUntil(t, pupil, "the picture plays", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(pupil, `String(document.querySelector('#precheck-preview video').videoWidth)`)
		assert.NoError(c, err)
		assert.NotEqual(c, "0", s)
	})
	testkit.Screenshot(t, pupil, "lobby-check")
	testkit.Axe(t, pupil, "pupil-lobby-checked")

	require.Equal(t, "false", evalString(t, pupil, `String(document.getElementById('chat-wait').hidden)`), "a waiting pupil is told when they can chat")
	require.Equal(t, "true", evalString(t, pupil, `String(document.getElementById('chat-form').hidden)`), "and gets no chat box that would throw the message away")
	pupilID, teacherID := youID(t, pupil), youID(t, teacher)
	waitLobby(t, teacher, pupilID)
	testkit.Axe(t, teacher, "teacher-lobby")
	click(t, teacher, `#lobby-list li[data-participant="`+pupilID+`"] button.admit`)
	step(t, pupil, "the pupil sees the recording notice", chromedp.WaitVisible(chromedp.CSS(`#recording-notice`)))
	testkit.Axe(t, pupil, "pupil-recording-notice")
	click(t, pupil, `#ack-recording`)
	waitInbound(t, teacher, "teacher", pupilID)
	waitInbound(t, pupil, "pupil", teacherID)
	require.Equal(t, "1", evalString(t, pupil, `String(window.chaperoneRoom.mediaRequests)`), "the checked camera joined the lesson")
	step(t, pupil, "the check panel goes once in the lesson", chromedp.WaitNotVisible(chromedp.CSS(`#precheck`)))
	waitEval(t, pupil, "the chat box opens once in the lesson", `String(document.getElementById('chat-form').hidden)`, "false")
	waitText(t, pupil, "the pupil's page says how it is connected", `#connection-info`, "Connected: a direct connection.")
	waitText(t, teacher, "the teacher's page says how it is connected", `#connection-info`, "Connected: a direct connection.")
	testkit.Axe(t, pupil, "pupil-in-lesson")
	testkit.Axe(t, teacher, "teacher-in-lesson")
}
