// Package nut is a Network UPS Tools client: it speaks NUT's line-oriented
// TCP protocol to upsd (RFC 9271; port 3493 by default) and turns one UPS's
// variables into a Reading. It sends LIST VAR <ups> to read (ParseLine also
// knows GET VAR's and LIST UPS's answers), USERNAME, PASSWORD and LOGIN <ups>
// when the box is configured with a upsd user, and LOGOUT on Close.
// ParseLine, the pure parser of one response line, is separate from the
// I/O and fuzzed (FuzzParse).
//
// Not for: the power policy (when to warn, when to shut down: package power
// decides from Readings), commands that change the UPS (SET VAR, INSTCMD,
// FSD), upsmon's role, or TLS (STARTTLS; the box reads a upsd on its own
// loopback or LAN).
//
// Why hand-written: no well-kept Go NUT client exists. The one most code
// imports, github.com/robbiet480/go.nut, is unmaintained (no tagged
// release); it takes a context only for the dial, sets no deadline on
// requests (a stalled upsd hangs the caller), reads each answer through a
// new bufio.Reader (bytes buffered past the answer are lost), bounds no
// line, and its Authenticate never sends LOGIN, so a wrong password passes
// silently (upsd answers OK to USERNAME and PASSWORD whatever they are).
// Its forks (DRuggeri, bearx3f with context support, …) are one-person,
// untagged pseudo-versions imported by almost nobody. The protocol is a
// handful of line-oriented commands, and the box needs exactly what those
// lack: a bounded line, a deadline on every request, errors an operator can
// read on the status line, and a reconnect backoff on an injected clock.
//
// Protocol facts this client relies on (nut-server 2.8.0, FACTS.md §9; the
// live tests pin them against the real upsd):
//   - USERNAME and PASSWORD answer OK even when wrong; only LOGIN checks
//     (ERR ACCESS-DENIED for a wrong password, an unknown user or a user
//     without the upsmon role). A second LOGIN on one connection answers
//     ERR ALREADY-LOGGED-IN, which the client takes as success.
//   - LIST VAR answers BEGIN LIST VAR <ups>, one VAR line per variable,
//     END LIST VAR <ups>; an unknown UPS is ERR UNKNOWN-UPS; a dead driver
//     ERR DRIVER-NOT-CONNECTED at once.
//   - Killed upsd: an idle connection reads EOF within milliseconds, the
//     first write after still succeeds, and redialing is refused.
package nut
