package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
)

// API configures the local status API (api:).
type API struct {
	// Listen is the TCP address of the web page and API; empty disables it.
	// Only loopback addresses are allowed until the page has authentication.
	Listen string `yaml:"listen"`
	Socket string `yaml:"socket"` // unix socket for onairctl; empty disables
}

func defaultAPI() API { return API{Listen: "127.0.0.1:8080", Socket: "/run/onair/onaird.sock"} }

func (a API) validate(p *problems) {
	if a.Listen != "" {
		host, port, err := net.SplitHostPort(a.Listen)
		if n, perr := strconv.Atoi(port); err == nil && (perr != nil || n < 0 || n > 65535) {
			p.add("api.listen", "%q: port must be 0..65535", a.Listen)
		}
		switch {
		case err != nil:
			p.add("api.listen", "%q: %v", a.Listen, err)
		case !isLoopback(host):
			p.add("api.listen", "%q: only loopback addresses until the web page has authentication (use 127.0.0.1:PORT or [::1]:PORT)", a.Listen)
		}
	}
	if a.Socket != "" && !filepath.IsAbs(a.Socket) {
		p.add("api.socket", "%q: must be an absolute path", a.Socket)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}
