package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// API configures the web page, the API and their authentication (api:).
type API struct {
	// Listen is the plain-HTTP TCP address of the web page and API, loopback
	// only (an SSH tunnel, a browser on the box); empty disables it.
	Listen string `yaml:"listen"`
	// HTTPS is the TCP address of the page over TLS with the box's
	// self-signed certificate, on any interface (e.g. ":443"); empty
	// disables it.
	HTTPS  string `yaml:"https"`
	Socket string `yaml:"socket"` // unix socket for onairctl; empty disables
	// AuthDir holds the page's password (hashed) and the certificate; on
	// the persistent partition.
	AuthDir string `yaml:"auth_dir"`
	// Names are more host names or addresses the crew reaches the box by,
	// put in the certificate when it is made (e.g. encoder-3.local).
	Names []string `yaml:"names"`
}

func defaultAPI() API {
	return API{Listen: "127.0.0.1:8080", Socket: "/run/onair/onaird.sock", AuthDir: "/var/lib/onair/auth"}
}

// Metrics configures the separate listener for the studio's Prometheus
// (metrics:). /metrics is also served behind the page's session.
type Metrics struct {
	// Listen is a plain-HTTP TCP address serving only GET /metrics, e.g.
	// ":9100"; empty disables it.
	Listen string `yaml:"listen"`
	// Allow are the networks that may scrape it (CIDR, e.g. 10.8.0.0/16);
	// loopback always may. A listener off loopback needs at least one.
	Allow []string `yaml:"allow"`
}

// AllowPrefixes parses Allow (valid after Validate).
func (m Metrics) AllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range m.Allow {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func (m Metrics) validate(p *problems) {
	for i, a := range m.Allow {
		if _, err := netip.ParsePrefix(a); err != nil {
			p.add(fmt.Sprintf("metrics.allow[%d]", i), "%q: want a network in CIDR form (10.8.0.0/16, 2001:db8::/48)", a)
		}
	}
	if m.Listen == "" {
		return
	}
	host, _, err := net.SplitHostPort(m.Listen)
	switch {
	case err != nil:
		p.add("metrics.listen", "%q: %v", m.Listen, err)
	case !isLoopback(host) && len(m.Allow) == 0:
		p.add("metrics.listen", "%q: off loopback, metrics.allow must name the networks that may scrape", m.Listen)
	}
}

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
			p.add("api.listen", "%q: plain HTTP is for loopback only (use 127.0.0.1:PORT or [::1]:PORT); use api.https for the network", a.Listen)
		}
	}
	if a.Socket != "" && !filepath.IsAbs(a.Socket) {
		p.add("api.socket", "%q: must be an absolute path", a.Socket)
	}
	if a.HTTPS != "" {
		if _, port, err := net.SplitHostPort(a.HTTPS); err != nil {
			p.add("api.https", "%q: %v", a.HTTPS, err)
		} else if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			p.add("api.https", "%q: port must be 0..65535", a.HTTPS)
		}
	}
	if (a.Listen != "" || a.HTTPS != "") && (a.AuthDir == "" || !filepath.IsAbs(a.AuthDir)) {
		p.add("api.auth_dir", "%q: must be an absolute path (the page's password and certificate)", a.AuthDir)
	}
	for i, n := range a.Names {
		if n == "" || strings.ContainsAny(n, " /\t") {
			p.add(fmt.Sprintf("api.names[%d]", i), "%q: want a host name or an IP address", n)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}
