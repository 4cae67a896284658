package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// crashGateway runs the chaperone binary as a subprocess (`serve`), so the
// test can kill -9 it.
type crashGateway struct {
	t   *testing.T
	bin string
	env []string
	url string
	cmd *exec.Cmd
	out *syncBuf
}

func (g *crashGateway) start() {
	g.t.Helper()
	g.out = &syncBuf{}
	g.cmd = exec.Command(g.bin, "serve")
	g.cmd.Env = g.env
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	require.NoError(g.t, g.cmd.Start())
	require.Eventually(g.t, func() bool {
		resp, err := http.Get(g.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "gateway up")
}

// term stops the gateway as a restart does (SIGTERM) and waits for it.
func (g *crashGateway) term() {
	g.t.Helper()
	require.NoError(g.t, g.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(g.t, g.cmd.Wait())
}

func (g *crashGateway) kill9() {
	g.t.Helper()
	require.NoError(g.t, g.cmd.Process.Signal(syscall.SIGKILL))
	_ = g.cmd.Wait()
}

// TestKill9DuringRecordedLesson: the gateway is killed (SIGKILL) during a
// recorded one-to-one lesson and started again. Its reconciler uploads and
// indexes the pre-crash parts (size equal to the spool files, manifest,
// recording.stored); the lesson goes on, recorded as new parts with new
// keys; then a SIGTERM restart (parts indexed at shutdown) and a third part.
// Every key has one version; the DSL's session page lists parts 1, 2 and 3;
// the audit chain verifies.
func TestKill9DuringRecordedLesson(t *testing.T) {
	if testkit.VersityGWPath() == "" {
		if os.Getenv("CHAPERONE_REQUIRE_S3") == "1" {
			t.Fatal("versitygw not found: run `make bin/versitygw`")
		}
		t.Skip("versitygw not found (make bin/versitygw)")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "chaperone")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	s3 := testkit.StartS3(t)
	s3.MakeLockedBucket(t, "rec")
	gwPort := testkit.FreePort(t)
	pub := fmt.Sprintf("http://127.0.0.1:%d", gwPort)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	issuer := "http://" + ln.Addr().String()
	users, err := demoidp.SeedUsers()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idp, err := demoidp.New(ctx, demoidp.Config{Issuer: issuer, Users: users, Logger: slog.New(slog.DiscardHandler),
		Clients: []demoidp.Client{{ID: "chaperone", Secret: devClientSecret, RedirectURIs: []string{pub + "/auth/callback"}}}})
	require.NoError(t, err)
	idpSrv := &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = idpSrv.Serve(ln) }()
	defer idpSrv.Close()

	spool, db := filepath.Join(dir, "spool"), filepath.Join(dir, "chaperone.db")
	cfg := devDefaults(pub, issuer)
	for k, v := range map[string]string{"listen": fmt.Sprintf("127.0.0.1:%d", gwPort), "database": "sqlite:" + db, "udp_port": "0",
		"s3_endpoint": s3.Endpoint, "s3_bucket": "rec", "s3_access_key": s3.AccessKey, "s3_secret_key": s3.SecretKey, "s3_region": s3.Region,
		"s3_tls": "false", "spool_dir": spool, "log_level": "info",
		"ice_public_ip": "127.0.0.1"} { // one candidate address: the loopback the test's peers use
		cfg[k] = v
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range cfg {
		env = append(env, "CHAPERONE_"+strings.ToUpper(k)+"="+v)
	}
	g := &crashGateway{t: t, bin: bin, env: env, url: pub}
	g.start()
	defer func() {
		if g.cmd.ProcessState == nil {
			_ = g.cmd.Process.Signal(syscall.SIGTERM)
			_ = g.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("gateway output:\n%s", g.out.String())
		}
	}()

	gw := &testkit.Gateway{URL: pub}
	teacher, head, pupil := testkit.APILogin(t, gw, "teacher"), testkit.APILogin(t, gw, "head"), testkit.APILogin(t, gw, "pupil")
	start := time.Now().Add(5 * time.Minute).Truncate(time.Minute)
	status, res := teacher.Call(http.MethodPost, "/api/sessions", map[string]any{"title": "Year 8 maths", "start": start.Format(time.RFC3339),
		"end": start.Add(time.Hour).Format(time.RFC3339), "roster_group": "year-8"})
	require.Equal(t, http.StatusCreated, status, "%v", res)
	id := res["sessions"].([]any)[0].(map[string]any)["id"].(string)
	status, res = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", res)
	status, res = teacher.Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", res)

	// A recorded one-to-one lesson, media flowing.
	lesson := func() (tID, pID string) {
		// Media clients right after dialling, as the web tests do: they
		// take the server's offers from the first message.
		trc, _, err := testkit.DialRoom(t, teacher, id, "")
		require.NoError(t, err)
		tm := trc.Media(true, true)
		trc.WaitState(map[string]any{"phase": "admitted"})
		require.NoError(t, tm.Start())
		prc, _, err := testkit.DialRoom(t, pupil, id, "")
		require.NoError(t, err)
		pm := prc.Media(true, true)
		pID = welcomeID(t, prc)
		if st := prc.Next(10*time.Second, func(m map[string]any) bool { return m["type"] == "state" }); st["phase"] == "waiting" {
			require.NoError(t, trc.Send(map[string]any{"type": "admit", "id": pID}))
		}
		prc.WaitState(map[string]any{"phase": "admitted"})
		require.NoError(t, pm.Start())
		// The notice is asked for once a session (a rejoin after a restart
		// keeps the acknowledgement).
		acked := false
		require.Eventually(t, func() bool {
			st := prc.Last("state")
			if st["notice"] == true && !acked {
				require.NoError(t, prc.Send(map[string]any{"type": "ack_recording_notice"}))
				acked = true
			}
			return st["gate"] == "open"
		}, 30*time.Second, 50*time.Millisecond, "the pupil's gate opens")
		tID = welcomeID(t, trc)
		defer func() { // on failure, what the gateway audited
			if t.Failed() {
				st, err := store.Open(ctx, "sqlite:"+db)
				if err == nil {
					rows, _ := st.ListAudit(ctx, store.AuditFilter{SessionID: id})
					for _, r := range rows {
						t.Logf("AUDIT %s %s %s", r.Action, r.ActorName, r.Detail)
					}
					st.Close()
				}
			}
		}()
		require.Eventually(t, func() bool {
			return tm.Received(pID, "video").Packets > 30 && pm.Received(tID, "video").Packets > 30
		}, 30*time.Second, 50*time.Millisecond, "media flows in the recorded lesson")
		return tID, pID
	}
	tID, pID := lesson()
	time.Sleep(2 * time.Second) // recorded, fsynced
	g.kill9()
	crashed := map[string]int64{}
	files, _ := filepath.Glob(filepath.Join(spool, id, "*.webm"))
	for _, f := range files {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		crashed[recording.SessionPrefix(id)+filepath.Base(f)] = fi.Size()
		_, err = os.Stat(f + ".json")
		require.NoError(t, err, "sidecar of %s", f)
	}
	require.Len(t, crashed, 2, "teacher's and pupil's part 1 left in the spool: %v", files)

	// Restart: the reconciler indexes the pre-crash parts; the lesson goes
	// on as new parts.
	g.start()
	st, err := store.Open(ctx, "sqlite:"+db)
	require.NoError(t, err)
	defer st.Close()
	indexed := func() map[string]store.RecordingObject {
		objs, err := st.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
		require.NoError(t, err)
		out := map[string]store.RecordingObject{}
		for _, o := range objs {
			if o.ParticipantID != "" {
				out[o.Key] = o
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(indexed()) == 2 }, 60*time.Second, 200*time.Millisecond, "pre-crash parts indexed")
	for key, size := range crashed {
		o, ok := indexed()[key]
		require.True(t, ok, key)
		require.Equal(t, size, o.Size, "%s: object size equals its spool file", key)
		require.Equal(t, 1, o.Part)
	}
	lesson()
	time.Sleep(time.Second)

	// A SIGTERM restart: the gateway finishes and indexes part 2 before it
	// exits; the lesson goes on as part 3.
	g.term()
	require.Len(t, indexed(), 4, "parts 2 indexed at shutdown")
	g.start()
	lesson()
	time.Sleep(time.Second)
	trc, _, err := testkit.DialRoom(t, teacher, id, "")
	require.NoError(t, err)
	trc.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, trc.Send(map[string]any{"type": "end"}))
	stored := func() int {
		rows, err := st.ListAudit(ctx, store.AuditFilter{SessionID: id, Action: "recording.stored"})
		require.NoError(t, err)
		return len(rows)
	}
	require.Eventually(t, func() bool { return len(indexed()) == 6 && stored() == 6 }, 60*time.Second, 200*time.Millisecond, "every part indexed")
	for _, who := range []string{tID, pID} {
		for _, n := range []int{1, 2, 3} {
			key := recording.PartKey(id, who, n)
			_, ok := indexed()[key]
			require.True(t, ok, key)
			rows, err := st.ListAudit(ctx, store.AuditFilter{Action: "recording.stored", Target: key})
			require.NoError(t, err)
			require.Len(t, rows, 1, key)
		}
	}
	for o := range s3.Client.ListObjects(ctx, "rec", minio.ListObjectsOptions{Prefix: recording.SessionPrefix(id), Recursive: true, WithVersions: true}) {
		require.NoError(t, o.Err)
		require.True(t, o.IsLatest, "%s written once", o.Key)
	}
	require.NoError(t, st.VerifyAudit(ctx))
	dsl := testkit.APILogin(t, gw, "dsl")
	resp, err := dsl.HTTP.Get(pub + "/recordings/" + id)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, label := range []string{"part 1", "part 2", "part 3"} {
		require.Contains(t, string(body), label)
	}
}

// welcomeID is the participant ID in a connection's welcome message.
func welcomeID(t *testing.T, rc *testkit.RoomConn) string {
	t.Helper()
	require.Eventually(t, func() bool { return rc.Last("welcome") != nil }, 15*time.Second, 20*time.Millisecond)
	you, _ := rc.Last("welcome")["you"].(map[string]any)
	id, _ := you["id"].(string)
	require.NotEmpty(t, id)
	return id
}
