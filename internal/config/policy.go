package config

import (
	"gopkg.in/yaml.v3"

	"onair/web/api"
)

// Policy is how an uplink carries the stream (uplinks[].policy): bond,
// duplicate or backup (see api.UplinkPolicy).
type Policy = api.UplinkPolicy

// Policies lists the allowed values.
var Policies = []Policy{api.PolicyBond, api.PolicyDuplicate, api.PolicyBackup}

// policyYAML decodes a Policy with the enum's error message.
type policyYAML Policy

// UnmarshalYAML accepts bond, duplicate or backup.
func (p *policyYAML) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalEnum(n, Policies, (*Policy)(p))
}
