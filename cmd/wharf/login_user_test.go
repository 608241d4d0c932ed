package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/testclock"
)

const danaPassword = "a long passphrase for dana"

var formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// webSignIn signs in through the sign-in page with a cookie jar, as a
// browser does, and returns the client holding the session cookie. With
// newPassword, it also answers the forced password change.
func webSignIn(t *testing.T, base, upn, password, newPassword string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := getPage(t, c, base+"/signin")
	form := url.Values{"csrf_token": {formToken(t, page)}, "username": {upn}, "password": {password}}
	resp, err := c.PostForm(base+"/signin", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if newPassword != "" {
		if !strings.Contains(string(body), `name="new_password"`) {
			t.Fatalf("sign-in with a password to change did not ask for a new one: %d\n%s", resp.StatusCode, body)
		}
		form.Set("csrf_token", formToken(t, string(body)))
		form.Set("new_password", newPassword)
		if resp, err = c.PostForm(base+"/signin", form); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Signed in as") {
		t.Fatalf("sign-in as %s: %d\n%s", upn, resp.StatusCode, body)
	}
	return c
}

func getPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, b)
	}
	return string(b)
}

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := formTokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", page)
	}
	return m[1]
}

// usersEnv is a server with workspace ws-a and user dana@team, a Data
// Scientist there, made through the CLI as the Owner principal; the CLI
// then runs with no principal credentials.
func usersEnv(t *testing.T) *cliEnv {
	t.Helper()
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws-a")
	out := e.ok("ad", "user", "create", "--display-name", "Dana", "--user-principal-name", "dana@team", "--password", danaPassword)
	if !strings.Contains(out, `"userPrincipalName": "dana@team"`) || strings.Contains(out, danaPassword) {
		t.Fatalf("ad user create printed:\n%s", out)
	}
	if _, errs, code := e.wharf("ad", "user", "create", "--display-name", "X", "--user-principal-name", "x@team", "--password", "x@team"); code == 0 || !strings.Contains(errs, "at least 12 characters") {
		t.Fatalf("weak password accepted: %d %s", code, errs)
	}
	e.ok("role", "assignment", "create", "--assignee", "dana@team", "--role", "Data Scientist", "--scope", "/workspaces/ws-a")
	if list := e.ok("ad", "user", "list", "--query", "[].userPrincipalName", "-o", "tsv"); !strings.Contains(list, "dana@team") || !strings.Contains(list, wharfhttp.OwnerUserName) {
		t.Fatalf("ad user list: %s", list)
	}
	t.Setenv("WHARF_CREDENTIALS", "")
	return e
}

// actsAsDana checks the CLI acts as dana with a Data Scientist's rights.
func actsAsDana(t *testing.T, e *cliEnv) {
	t.Helper()
	if who := e.ok("account", "show", "--query", "user.name", "-o", "tsv"); strings.TrimSpace(who) != "dana@team" {
		t.Fatalf("account show: %q", who)
	}
	e.ok("ml", "workspace", "show", "-n", "ws-a")
	if _, errs, code := e.wharf("ml", "workspace", "delete", "-n", "ws-a", "-y"); code == 0 || !strings.Contains(errs, "authorization") {
		t.Fatalf("a Data Scientist deleted the workspace: %d %s", code, errs)
	}
}

func TestLoginWithPasswordThroughCLI(t *testing.T) {
	e := usersEnv(t)
	if _, errs, code := e.wharf("login", "--username", "dana@team", "--password", "not dana's password"); code == 0 || !strings.Contains(errs, "incorrect user name or password") {
		t.Fatalf("wrong password: %d %s", code, errs)
	}
	// The password from a pipe, as a prompt would read it.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"login", "--username", "Dana@Team"}, strings.NewReader(danaPassword+"\n"), &out, &errb); code != 0 {
		t.Fatalf("login with the password on stdin: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"type": "user"`) || strings.Contains(out.String()+errb.String(), danaPassword) {
		t.Fatalf("login printed:\n%s%s", out.String(), errb.String())
	}
	actsAsDana(t, e)

	// With the cached access token gone, the refresh token gets the next
	// one, and is replaced by the one that comes with it.
	dir := os.Getenv("WHARF_CONFIG_DIR")
	before, _ := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err := os.Remove(filepath.Join(dir, "token.json")); err != nil {
		t.Fatal(err)
	}
	actsAsDana(t, e)
	after, _ := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if bytes.Equal(before, after) || !strings.Contains(string(after), `"refreshToken"`) {
		t.Errorf("refresh token not rotated:\n%s", after)
	}
	if st, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v %v", st, err)
	}
}

func TestLoginWithDeviceCodeThroughCLI(t *testing.T) {
	e := usersEnv(t)
	clk := testclock.New(time.Now())
	e.srv.HTTP.Now = clk.Now
	base := e.srv.HTTP.URL

	var out, errb bytes.Buffer
	polls := 0
	old := deviceWait
	t.Cleanup(func() { deviceWait = old })
	deviceWait = func(ctx context.Context, d time.Duration) error {
		polls++
		if polls == 2 {
			// The person opens /device, signed in, and approves the
			// code the CLI printed.
			m := regexp.MustCompile(`open the page (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})`).FindStringSubmatch(errb.String())
			if m == nil || m[1] != base+"/device" {
				t.Errorf("the CLI printed no code to enter at %s/device:\n%s", base, errb.String())
				return context.Canceled
			}
			browser := webSignIn(t, base, "dana@team", danaPassword, "")
			page := getPage(t, browser, base+"/device")
			resp, err := browser.PostForm(base+"/device", url.Values{"csrf_token": {formToken(t, page)}, "user_code": {m[2]}, "decision": {"approve"}})
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("approval: %d", resp.StatusCode)
			}
		}
		clk.Advance(d)
		return nil
	}
	if code := run(context.Background(), []string{"login"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("wharf login (device code): %d\n%s", code, errb.String())
	}
	if polls < 2 || !strings.Contains(out.String(), `"name": "dana@team"`) {
		t.Fatalf("after %d polls, login printed:\n%s", polls, out.String())
	}
	actsAsDana(t, e)

	// Codes expire: nobody approves this one within 15 minutes.
	deviceWait = func(ctx context.Context, d time.Duration) error {
		clk.Advance(wharfhttp.DeviceCodeLifetime)
		return nil
	}
	if _, errs, code := e.wharf("login"); code == 0 || !strings.Contains(errs, "expired") {
		t.Fatalf("login with an expired code: %d %s", code, errs)
	}
}

func TestFirstOwnerUserSignsIn(t *testing.T) {
	e := newCLIEnv(t)
	var f wharfhttp.OwnerUserFile
	b, err := os.ReadFile(e.srv.OwnerUserFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(e.srv.OwnerUserFile); st.Mode().Perm() != 0o600 {
		t.Errorf("owner user file mode %v", st.Mode().Perm())
	}
	if err := json.Unmarshal(b, &f); err != nil || f.UserPrincipalName != wharfhttp.OwnerUserName || f.SignInURL != e.srv.HTTP.URL+"/signin" {
		t.Fatalf("owner user file: %s", b)
	}
	// Tokens wait until the first password is changed.
	t.Setenv("WHARF_CREDENTIALS", "")
	if _, errs, code := e.wharf("login", "-u", f.UserPrincipalName, "-p", f.Password); code == 0 || !strings.Contains(errs, "/signin") {
		t.Fatalf("token before the first password change: %d %s", code, errs)
	}
	webSignIn(t, e.srv.HTTP.URL, f.UserPrincipalName, f.Password, "the owner's own passphrase")
	e.ok("login", "-u", f.UserPrincipalName, "-p", "the owner's own passphrase")
	// An Owner: may manage users.
	e.ok("ad", "user", "create", "--display-name", "Eve", "--user-principal-name", "eve@team", "--password", "eve's long passphrase", "--force-change-password-next-sign-in")
	e.ok("ad", "user", "update", "--id", "eve@team", "--password", "eve's other passphrase")
	e.ok("ad", "user", "show", "--id", "eve@team")
	e.ok("ad", "user", "delete", "--id", "eve@team")
	if _, _, code := e.wharf("ad", "user", "show", "--id", "eve@team"); code != exitNotFound {
		t.Errorf("deleted user still shown (exit %d)", code)
	}
}

// TestAMLTokenOfAUser checks an endpoint token fetched by a signed-in user
// scores while the user holds the role, and stops when the user is deleted.
func TestAMLTokenOfAUser(t *testing.T) {
	f := newEndpointFixture(t, "aml_token")
	body := `{"input_data": [[1, 1]]}`
	f.e.ok("ad", "user", "create", "--display-name", "Dana", "--user-principal-name", "dana@team", "--password", danaPassword)
	f.e.ok("role", "assignment", "create", "--assignee", "dana@team", "--role", "Data Scientist", "--scope", "/workspaces/mlw")
	t.Setenv("WHARF_CREDENTIALS", "")
	f.e.ok("login", "-u", "dana@team", "-p", danaPassword)
	tok := strings.TrimSpace(f.e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "accessToken", "-o", "tsv"))
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 200 {
		t.Fatalf("a Data Scientist user's endpoint token: %d %s", status, resp)
	}
	t.Setenv("WHARF_CREDENTIALS", f.e.owner)
	f.e.ok("ad", "user", "delete", "--id", "dana@team")
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 401 {
		t.Errorf("token of a deleted user: %d %s, want 401", status, resp)
	}
}

// TestQuickstartPrintsHowToSignIn runs the quickstart with a server of its
// own, as scripts/run does, and signs in the way its output says.
func TestQuickstartPrintsHowToSignIn(t *testing.T) {
	root := t.TempDir()
	example := filepath.Join(root, "taxi")
	copyTree(t, filepath.Join(repoRoot(t), "examples", "taxi"), example)
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(root, "cli"))
	t.Setenv("WHARF_CREDENTIALS", "")
	t.Setenv("WHARF_URL", "")
	dataDir := filepath.Join(root, "data")
	args := []string{"quickstart", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--example", example, "--rows", "2000", "--exit"}
	// A process of the built binary, which the pipeline's steps run as
	// "$WHARF".
	cmd := exec.Command(wharfBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstart: %v\n%s\n%s", err, out.String(), errb.String())
	}
	m := regexp.MustCompile(`Web sign-in: +(http://\S+)/signin as owner@wharf; the first password is in (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the quickstart does not say how to sign in:\n%s", out.String())
	}
	if m[2] != filepath.Join(dataDir, "owner-user.json") {
		t.Errorf("password file %s, want %s", m[2], filepath.Join(dataDir, "owner-user.json"))
	}
	var f wharfhttp.OwnerUserFile
	b, err := os.ReadFile(m[2])
	if err != nil || json.Unmarshal(b, &f) != nil || f.Password == "" {
		t.Fatalf("owner user file: %v %s", err, b)
	}
}
