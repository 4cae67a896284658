package main

// The files under deploy/ are configuration an IT admin copies: these tests
// keep them true to parseConfig. Every CHAPERONE_* name and every flag in
// them must be a key parseConfig reads; each example configuration (compose,
// Kubernetes, systemd), with its secrets written to temporary files, must
// parse; and the pieces that must agree (secret files and mounts, ports,
// the Keycloak realm and the gateway's groups) must agree.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
)

const deployDir = "../../deploy"

// configKeys asks parseConfig which keys it reads: it looks every key up in
// the environment (unless a flag set it), so the names it asks for are the
// keys.
func configKeys(t *testing.T) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	_, _ = parseConfig("serve", nil, func(name string) string {
		keys[strings.ToLower(strings.TrimPrefix(name, "CHAPERONE_"))] = true
		return ""
	}, nil)
	// The probe works only if it sees the keys: a few that must be there.
	for _, k := range []string{"public_url", "oidc_client_secret_file", "s3_secret_key_file", "spool_dir", "udp_port", "trusted_proxies"} {
		require.True(t, keys[k], "parseConfig did not ask for %s", k)
	}
	return keys
}

var envNameRE = regexp.MustCompile(`CHAPERONE_[A-Z0-9_]+`)

// unknownEnvNames returns the CHAPERONE_* names in text that are not keys.
func unknownEnvNames(text string, keys map[string]bool) []string {
	var bad []string
	for _, n := range envNameRE.FindAllString(text, -1) {
		if !keys[strings.ToLower(strings.TrimPrefix(n, "CHAPERONE_"))] {
			bad = append(bad, n)
		}
	}
	return bad
}

// flagKeys returns the keys of the flags in args ("-key=v", "--key v"), and
// an error for an argument that is neither a flag nor a flag's value.
func flagKeys(args []string) ([]string, error) {
	var keys []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("argument %q is not a flag", a)
		}
		k := strings.TrimLeft(a, "-")
		if j := strings.IndexByte(k, '='); j >= 0 {
			k = k[:j]
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++ // its value
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// serveFlagsRE finds `chaperone serve -flag ...` in prose and scripts.
var serveFlagsRE = regexp.MustCompile(`chaperone serve((?:[ \t]+--?[a-z0-9_]+(?:=\S*)?(?:[ \t]+[^-\s]\S*)?)*)`)

func deployFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "secrets" { // made by make-secrets.sh, not in git
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() != ".env" {
			files = append(files, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	require.NoError(t, err)
	return string(b)
}

func TestDeployNamesAreConfigKeys(t *testing.T) {
	t.Parallel()
	keys := configKeys(t)

	// The checks themselves catch a wrong name.
	require.Equal(t, []string{"CHAPERONE_PUBLIC_URI"}, unknownEnvNames("CHAPERONE_PUBLIC_URL=x CHAPERONE_PUBLIC_URI=y", keys))
	got, err := flagKeys([]string{"-listen=:1", "--public_url", "https://x", "-s3_tls", "false"})
	require.NoError(t, err)
	require.Equal(t, []string{"listen", "public_url", "s3_tls"}, got)
	_, err = flagKeys([]string{"serve"})
	require.Error(t, err)

	seen := 0
	for _, f := range deployFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		text := string(b)
		require.Empty(t, unknownEnvNames(text, keys), "%s names configuration keys that chaperone does not have", f)
		seen += len(envNameRE.FindAllString(text, -1))
		for _, m := range serveFlagsRE.FindAllStringSubmatch(text, -1) {
			fk, err := flagKeys(strings.Fields(m[1]))
			require.NoError(t, err, "%s: %q", f, m[0])
			for _, k := range fk {
				require.True(t, keys[k], "%s: flag -%s in %q is not a configuration key", f, k, m[0])
			}
		}
	}
	require.Greater(t, seen, 50, "the deploy files name configuration keys")
}

func TestDeployYAMLWellFormed(t *testing.T) {
	t.Parallel()
	n := 0
	for _, f := range deployFiles(t) {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" {
			continue
		}
		docs := yamlDocs(t, f)
		require.NotEmpty(t, docs, f)
		n++
		if !strings.Contains(f, "kubernetes") || filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, d := range docs {
			require.NotEmpty(t, d["apiVersion"], "%s: a document without apiVersion", f)
			require.NotEmpty(t, d["kind"], "%s: a document without kind", f)
			require.NotEmpty(t, mapAt(t, d, "metadata")["name"], "%s: a document without metadata.name", f)
			require.Nil(t, mapAt(t, d, "metadata")["namespace"], "%s: keep the manifests namespace-less (kubectl -n / kustomize sets it)", f)
		}
	}
	require.GreaterOrEqual(t, n, 6)

	// A broken file is caught.
	_, err := decodeYAML(strings.NewReader("a: [1, 2\nb: c"))
	require.Error(t, err)
}

func TestDeployCompose(t *testing.T) {
	t.Parallel()
	compose := yamlDocs(t, filepath.Join(deployDir, "docker-compose.yml"))[0]
	// Compose interpolates the whole file: every $ must be ${NAME...} with a
	// default (so it runs without .env) or an escaped $$.
	for _, line := range strings.Split(readDeploy(t, "docker-compose.yml"), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			interpolate(t, line, nil)
		}
	}
	services := mapAt(t, compose, "services")
	gw := mapAt(t, services, "gateway")
	require.Equal(t, []string{"serve"}, stringList(t, gw["command"]), "the gateway runs `chaperone serve`")
	require.Equal(t, "deploy/Dockerfile", mapAt(t, gw, "build")["dockerfile"])

	topSecrets := mapAt(t, compose, "secrets")
	makeSecrets := readDeploy(t, "make-secrets.sh")
	for name, v := range topSecrets {
		file, _ := v.(map[string]any)["file"].(string)
		require.Equal(t, "./secrets/"+name, file, "secret %s", name)
		require.Contains(t, makeSecrets, "make_secret "+name+" ", "make-secrets.sh makes secrets/%s", name)
	}
	for svc, v := range services {
		used, ok := v.(map[string]any)["secrets"]
		if !ok {
			continue
		}
		for _, s := range stringList(t, used) {
			require.Contains(t, topSecrets, s, "service %s uses an undeclared secret", svc)
		}
	}

	for _, vars := range []map[string]string{{}, dotEnv(t, readDeploy(t, "env.example"))} {
		cfg := composeGatewayConfig(t, gw, vars)
		require.Equal(t, "sqlite:/data/chaperone.db", cfg.Database)
		require.Equal(t, "/data/spool", cfg.SpoolDir)
		vols := stringList(t, gw["volumes"])
		require.Contains(t, vols, "gateway-data:/data", "the database and spool are on a volume")
		require.Contains(t, mapAt(t, compose, "volumes"), "gateway-data")
		require.GreaterOrEqual(t, cfg.S3.RetentionDays, 28)

		// S3: versitygw with object lock, on the port the gateway uses, and
		// the bucket made with object lock under the gateway's bucket name.
		s3 := mapAt(t, services, "s3")
		s3cmd := strings.Join(stringList(t, s3["command"]), " ")
		require.Contains(t, s3cmd, "--versioning-dir", "versitygw needs --versioning-dir for object lock")
		_, port, _ := strings.Cut(cfg.S3.Endpoint, ":")
		require.Contains(t, s3cmd, "--port :"+port)
		require.Contains(t, stringList(t, s3["ports"]), "127.0.0.1:"+port+":"+port)
		bucketCmd := strings.Join(stringList(t, mapAt(t, services, "bucket")["command"]), " ")
		require.Contains(t, bucketCmd, "--bucket "+cfg.S3.Bucket+" --object-lock-enabled-for-bucket")
		require.Contains(t, bucketCmd, "get-object-lock-configuration --bucket "+cfg.S3.Bucket)
		require.Equal(t, "service_completed_successfully", mapAt(t, mapAt(t, gw, "depends_on"), "bucket")["condition"])

		// Keycloak: the realm the gateway's issuer names, with the client,
		// redirect URI and groups the gateway's configuration expects.
		kc := mapAt(t, services, "keycloak")
		kcEnv := map[string]string{}
		for k, v := range mapAt(t, kc, "environment") {
			kcEnv[k] = interpolate(t, fmt.Sprint(v), vars)
		}
		kcCmd := strings.Join(stringList(t, kc["command"]), " ")
		// The realm's placeholders that come from secret files: the client
		// secret is the very file the gateway reads.
		for k, secret := range map[string]string{"CLIENT_SECRET": "oidc_client_secret", "DEMO_PASSWORD": "demo_password"} {
			require.Contains(t, kcCmd, k+`="$$(cat /run/secrets/`+secret+`)"`)
			kcEnv[k] = "placeholder-" + secret
		}
		require.Equal(t, "/run/secrets/oidc_client_secret", mapAt(t, gw, "environment")["CHAPERONE_OIDC_CLIENT_SECRET_FILE"])
		require.Equal(t, cfg.PublicURL, kcEnv["GATEWAY_URL"], "Keycloak's redirect URI is built from the gateway's public_url")
		require.Equal(t, kcEnv["KC_HOSTNAME"]+"/realms/school", cfg.OIDCIssuer)
		checkRealm(t, cfg, kcEnv)
	}
}

// composeGatewayConfig parses the compose gateway's configuration: the
// image's ENV defaults, overridden by the service's environment, with compose
// variables from vars and placeholder secrets.
func composeGatewayConfig(t *testing.T, gw map[string]any, vars map[string]string) Config {
	t.Helper()
	env := map[string]string{}
	maps.Copy(env, dockerfileEnv(t))
	for k, v := range mapAt(t, gw, "environment") {
		env[k] = interpolate(t, fmt.Sprint(v), vars)
	}
	gwSecrets := stringList(t, gw["secrets"])
	return parseWithSecretFiles(t, env, nil, func(key, path string) {
		name, ok := strings.CutPrefix(path, "/run/secrets/")
		require.True(t, ok, "%s=%s: compose mounts secrets under /run/secrets", key, path)
		require.Contains(t, gwSecrets, name, "%s names a secret the gateway does not mount", key)
	})
}

// TestDeployComposeS3 runs the compose file's S3 service command (versitygw
// with its flags) and its bucket step (with the AWS CLI when it is on PATH,
// else the same CreateBucket request through minio-go), and checks that the
// gateway's recording storage accepts that bucket: Object Lock is on. A
// bucket made without Object Lock on the same server is refused.
func TestDeployComposeS3(t *testing.T) {
	t.Parallel()
	bin := testkit.VersityGWPath()
	if bin == "" {
		if os.Getenv(testkit.EnvRequireS3) == "1" {
			t.Fatal("versitygw not found and " + testkit.EnvRequireS3 + "=1")
		}
		t.Skip("versitygw not found (make bin/versitygw)")
	}
	services := mapAt(t, yamlDocs(t, filepath.Join(deployDir, "docker-compose.yml"))[0], "services")
	cfg := composeGatewayConfig(t, mapAt(t, services, "gateway"), nil)
	dir := t.TempDir()
	secrets := map[string]string{"s3_access_key": "chaperone", "s3_secret_key": "compose-test-secret-key"}
	for name, v := range secrets {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600))
	}
	// The compose command, for this machine: /data and /run/secrets in the
	// temporary directory, the S3 port a free one, $$ as $.
	port := strconv.Itoa(testkit.FreePort(t))
	local := func(script string) string {
		return strings.NewReplacer("$$", "$", "/run/secrets/", dir+"/", "/data/", dir+"/data/",
			"--port :7070", "--port 127.0.0.1:"+port, "http://s3:7070", "http://127.0.0.1:"+port).Replace(script)
	}
	s3Script := strings.Join(stringList(t, mapAt(t, services, "s3")["command"]), " ")
	require.Contains(t, s3Script, "exec versitygw ")
	s3Script = strings.Replace(local(s3Script), "exec versitygw ", "exec "+bin+" ", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vgw := exec.CommandContext(ctx, "/bin/sh", "-c", s3Script)
	vgwLog, err := os.Create(filepath.Join(dir, "versitygw.log"))
	require.NoError(t, err)
	defer vgwLog.Close()
	vgw.Stdout, vgw.Stderr = vgwLog, vgwLog
	require.NoError(t, vgw.Start())
	t.Cleanup(func() { cancel(); _ = vgw.Wait() })

	endpoint := "127.0.0.1:" + port
	bucketCfg := recording.BucketConfig{Endpoint: endpoint, Bucket: cfg.S3.Bucket, AccessKey: secrets["s3_access_key"],
		SecretKey: secrets["s3_secret_key"], Region: cfg.S3.Region, RetentionDays: cfg.S3.RetentionDays, LockMode: cfg.S3.LockMode}
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(bucketCfg.AccessKey, bucketCfg.SecretKey, ""), Region: "us-east-1"})
	require.NoError(t, err)
	if !assert.Eventually(t, func() bool { _, err := cl.ListBuckets(ctx); return err == nil }, 20*time.Second, 100*time.Millisecond) {
		out, _ := os.ReadFile(vgwLog.Name())
		t.Fatalf("versitygw started with the compose flags does not answer: %s", out)
	}

	bucketScript := local(strings.Join(stringList(t, mapAt(t, services, "bucket")["command"]), " "))
	if _, err := exec.LookPath("aws"); err == nil {
		bucketEnv := append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		for k, v := range mapAt(t, mapAt(t, services, "bucket"), "environment") {
			bucketEnv = append(bucketEnv, k+"="+fmt.Sprint(v))
		}
		// It runs on every `docker compose up`: the second time it finds
		// the bucket and succeeds.
		for range 2 {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", bucketScript)
			cmd.Env = bucketEnv
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "the compose bucket step: %s", out)
			require.Contains(t, string(out), `"ObjectLockEnabled": "Enabled"`)
		}
	} else {
		t.Log("aws CLI not on PATH: making the bucket with the same request through minio-go")
		require.Contains(t, bucketScript, "--object-lock-enabled-for-bucket")
		require.NoError(t, cl.MakeBucket(ctx, cfg.S3.Bucket, minio.MakeBucketOptions{ObjectLocking: true}))
	}
	b, err := recording.OpenBucket(ctx, bucketCfg)
	require.NoError(t, err, "the gateway refuses the bucket the compose file makes")
	require.NoError(t, b.Ping(ctx))

	require.NoError(t, cl.MakeBucket(ctx, "no-object-lock", minio.MakeBucketOptions{}))
	bucketCfg.Bucket = "no-object-lock"
	_, err = recording.OpenBucket(ctx, bucketCfg)
	require.ErrorContains(t, err, "Object Lock")
}

// checkRealm checks deploy/keycloak/realm.json against the gateway's
// configuration, with its ${...} placeholders resolved from kcEnv as
// Keycloak does at import.
func checkRealm(t *testing.T, cfg Config, kcEnv map[string]string) {
	t.Helper()
	raw := readDeploy(t, "keycloak/realm.json")
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(raw, -1) {
		_, ok := kcEnv[m[1]]
		require.True(t, ok, "realm.json uses ${%s}, which the keycloak service does not set", m[1])
		raw = strings.ReplaceAll(raw, m[0], kcEnv[m[1]])
	}
	var realm struct {
		Realm   string
		Groups  []struct{ Name, Path string }
		Clients []struct {
			ClientID        string `json:"clientId"`
			PublicClient    bool
			Secret          string
			RedirectURIs    []string `json:"redirectUris"`
			ProtocolMappers []struct {
				ProtocolMapper string
				Config         map[string]string
			}
		}
		Users []struct {
			Username, FirstName, LastName, Email string
			EmailVerified, Enabled               bool
			Groups                               []string
		}
		Components map[string][]struct {
			Config map[string][]string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &realm), "realm.json")
	require.True(t, strings.HasSuffix(cfg.OIDCIssuer, "/realms/"+realm.Realm))
	groups := map[string]bool{}
	for _, g := range realm.Groups {
		require.Equal(t, "/"+g.Name, g.Path)
		groups[g.Name] = true
	}
	for _, want := range []string{"staff", "head", "slt", "dsl", "pupils", "year-8", "year-9", "it-admins"} {
		require.True(t, groups[want], "realm group %s", want)
	}
	for _, list := range [][]string{cfg.PupilGroups, cfg.StaffGroups, cfg.SLTGroups, cfg.HeadGroups, cfg.DSLGroups, cfg.AdminGroups, cfg.RosterGroups} {
		for _, g := range list {
			require.True(t, groups[g], "the gateway expects group %s, which the realm does not have", g)
		}
	}
	require.Len(t, realm.Clients, 1)
	c := realm.Clients[0]
	require.Equal(t, cfg.OIDCClientID, c.ClientID)
	require.False(t, c.PublicClient, "a confidential client")
	require.Equal(t, kcEnv["CLIENT_SECRET"], c.Secret)
	require.Equal(t, []string{cfg.PublicURL + "/auth/callback"}, c.RedirectURIs)
	var mapper bool
	for _, m := range c.ProtocolMappers {
		if m.ProtocolMapper == "oidc-group-membership-mapper" {
			mapper = m.Config["claim.name"] == "groups" && m.Config["full.path"] == "false" && m.Config["id.token.claim"] == "true"
		}
	}
	require.True(t, mapper, "a groups mapper into the ID token, full path off")
	domain := cfg.AllowedDomains[0]
	leads := map[string]bool{}
	for _, e := range cfg.YearLeads {
		leads[e] = true
	}
	emails := map[string]bool{}
	for _, u := range realm.Users {
		require.True(t, u.Enabled && u.EmailVerified, u.Username)
		require.True(t, strings.HasSuffix(u.Email, "@"+domain), "%s: %s is not in allowed_domains", u.Username, u.Email)
		require.NotEmpty(t, u.FirstName, u.Username)
		require.NotEmpty(t, u.LastName, u.Username)
		emails[u.Email] = true
		for _, g := range u.Groups {
			require.True(t, groups[strings.TrimPrefix(g, "/")], "%s is in unknown group %s", u.Username, g)
		}
	}
	for e := range leads {
		require.True(t, emails[e], "year lead %s is not a user of the realm", e)
	}
	require.GreaterOrEqual(t, len(realm.Users), 6)
	// People must not rename themselves (R2): names and e-mail are admin-only.
	up := realm.Components["org.keycloak.userprofile.UserProfileProvider"]
	require.Len(t, up, 1)
	var profile struct {
		Attributes []struct {
			Name        string
			Permissions struct{ Edit []string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(up[0].Config["kc.user.profile.config"][0]), &profile))
	checked := 0
	for _, a := range profile.Attributes {
		if a.Name == "firstName" || a.Name == "lastName" || a.Name == "email" {
			require.Equal(t, []string{"admin"}, a.Permissions.Edit, a.Name)
			checked++
		}
	}
	require.Equal(t, 3, checked)
}

func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(deployDir, "kubernetes")
	kust := yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))[0]
	resources := stringList(t, kust["resources"])
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		if e.Name() != "kustomization.yaml" && strings.HasSuffix(e.Name(), ".yaml") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	sorted := slices.Clone(resources)
	sort.Strings(sorted)
	require.Equal(t, files, sorted, "kustomization.yaml lists every manifest")

	byKind := map[string]map[string]map[string]any{}
	for _, f := range files {
		for _, d := range yamlDocs(t, filepath.Join(dir, f)) {
			kind := d["kind"].(string)
			if byKind[kind] == nil {
				byKind[kind] = map[string]map[string]any{}
			}
			byKind[kind][mapAt(t, d, "metadata")["name"].(string)] = d
		}
	}
	sts := byKind["StatefulSet"]["chaperone"]
	require.NotNil(t, sts)
	spec := mapAt(t, sts, "spec")
	require.Equal(t, 1, spec["replicas"], "SQLite: exactly one gateway")
	pod := mapAt(t, mapAt(t, spec, "template"), "spec")
	ann := mapAt(t, mapAt(t, mapAt(t, spec, "template"), "metadata"), "annotations")
	require.Equal(t, "true", ann["prometheus.io/scrape"])
	require.Equal(t, "/metrics", ann["prometheus.io/path"])
	podSec := mapAt(t, pod, "securityContext")
	require.Equal(t, true, podSec["runAsNonRoot"])
	require.Equal(t, 65532, podSec["fsGroup"], "the volume is writable by the image's nonroot user")
	containers := pod["containers"].([]any)
	require.Len(t, containers, 1)
	ctr := containers[0].(map[string]any)
	require.Equal(t, []string{"serve"}, stringList(t, ctr["args"]))
	sec := mapAt(t, ctr, "securityContext")
	require.Equal(t, true, sec["readOnlyRootFilesystem"])
	require.Equal(t, false, sec["allowPrivilegeEscalation"])
	require.Equal(t, []string{"ALL"}, stringList(t, mapAt(t, sec, "capabilities")["drop"]))
	requests := mapAt(t, mapAt(t, ctr, "resources"), "requests")
	require.NotEmpty(t, requests["cpu"])
	require.NotEmpty(t, requests["memory"])

	// The environment: the ConfigMap, then the container's own variables.
	env := map[string]string{}
	for _, from := range ctr["envFrom"].([]any) {
		name := mapAt(t, from.(map[string]any), "configMapRef")["name"].(string)
		cm := byKind["ConfigMap"][name]
		require.NotNil(t, cm, "ConfigMap %s", name)
		for k, v := range mapAt(t, cm, "data") {
			env[k] = v.(string)
		}
	}
	for _, e := range ctr["env"].([]any) {
		m := e.(map[string]any)
		if v, ok := m["value"]; ok {
			env[m["name"].(string)] = v.(string)
		}
	}
	mounts := map[string]string{} // mount path → volume
	for _, m := range ctr["volumeMounts"].([]any) {
		mm := m.(map[string]any)
		mounts[mm["mountPath"].(string)] = mm["name"].(string)
	}
	volumes := map[string]map[string]any{}
	for _, v := range pod["volumes"].([]any) {
		vm := v.(map[string]any)
		volumes[vm["name"].(string)] = vm
	}
	cfg := parseWithSecretFiles(t, env, stringList(t, ctr["args"])[1:], func(key, path string) {
		dirPath, file := filepath.Split(path)
		vol := volumes[mounts[strings.TrimSuffix(dirPath, "/")]]
		require.NotNil(t, vol, "%s=%s is not under a mounted volume", key, path)
		secretName := mapAt(t, vol, "secret")["secretName"].(string)
		secret := byKind["Secret"][secretName]
		require.NotNil(t, secret, "Secret %s", secretName)
		require.Contains(t, mapAt(t, secret, "stringData"), file, "%s: Secret %s has no key %s", key, secretName, file)
	})

	// Database and spool on the claimed volume.
	claims := spec["volumeClaimTemplates"].([]any)
	require.Len(t, claims, 1)
	claim := mapAt(t, claims[0].(map[string]any), "metadata")["name"]
	require.Equal(t, claim, mounts["/data"])
	require.True(t, strings.HasPrefix(cfg.Database, "sqlite:/data/"), cfg.Database)
	require.True(t, strings.HasPrefix(cfg.SpoolDir, "/data/"), cfg.SpoolDir)

	// Ports: HTTP for the probes and the Service; the UDP media port on the
	// node at the same number, advertised at ice_public_ip.
	ports := map[string]map[string]any{}
	for _, p := range ctr["ports"].([]any) {
		pm := p.(map[string]any)
		ports[pm["name"].(string)] = pm
	}
	_, listenPort, _ := strings.Cut(cfg.Listen, ":")
	require.Equal(t, listenPort, fmt.Sprint(ports["http"]["containerPort"]))
	_, metricsPort, _ := strings.Cut(cfg.MetricsListen, ":")
	require.NotEqual(t, listenPort, metricsPort, "/metrics is not on the port the Service and ingress expose")
	require.Equal(t, metricsPort, ann["prometheus.io/port"])
	require.Equal(t, metricsPort, fmt.Sprint(ports["metrics"]["containerPort"]))
	for _, p := range mapAt(t, byKind["Service"]["chaperone"], "spec")["ports"].([]any) {
		require.NotEqual(t, "metrics", p.(map[string]any)["targetPort"], "the Service does not expose /metrics")
	}
	media := ports["media"]
	require.Equal(t, "UDP", media["protocol"])
	require.Equal(t, cfg.UDPPort, media["containerPort"])
	require.Equal(t, cfg.UDPPort, media["hostPort"], "the same port number on the node, so ICE candidates stay right")
	require.NotEmpty(t, cfg.ICEPublicIPs, "browsers need the node's public address")
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		get := mapAt(t, mapAt(t, ctr, probe), "httpGet")
		require.Equal(t, path, get["path"], probe)
		require.Equal(t, "http", get["port"], probe)
	}
	svc := byKind["Service"]["chaperone"]
	require.NotNil(t, svc)
	require.Equal(t, "http", mapAt(t, svc, "spec")["ports"].([]any)[0].(map[string]any)["targetPort"])
	require.NotNil(t, byKind["Service"][spec["serviceName"].(string)], "the StatefulSet's serviceName")
	require.NotEmpty(t, cfg.TrustedProxies, "behind an ingress the client address comes from X-Forwarded-For")
}

func TestDeploySystemd(t *testing.T) {
	t.Parallel()
	unit := readDeploy(t, "systemd/chaperone.service")
	directives := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			directives[k] = append(directives[k], v)
		}
	}
	require.Equal(t, []string{"/etc/chaperone/chaperone.env"}, directives["EnvironmentFile"])
	exec := strings.Fields(directives["ExecStart"][0])
	require.Equal(t, []string{"/usr/local/bin/chaperone", "serve"}, exec[:2])
	for _, k := range []string{"NoNewPrivileges", "ProtectSystem", "PrivateTmp", "DynamicUser", "StateDirectory"} {
		require.NotEmpty(t, directives[k], k)
	}
	credentials := map[string]bool{}
	for _, c := range directives["LoadCredential"] {
		id, _, _ := strings.Cut(c, ":")
		credentials[id] = true
	}
	env := dotEnv(t, readDeploy(t, "systemd/chaperone.env"))
	cfg := parseWithSecretFiles(t, env, exec[2:], func(key, path string) {
		id, ok := strings.CutPrefix(path, "/run/credentials/chaperone.service/")
		require.True(t, ok, "%s=%s: secrets come through LoadCredential", key, path)
		require.True(t, credentials[id], "%s: no LoadCredential=%s: in chaperone.service", key, id)
	})
	state := "/var/lib/" + directives["StateDirectory"][0]
	require.True(t, strings.HasPrefix(cfg.Database, "sqlite:"+state+"/"), "the database is in the state directory")
	require.True(t, strings.HasPrefix(cfg.SpoolDir, state+"/"), "the spool is in the state directory")
}

func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	df := readDeploy(t, "Dockerfile")
	require.Contains(t, df, "CGO_ENABLED=0 go build")
	require.Contains(t, df, "./cmd/chaperone")
	require.Regexp(t, `(?m)^EXPOSE .*\b8080/tcp\b`, df)
	require.Regexp(t, `(?m)^EXPOSE .*\b50000/udp\b`, df)
	require.Regexp(t, `(?m)^VOLUME \["/data"\]`, df)
	require.Regexp(t, `(?m)^CMD \["serve"\]`, df)
	require.Regexp(t, `(?m)^USER 65532`, df)
	env := dockerfileEnv(t)
	require.Equal(t, "sqlite:/data/chaperone.db", env["CHAPERONE_DATABASE"])
	require.Equal(t, "/data/spool", env["CHAPERONE_SPOOL_DIR"])
	require.Equal(t, "50000", env["CHAPERONE_UDP_PORT"])
	ignore, err := os.ReadFile("../../.dockerignore")
	require.NoError(t, err)
	for _, p := range []string{".git", "bin", "data"} {
		require.Contains(t, strings.Fields(string(ignore)), p, ".dockerignore leaves out %s", p)
	}
}

// parseWithSecretFiles parses env (and flags args) as the gateway would,
// after writing a placeholder secret for each *_FILE key to a temporary file;
// checkFile is told each key and the path the example gives for it.
func parseWithSecretFiles(t *testing.T, env map[string]string, args []string, checkFile func(key, path string)) Config {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{}
	files := 0
	for k, v := range env {
		if strings.HasSuffix(k, "_FILE") && v != "" {
			checkFile(strings.ToLower(strings.TrimPrefix(k, "CHAPERONE_")), v)
			p := filepath.Join(dir, strings.ToLower(k))
			require.NoError(t, os.WriteFile(p, []byte("placeholder-"+strings.ToLower(k)+"\n"), 0o600))
			v = p
			files++
		}
		vars[k] = v
	}
	require.GreaterOrEqual(t, files, 3, "the client secret and S3 keys come from files")
	cfg, err := parseConfig("serve", args, func(k string) string { return vars[k] }, nil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(cfg.OIDCClientSecret, "placeholder-"), "the client secret is read from its file")
	require.True(t, strings.HasPrefix(cfg.S3.SecretKey, "placeholder-"), "the S3 secret key is read from its file")
	return cfg
}

// interpolate expands compose's ${NAME}, ${NAME:-default}, ${NAME-default}
// and $$ from vars.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			out.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		require.True(t, i+1 < len(s) && s[i+1] == '{', "%q: write ${NAME}", s)
		end := strings.IndexByte(s[i:], '}')
		require.Positive(t, end, "%q: unclosed ${", s)
		expr := s[i+2 : i+end]
		name, def, hasDef := expr, "", false
		if j := strings.Index(expr, ":-"); j >= 0 {
			name, def, hasDef = expr[:j], expr[j+2:], true
		} else if j := strings.IndexByte(expr, '-'); j >= 0 {
			name, def, hasDef = expr[:j], expr[j+1:], true
		}
		v, ok := vars[name]
		if !ok || (v == "" && strings.Contains(expr, ":-")) {
			require.True(t, hasDef, "%q: ${%s} has no default, so the file does not work without .env", s, name)
			v = def
		}
		out.WriteString(v)
		i += end
	}
	return out.String()
}

// dotEnv reads KEY=value lines (systemd EnvironmentFile, compose .env).
func dotEnv(t *testing.T, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%q is not KEY=value", line)
		m[k] = strings.Trim(v, `"`)
	}
	require.NotEmpty(t, m)
	return m
}

// dockerfileEnv returns the CHAPERONE_* defaults the image sets with ENV.
func dockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	df := strings.ReplaceAll(readDeploy(t, "Dockerfile"), "\\\n", " ")
	env := map[string]string{}
	for _, line := range strings.Split(df, "\n") {
		rest, ok := strings.CutPrefix(line, "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, "ENV %s: use KEY=value", kv)
			env[k] = v
		}
	}
	require.NotEmpty(t, env)
	return env
}

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	docs, err := decodeYAML(f)
	require.NoError(t, err, path)
	return docs
}

func decodeYAML(r io.Reader) ([]map[string]any, error) {
	dec := yaml.NewDecoder(r)
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func mapAt(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	require.True(t, ok, "%s is not a mapping (got %T)", key, m[key])
	return v
}

func stringList(t *testing.T, v any) []string {
	t.Helper()
	l, ok := v.([]any)
	require.True(t, ok, "not a list: %v", v)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], ok = x.(string)
		require.True(t, ok, "not a string: %v", x)
	}
	return out
}

// TestREADMEConfigTable: every configuration key is in the README's
// configuration table, and the table names no key chaperone does not have.
func TestREADMEConfigTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(b), "\n## Configuration\n")
	require.True(t, ok, "README has a Configuration section")
	table, _, _ = strings.Cut(table, "\n## ")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		for _, m := range regexp.MustCompile("`([a-z0-9_*]+)`").FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
		}
	}
	keys := configKeys(t)
	var missing, unknown []string
	for k := range keys {
		// A secret's *_file twin goes with it ("`s3_secret_key` (or `*_file`)").
		if base, isFile := strings.CutSuffix(k, "_file"); !documented[k] && !(isFile && documented[base]) {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !keys[k] && !strings.Contains(k, "*") {
			unknown = append(unknown, k)
		}
	}
	require.Empty(t, missing, "keys missing from the README's configuration table")
	require.Empty(t, unknown, "the README's configuration table names keys chaperone does not have")
}
