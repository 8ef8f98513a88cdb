package config

import (
	"path"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"

	"onair/web/api"
)

// Uplink is one network path of a bonded (srtla://) output (uplinks[]).
type Uplink struct {
	// Name is how status, the API and onairctl call it ("wired", "cell1").
	Name string `yaml:"name"`
	// Interface is an interface name or a glob ("eth*", "wwan0").
	Interface string `yaml:"interface"`
	// Policy is bond (default), duplicate or backup.
	Policy Policy `yaml:"policy"`
	// CapMB is a data cap in megabytes (10^6 bytes); 0: none. At the cap the
	// uplink stops carrying stream bytes.
	CapMB uint64 `yaml:"cap_mb"`
}

// UnmarshalYAML decodes one uplink with policy bond when none is given.
func (u *Uplink) UnmarshalYAML(n *yaml.Node) error {
	type plain struct {
		Name      string     `yaml:"name"`
		Interface string     `yaml:"interface"`
		Policy    policyYAML `yaml:"policy"`
		CapMB     uint64     `yaml:"cap_mb"`
	}
	// Node.Decode does not inherit the decoder's KnownFields: check here.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i]; k.Value {
			case "name", "interface", "policy", "cap_mb":
			default:
				return typeError(k, "field %s not found in type config.Uplink", k.Value)
			}
		}
	}
	v := plain{Policy: policyYAML(api.PolicyBond)}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*u = Uplink{Name: v.Name, Interface: v.Interface, Policy: Policy(v.Policy), CapMB: v.CapMB}
	return nil
}

// CapBytes is the cap in bytes (0: none).
func (u Uplink) CapBytes() uint64 { return u.CapMB * 1_000_000 }

var uplinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,14}$`)

// maxUplinks is what one SRTLA group can hold (the receivers' limit of 8
// links per group).
const maxUplinks = 8

func validateUplinks(p *problems, ups []Uplink, bonded bool) {
	if !bonded {
		if len(ups) > 0 {
			p.add("uplinks", "only used with an srtla:// output.url (srt:// goes out by the main routing table)")
		}
		return
	}
	if len(ups) == 0 {
		p.add("uplinks", "missing: an srtla:// output.url needs at least one uplink, e.g. {name: wired, interface: \"eth*\"}")
		return
	}
	if len(ups) > maxUplinks {
		p.add("uplinks", "%d uplinks: an SRTLA group holds at most %d links", len(ups), maxUplinks)
	}
	seen := map[string]bool{}
	for i, u := range ups {
		key := func(k string) string { return "uplinks[" + strconv.Itoa(i) + "]." + k }
		switch {
		case !uplinkName.MatchString(u.Name):
			p.add(key("name"), "%q: must be 1..15 of a-z, 0-9, _ and -, starting with a letter or digit", u.Name)
		case seen[u.Name]:
			p.add(key("name"), "%q: given twice", u.Name)
		}
		seen[u.Name] = true
		if _, err := path.Match(u.Interface, ""); u.Interface == "" || err != nil || len(u.Interface) > 64 {
			p.add(key("interface"), "%q: must be an interface name or a glob such as eth*", u.Interface)
		}
		checkEnum(p, key("policy"), u.Policy, Policies)
		if u.CapMB > 100_000_000 {
			p.add(key("cap_mb"), "%d: at most 100000000 (100 TB)", u.CapMB)
		}
	}
}
