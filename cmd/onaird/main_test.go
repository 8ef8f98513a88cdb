package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/internal/testutil"
)

// secret is a passphrase no output of onaird may ever contain.
const secret = "Sup3rSecretPassphrase"

const cfgHead = `video:
  source: "lavfi:testsrc2"
api:
  socket: ""
runtime_dir: %RUN%
`

// Found in review: net/url's parse errors quote the whole URL, so a typo in
// output.url printed the passphrase on the console and into the journal
// (onaird -check, and start-up). Every output of a bad-URL config is
// grepped for it.
func TestPassphraseNeverAppearsInAnyOutputOfABadURL(t *testing.T) {
	testutil.Need(t, "go")
	bin := filepath.Join(t.TempDir(), "onaird")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	p := "passphrase=" + secret
	for _, tc := range []struct{ name, url string }{
		{"bad scheme", "udp://127.0.0.1:9000?" + p},
		{"bad port", "srt://127.0.0.1:99999?" + p},
		{"port not a number", "srt://127.0.0.1:x9?" + p},
		{"unknown query key", "srt://127.0.0.1:9000?" + p + "&bogus=1"},
		{"bad escape", "srt://127.0.0.1:9000?" + p + "%zz"},
		{"bad escape in host", "srt://127.0.%zz0.1:9000?" + p},
		{"control character", "srt://127.0.0.1:9000?\x7f" + p},
		{"key given twice", "srt://127.0.0.1:9000?" + p + "&" + p},
		{"passphrase too long", "srt://127.0.0.1:9000?passphrase=" + strings.Repeat(secret, 4)},
		{"pbkeylen bad", "srt://127.0.0.1:9000?" + p + "&pbkeylen=20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []struct {
				yaml  string
				named bool // the error can name the key (not for a document YAML cannot parse)
			}{
				{"output:\n  url: \"" + strings.ReplaceAll(tc.url, "\x7f", `\x7f`) + "\"\n", true},
				{"output:\n  url: [\"" + tc.url + "\"]\n", tc.name != "control character"}, // wrong YAML type
				{"output:\n  url: \"" + tc.url + "\n  bogus: : :\n", false},                // YAML syntax error on the url line
				{"output:\n  url: " + tc.url + "\n", tc.name != "control character"},       // unquoted
			} {
				yaml := v.yaml
				for _, args := range [][]string{{"-check"}, nil} {
					out, code := runOnaird(t, bin, yaml, args...)
					if strings.Contains(out, secret) {
						t.Fatalf("onaird %v printed the passphrase:\n%s", args, out)
					}
					if code != 2 || (v.named && !strings.Contains(out, "output.url")) {
						t.Errorf("onaird %v: exit %d, output %q: want 2, naming output.url", args, code, out)
					}
				}
			}
		})
	}
	// A good config with a passphrase: -check passes and prints nothing secret.
	out, code := runOnaird(t, bin, "output:\n  url: \"srt://127.0.0.1:9000?"+p+"\"\n", "-check")
	if code != 0 || strings.Contains(out, secret) {
		t.Fatalf("good config: exit %d, output %q", code, out)
	}
}

func runOnaird(t *testing.T, bin, output string, args ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	cfg := strings.ReplaceAll(cfgHead, "%RUN%", filepath.Join(dir, "run")) + output
	path := filepath.Join(dir, "onair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-config", path}, args...)...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	code := 0
	ee := &exec.ExitError{}
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return b.String(), code
}
