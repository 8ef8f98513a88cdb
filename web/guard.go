package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"onair/web/api"
)

// handler is an endpoint; body is the whole request body (empty for GET).
type handler func(w http.ResponseWriter, r *http.Request, body []byte)

// guard refuses, with 403, a request whose Host is not allowed (when
// allowedHost is set: the TCP listener) and any cross-origin request from a
// browser: one whose Origin is not this host, or whose Sec-Fetch-Site says
// another site. Without these, a page on any site, open in a browser on the
// box or the operator's laptop tunnelled to it, could POST to the API.
func guard(next http.Handler, allowedHost func(hostport string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowedHost != nil && !allowedHost(r.Host) {
			writeError(w, http.StatusForbidden, "web: host "+quote(r.Host)+" refused: the API answers to loopback names only")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			writeError(w, http.StatusForbidden, "web: cross-origin request from "+quote(o)+" refused")
			return
		}
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin", "none": // not a browser, same page, or typed by the user
		default:
			writeError(w, http.StatusForbidden, "web: cross-origin request refused (Sec-Fetch-Site: "+site+")")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin: origin is http(s)://host exactly (a browser sends "null" from
// sandboxed frames and files: refused).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// route serves h at path for method only: another method is answered 405
// with Allow. A GET route also answers HEAD. A POST must say Content-Type
// application/json (415 otherwise: a browser sends an HTML form or a "simple"
// fetch as text/plain or a form type without asking first) and carry at most
// api.MaxBodyBytes (413).
func route(mux *http.ServeMux, path, method string, h handler) {
	routeN(mux, path, method, api.MaxBodyBytes, h)
}

// routeN is route with a body limit of its own.
func routeN(mux *http.ServeMux, path, method string, limit int64, h handler) {
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "web: "+r.Method+" "+path+": method not allowed (allowed: "+allow+")")
			return
		}
		var body []byte
		if method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "web: POST "+path+": Content-Type must be application/json")
				return
			}
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, "web: POST "+path+": body over the limit")
				return
			case err != nil:
				writeError(w, http.StatusBadRequest, "web: POST "+path+": read body: "+err.Error())
				return
			}
		}
		h(w, r, body)
	})
}

// decodeStrict decodes exactly one JSON value with known fields into v.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
