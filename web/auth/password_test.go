package auth

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, pw string
		want     error
	}{
		{"empty", "", ErrPasswordTooShort},
		{"9 characters", "123456789", ErrPasswordTooShort},
		{"10 characters", "1234567890", nil},
		{"10 two-byte characters", strings.Repeat("é", 10), nil},
		{"9 two-byte characters (18 bytes)", strings.Repeat("é", 9), ErrPasswordTooShort},
		{"at the limit", strings.Repeat("x", MaxPasswordLen), nil},
		{"over the limit", strings.Repeat("x", MaxPasswordLen+1), ErrPasswordTooLong},
		{"invalid UTF-8", "1234567890\xff", ErrPasswordInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkPassword(tc.pw); !errors.Is(err, tc.want) {
				t.Fatalf("checkPassword: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHashIsPHCAndRoundTrips(t *testing.T) {
	h, err := newHash(testPassword, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	s := h.String()
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(s) {
		t.Fatalf("not PHC: %s", s)
	}
	back, err := parseHash(s)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	if !back.verify(testPassword) || back.verify(testPassword+"x") || back.verify("") {
		t.Fatal("verify after round trip")
	}
	if back.String() != s {
		t.Fatalf("round trip: %s != %s", back.String(), s)
	}
	other, _ := newHash(testPassword, fastParams)
	if other.String() == s {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	d := &hash{p: DefaultParams, salt: h.salt, key: h.key}
	if !strings.HasPrefix(d.String(), "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Errorf("default parameters: %s", d.String())
	}
	if err := validParams(DefaultParams); err != nil {
		t.Error(err)
	}
}

// A password file decides how much memory and time a login costs: a
// corrupt or planted one must not take the box down, or parse loosely.
func TestParseHashRefusesWhatItDidNotWrite(t *testing.T) {
	good, _ := newHash(testPassword, fastParams)
	parts := strings.Split(good.String(), "$")
	salt, key := parts[4], parts[5]
	for _, tc := range []struct{ name, s string }{
		{"empty", ""},
		{"bcrypt", "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"parameters reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"parameter missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"parameter extra", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key},
		{"4 TiB of memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"t=0", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"p=0", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"too little memory for p", "$argon2id$v=19$m=8,t=1,p=4$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"no key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"truncated", good.String()[:40]},
		{"trailing field", good.String() + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := parseHash(tc.s); !errors.Is(err, errBadHash) {
				t.Fatalf("parseHash(%q) = %v, %v; want errBadHash", tc.s, h, err)
			}
		})
	}
}

func TestPasswordFileIs0600AndSurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.a.SetupToken()
	if err := h.a.Setup(context.Background(), tok, testPassword); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(h.dir, PasswordFile)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(h.dir); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(string(b), testPassword) {
		t.Errorf("file holds %q", b)
	}
	entries, _ := os.ReadDir(h.dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files (a temporary file left?)", len(entries))
	}
	h.restart()
	if st, err := h.a.State(); st != StateReady || err != nil {
		t.Fatalf("after restart: %v %v", st, err)
	}
	if w := h.browser(remoteA).login(testPassword); w.Code != http.StatusOK {
		t.Fatalf("login after restart: %d %s", w.Code, w.Body)
	}
}

func TestPasswordFileReadableByOthersIsTightened(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	file := filepath.Join(h.dir, PasswordFile)
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	h.restart()
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if h.logs.FilterMessageSnippet("readable by others").Len() != 1 {
		t.Error("not logged")
	}
}

// Read as "no password", a corrupt file would open setup, and the box, to
// whoever reaches the page first.
func TestCorruptPasswordFileDoesNotReopenSetup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string // "" with dir: the path is a directory (unreadable)
		dir     bool
		corrupt bool
	}{
		{"empty (power cut before the data)", "", false, true},
		{"blank", "\n\n", false, true},
		{"garbage", "hunter2\n", false, true},
		{"absurd memory", "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", false, true},
		{"unreadable", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			file := filepath.Join(h.dir, PasswordFile)
			if tc.dir {
				if err := os.Mkdir(file, 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, file, tc.content)
			}
			h.restart()
			st, err := h.a.State()
			if st != StateLocked || err == nil {
				t.Fatalf("state %v, %v; want locked", st, err)
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error does not name the file: %v", err)
			}
			if errors.Is(err, ErrCorruptPasswordFile) != tc.corrupt || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v: corrupt %v", err, errors.Is(err, ErrCorruptPasswordFile))
			}
			if _, ok := h.a.SetupToken(); ok {
				t.Fatal("a setup token for a corrupt file")
			}
			if err := h.a.Setup(context.Background(), "", testPassword); !errors.Is(err, ErrLocked) {
				t.Errorf("Setup: %v, want ErrLocked", err)
			}
			if h.logs.FilterMessageSnippet("web page locked").Len() != 1 {
				t.Error("the lock is not logged")
			}
			if !tc.dir {
				if err := h.a.SetPassword(context.Background(), testPassword); err != nil {
					t.Fatalf("SetPassword: %v", err)
				}
				if st, _ := h.a.State(); st != StateReady {
					t.Fatalf("after SetPassword: %v", st)
				}
			}
		})
	}
}

// DefaultParams must be able to change: a hash with the old ones still
// logs in, and is replaced by one with the new ones.
func TestHashWithOldParametersIsReplacedAtLogin(t *testing.T) {
	old := Params{Time: 1, MemoryKiB: 32, Threads: 1}
	h := newHarness(t, func(c *Config) { c.Params = old })
	h.setPassword()
	h.cfg.Params = fastParams
	h.restart()
	if w := h.browser(remoteA).login(testPassword); w.Code != 200 {
		t.Fatalf("login with the old hash: %d %s", w.Code, w.Body)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, PasswordFile))
	if !strings.HasPrefix(string(b), "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("not rehashed: %s", b)
	}
	h.restart()
	if w := h.browser(remoteA).login(testPassword); w.Code != 200 {
		t.Fatalf("login with the new hash: %d %s", w.Code, w.Body)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no dir", Config{}},
		{"t=0", Config{Dir: t.TempDir(), Params: Params{Time: 0, MemoryKiB: 64, Threads: 1}}},
		{"memory under 8*p", Config{Dir: t.TempDir(), Params: Params{Time: 1, MemoryKiB: 8, Threads: 2}}},
		{"everything public", Config{Dir: t.TempDir(), Public: []string{"/"}}},
		{"unclean public path", Config{Dir: t.TempDir(), Public: []string{"/assets/../"}}},
		{"relative public path", Config{Dir: t.TempDir(), Public: []string{"assets/"}}},
		{"public API", Config{Dir: t.TempDir(), Public: []string{"/api/status"}}},
		{"login page in the API", Config{Dir: t.TempDir(), LoginPage: "/api/login"}},
	} {
		if _, err := New(tc.cfg, nil, nil); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
