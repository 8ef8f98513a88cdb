// Package version holds the build's version string, set by the build with
// -ldflags "-X onair/internal/version.Version=…". It imports nothing, so every
// binary (onaird, onairctl, onair-av, onair-ingest) can report it cheaply.
//
// Not for: API or config schema versions (those live with their types).
package version

// Version is the build's version (git describe), "dev" when built without the Makefile.
var Version = "dev"
