package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// TestRosterImportCommand: chaperone roster import FILE imports a
// OneRoster zip, says so, changes nothing for the same file again, shows a
// dry run's diff without applying it, and refuses a malformed file.
func TestRosterImportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "c.db")
	cl := testkit.NewClassList(300, 20, "oakfield.example")
	zipPath := filepath.Join(dir, "export.zip")
	require.NoError(t, os.WriteFile(zipPath, testkit.Zip(t, cl.OneRoster()), 0o600))
	env := map[string]string{"CHAPERONE_DATABASE": db, "CHAPERONE_ALLOWED_DOMAINS": "oakfield.example"}
	runCmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"roster", "import"}, args...), func(k string) string { return env[k] }, &out, &errb)
		return out.String() + errb.String(), err
	}
	out, err := runCmd(zipPath)
	require.NoError(t, err, out)
	require.Contains(t, out, "Classes: 20 (were 0); pupils: 300 (were 0)")
	require.Contains(t, out, "Imported.")
	out, err = runCmd(zipPath)
	require.NoError(t, err, out)
	require.Contains(t, out, "nothing to change")

	cl.Members, cl.Classes = cl.Members[:19], cl.Classes[:19]
	csvDir := filepath.Join(dir, "csv")
	require.NoError(t, os.Mkdir(csvDir, 0o700))
	for n, b := range cl.OneRoster() {
		require.NoError(t, os.WriteFile(filepath.Join(csvDir, n), b, 0o600))
	}
	out, err = runCmd("-dry-run", csvDir)
	require.NoError(t, err, out)
	require.Contains(t, out, "- 11D Maths (cls-20)")
	require.Contains(t, out, "Dry run: nothing was changed.")

	require.NoError(t, os.WriteFile(filepath.Join(csvDir, "enrollments.csv"), []byte("classSourcedId,userSourcedId\n"), 0o600))
	_, err = runCmd(csvDir)
	require.ErrorContains(t, err, "enrollments.csv has no column role")

	st, err := store.Open(context.Background(), db)
	require.NoError(t, err)
	defer st.Close()
	cs, err := st.ListRosterClasses(context.Background())
	require.NoError(t, err)
	require.Len(t, cs, 20, "neither the dry run nor the bad file changed the list")

	_, err = runCmd()
	require.ErrorIs(t, err, errUsage)
}
