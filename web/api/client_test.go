package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// recorded is what the fake server saw of the last request.
type recorded struct {
	method, path, contentType, body string
}

func fakeServer(t *testing.T, rec *recorded, code int, answer string) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		*rec = recorded{r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(code)
		if _, err := io.WriteString(w, answer); err != nil {
			t.Errorf("write: %v", err)
		}
	})
}

// The server refuses a POST that is not application/json (a browser's form).
func TestClientPostsJSON(t *testing.T) {
	var rec recorded
	srv := httptest.NewServer(fakeServer(t, &rec, http.StatusOK, `{"result":"ok","at_index":42,"kbps":2500}`))
	defer srv.Close()
	c := NewHTTPClient(srv.URL + "/")
	r, err := c.SetVideoBitrate(context.Background(), 2500)
	if err != nil || r != (BitrateResult{Result: "ok", AtIndex: 42, Kbps: 2500}) {
		t.Fatalf("bitrate: %v %+v", err, r)
	}
	if rec.method != http.MethodPost || rec.path != PathVideoBitrate || rec.contentType != "application/json" {
		t.Fatalf("request %+v", rec)
	}
	var req BitrateRequest
	if err := json.Unmarshal([]byte(rec.body), &req); err != nil || req.Kbps != 2500 {
		t.Fatalf("body %q: %v", rec.body, err)
	}
	if _, err := c.FailoverVideo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.method != http.MethodPost || rec.path != PathFailoverVideo || rec.contentType != "application/json" || rec.body != "{}" {
		t.Fatalf("failover request %+v", rec)
	}
}

func TestNon2xxIsStatusErrorWithServerText(t *testing.T) {
	var rec recorded
	srv := httptest.NewServer(fakeServer(t, &rec, http.StatusConflict, `{"error":"encoder: failover: encoder-b is not running"}`))
	defer srv.Close()
	_, err := NewHTTPClient(srv.URL).FailoverVideo(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message != "encoder: failover: encoder-b is not running" {
		t.Fatalf("got %v", err)
	}
	if err.Error() != se.Message {
		t.Fatalf("error text %q, want the server's", err)
	}

	// No JSON error text: the code is in the message.
	srv2 := httptest.NewServer(fakeServer(t, &rec, http.StatusNotFound, `404 page not found`))
	defer srv2.Close()
	_, err = NewHTTPClient(srv2.URL).Status(context.Background())
	if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), PathStatus) {
		t.Fatalf("got %v", err)
	}
}

func TestUnixClientReachesTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var rec recorded
	srv := httptest.NewUnstartedServer(fakeServer(t, &rec, http.StatusOK, `{"version":"v1","state":"degraded","components":[{"name":"api","state":"backoff","vital":false,"restarts":2,"last_error":"bind: address already in use"}]}`))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	st, err := NewUnixClient(sock).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1" || st.State != BoxDegraded || len(st.Components) != 1 || st.Components[0].Restarts != 2 || st.Components[0].State != "backoff" {
		t.Fatalf("status %+v", st)
	}
	if rec.method != http.MethodGet || rec.path != PathStatus {
		t.Fatalf("request %+v", rec)
	}
}

func TestUnreachableServerIsAnError(t *testing.T) {
	_, err := NewUnixClient(filepath.Join(t.TempDir(), "none.sock")).Status(context.Background())
	var se *StatusError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("got %v, want a connection error", err)
	}
}
