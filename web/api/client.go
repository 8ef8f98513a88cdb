package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds one call of a Client whose context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// maxAnswerBytes bounds an answer read by the Client (a status is a few KiB).
const maxAnswerBytes = 8 << 20

// Client calls onaird's API. It is safe for concurrent use.
type Client struct {
	hc   *http.Client
	base string // scheme://host, no trailing slash

	// A session of the web page's authentication (Login): its cookies are
	// kept here, not in a cookiejar, which would not send the Secure
	// cookies over plain HTTP on loopback.
	mu      sync.Mutex
	cookies map[string]string
	csrf    string
}

// NewUnixClient returns a client of the API on the unix socket at path
// (api.socket).
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: DefaultTimeout}, base: "http://localhost"}
}

// NewHTTPClient returns a client of the API at baseURL, e.g.
// "http://127.0.0.1:8080" (api.listen).
func NewHTTPClient(baseURL string) *Client {
	// No Proxy: the API is on loopback, never behind $HTTP_PROXY.
	tr := &http.Transport{MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second}
	return &Client{hc: &http.Client{Transport: tr, Timeout: DefaultTimeout}, base: strings.TrimRight(baseURL, "/")}
}

// StatusError is a non-2xx answer of the API.
type StatusError struct {
	Method, Path string
	Code         int    // HTTP status code
	Message      string // the server's error text; empty if it sent none
}

// Error returns the server's text, which already names what failed, or the
// request and status code when the server sent no text.
func (e *StatusError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("api: %s %s: %d %s", e.Method, e.Path, e.Code, http.StatusText(e.Code))
}

// Status returns the box's status (GET /api/status).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	raw, err := c.RawStatus(ctx)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return Status{}, fmt.Errorf("api: decode status: %w", err)
	}
	return st, nil
}

// RawStatus returns the status JSON exactly as the server sent it.
func (c *Client) RawStatus(ctx context.Context) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, PathStatus, nil)
}

// FailoverVideo swaps the active encoder (POST /api/failover/video). A
// refused failover is a *StatusError with Code 409.
func (c *Client) FailoverVideo(ctx context.Context) (FailoverResult, error) {
	var r FailoverResult
	err := c.post(ctx, PathFailoverVideo, struct{}{}, &r)
	return r, err
}

// SetVideoBitrate changes both encoders' bitrate at one frame index (POST
// /api/video/bitrate). A refused value is a *StatusError with Code 400.
func (c *Client) SetVideoBitrate(ctx context.Context, kbps int) (BitrateResult, error) {
	var r BitrateResult
	err := c.post(ctx, PathVideoBitrate, BitrateRequest{Kbps: kbps}, &r)
	return r, err
}

// SetUplink enables or disables one uplink (POST /api/uplinks/{name}). An
// unknown name is a *StatusError with Code 404.
func (c *Client) SetUplink(ctx context.Context, name string, enabled bool) (UplinkStatus, error) {
	var r UplinkStatus
	err := c.post(ctx, PathUplinks+url.PathEscape(name), UplinkRequest{Enabled: enabled}, &r)
	return r, err
}

// SetAudioSource sets the audio mode: auto, or a forced chain (POST
// /api/audio/source). It returns the audio status after the change.
func (c *Client) SetAudioSource(ctx context.Context, mode AudioMode) (AudioStatus, error) {
	var r AudioStatus
	err := c.post(ctx, PathAudioSource, AudioSourceRequest{Mode: mode}, &r)
	return r, err
}

// SetOnAir goes live (true) or stops the stream cleanly (false).
func (c *Client) SetOnAir(ctx context.Context, live bool) (OnAirStatus, error) {
	var r OnAirStatus
	err := c.post(ctx, PathOnAir, OnAirRequest{Live: live}, &r)
	return r, err
}

// PanelPress presses a front-panel button (long: held past the long-press time).
func (c *Client) PanelPress(ctx context.Context, button string, long bool) (PanelPressResult, error) {
	var r PanelPressResult
	err := c.post(ctx, PathPanelPress, PanelPressRequest{Button: button, Long: long}, &r)
	return r, err
}

func (c *Client) post(ctx context.Context, path string, req, answer any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("api: encode %s: %w", path, err)
	}
	b, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, answer); err != nil {
		return fmt.Errorf("api: decode answer of %s: %w", path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.mu.Lock()
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	if c.csrf != "" && method != http.MethodGet {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	c.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error // "Get \"http://localhost/api/status\": …" says it twice
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }() // only read from: nothing to save
	if cs := resp.Cookies(); len(cs) > 0 {
		c.mu.Lock()
		if c.cookies == nil {
			c.cookies = map[string]string{}
		}
		for _, ck := range cs {
			if ck.MaxAge < 0 || ck.Value == "" {
				delete(c.cookies, ck.Name)
			} else {
				c.cookies[ck.Name] = ck.Value
			}
		}
		c.mu.Unlock()
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("api: read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Method: method, Path: path, Code: resp.StatusCode}
		var e Error
		if json.Unmarshal(b, &e) == nil {
			se.Message = e.Error
		}
		return nil, se
	}
	return b, nil
}

// The web page's authentication routes that a Client uses (web/auth serves
// them).
const (
	PathSession = "/api/session"
	PathLogin   = "/api/login"
	CSRFHeader  = "X-CSRF-Token"
)

// session is the part of web/auth's SessionInfo a Client needs.
type session struct {
	LoggedIn  bool   `json:"logged_in"`
	CSRFToken string `json:"csrf_token"`
}

// Login logs the client in to the TCP API with the box's password, as the
// web page does: the session's cookie and CSRF token then go with every
// later call. Over the unix socket no login is needed.
func (c *Client) Login(ctx context.Context, password string) error {
	b, err := c.do(ctx, http.MethodGet, PathSession, nil)
	if err != nil {
		return err
	}
	var s session
	if err = json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("api: decode session: %w", err)
	}
	c.mu.Lock()
	c.csrf = s.CSRFToken
	c.mu.Unlock()
	body, err := json.Marshal(struct {
		Password string `json:"password"`
	}{password})
	if err != nil {
		return fmt.Errorf("api: encode login: %w", err)
	}
	if b, err = c.do(ctx, http.MethodPost, PathLogin, body); err != nil {
		return err
	}
	if err = json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("api: decode login: %w", err)
	}
	if !s.LoggedIn {
		return errors.New("api: login: the answer says not logged in")
	}
	c.mu.Lock()
	c.csrf = s.CSRFToken
	c.mu.Unlock()
	return nil
}

// Events returns the post-event report (GET /api/events): since is a
// duration ("2h": the newest part) or an RFC 3339 time, "" for all; after
// a Seq already seen (0: none).
func (c *Client) Events(ctx context.Context, since string, after uint64) (EventsResponse, error) {
	var r EventsResponse
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if after > 0 {
		q.Set("after", fmt.Sprint(after))
	}
	err := c.get(ctx, PathEvents, q, &r)
	return r, err
}

// Logs returns onaird's newest log lines after Seq after, at most n (0:
// all that are kept; negative: the server's default).
func (c *Client) Logs(ctx context.Context, after uint64, n int) (LogsResponse, error) {
	var r LogsResponse
	q := url.Values{}
	if after > 0 {
		q.Set("after", fmt.Sprint(after))
	}
	if n >= 0 {
		q.Set("n", fmt.Sprint(n))
	}
	err := c.get(ctx, PathLogs, q, &r)
	return r, err
}

// PathSetupToken and PathPasswd are onairctl's routes of the page's
// authentication, on the unix socket only (web/auth serves them).
const (
	PathSetupToken = "/api/setup-token"
	PathPasswd     = "/api/passwd"
)

// SetupToken returns the one-time setup token while the box has no
// password (GET /api/setup-token, socket only).
func (c *Client) SetupToken(ctx context.Context) (string, error) {
	var r struct {
		Token string `json:"token"`
	}
	err := c.get(ctx, PathSetupToken, nil, &r)
	return r.Token, err
}

// Passwd sets the page's password without the old one (POST /api/passwd,
// socket only): SSH to the box is the authentication.
func (c *Client) Passwd(ctx context.Context, password string) error {
	var r struct{}
	return c.post(ctx, PathPasswd, struct {
		Password string `json:"password"`
	}{password}, &r)
}

func (c *Client) get(ctx context.Context, path string, q url.Values, answer any) error {
	p := path
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	b, err := c.do(ctx, http.MethodGet, p, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, answer); err != nil {
		return fmt.Errorf("api: decode answer of %s: %w", path, err)
	}
	return nil
}

// SetRecording starts (true) or stops the local recording (POST
// /api/recording) and returns its status after.
func (c *Client) SetRecording(ctx context.Context, on bool) (RecordingStatus, error) {
	var r RecordingStatus
	err := c.post(ctx, PathRecording, RecordingRequest{Recording: on}, &r)
	return r, err
}

// Restart restarts one child or component (POST /api/restart).
func (c *Client) Restart(ctx context.Context, name string, force bool) (RestartResult, error) {
	var r RestartResult
	err := c.post(ctx, PathRestart, RestartRequest{Name: name, Force: force}, &r)
	return r, err
}

// ApplyConfig validates (dryRun) or applies a whole configuration (POST
// /api/config). A configuration that does not validate is a *StatusError
// with Code 400 naming the key.
func (c *Client) ApplyConfig(ctx context.Context, yaml []byte, dryRun bool) (ConfigResult, error) {
	var r ConfigResult
	err := c.post(ctx, PathConfig, ConfigRequest{YAML: string(yaml), DryRun: dryRun}, &r)
	return r, err
}

// StartCanary starts the on-air canary of a new encoder worker (POST
// /api/canary); it runs on, followed in Status().Canary and the events.
func (c *Client) StartCanary(ctx context.Context, worker string) (CanaryStatus, error) {
	var r CanaryStatus
	err := c.post(ctx, PathCanary, CanaryRequest{Worker: worker}, &r)
	return r, err
}

// Update starts installing a signed bundle into the inactive slot (POST
// /api/update); Status().Update.Install follows it.
func (c *Client) Update(ctx context.Context, req UpdateRequest) (UpdateInstall, error) {
	var r UpdateInstall
	err := c.post(ctx, PathUpdate, req, &r)
	return r, err
}
