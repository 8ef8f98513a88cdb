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
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error // "Get \"http://localhost/api/status\": …" says it twice
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }() // only read from: nothing to save
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
