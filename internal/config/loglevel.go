package config

import "gopkg.in/yaml.v3"

// LogLevel is the level of onaird's log and its children's (log_level).
type LogLevel string

// Log levels, as zap names them.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// LogLevels lists the allowed values.
var LogLevels = []LogLevel{LogDebug, LogInfo, LogWarn, LogError}

// UnmarshalYAML accepts debug, info, warn or error.
func (l *LogLevel) UnmarshalYAML(n *yaml.Node) error { return unmarshalEnum(n, LogLevels, l) }
