package pulselab

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
)

// cliPrompt ends the server's banner and the output of every command on
// the CLI socket (module-cli-protocol-unix), once a client has said
// "hello"; before that the server prints neither, so a reader could not
// tell an empty answer (a successful kill) from one still to come.
const cliPrompt = ">>> "

// cli runs commands on the server's CLI socket and returns their output,
// one string each. pactl 16 cannot kill a stream (no kill-sink-input or
// kill-source-output; pacmd has them but insists on a PID file), the CLI
// can. Bounded by cmdTimeout for the whole exchange.
func (l *Lab) cli(cmds ...string) ([]string, error) {
	deadline := time.Now().Add(cmdTimeout)
	c, err := net.DialTimeout("unix", l.cliSocket, cmdTimeout)
	if err != nil {
		return nil, fmt.Errorf("pulselab: cli: %w", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("pulselab: cli: %w", err)
	}
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return nil, fmt.Errorf("pulselab: cli hello: %w", err)
	}
	if _, err := readToPrompt(r); err != nil {
		return nil, fmt.Errorf("pulselab: cli banner: %w", err)
	}
	outs := make([]string, 0, len(cmds))
	for _, cmd := range cmds {
		if _, err := c.Write([]byte(cmd + "\n")); err != nil {
			return nil, fmt.Errorf("pulselab: cli %q: %w", cmd, err)
		}
		out, err := readToPrompt(r)
		l.log.Debug("cli", zap.String("cmd", cmd), zap.String("out", out), zap.Error(err))
		if err != nil {
			return nil, fmt.Errorf("pulselab: cli %q: %w", cmd, err)
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// readToPrompt reads up to and including the next prompt and returns what
// came before it, trimmed.
func readToPrompt(r *bufio.Reader) (string, error) {
	var b bytes.Buffer
	for !bytes.HasSuffix(b.Bytes(), []byte(cliPrompt)) {
		c, err := r.ReadByte()
		if err != nil {
			return strings.TrimSpace(b.String()), err
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(strings.TrimSuffix(b.String(), cliPrompt)), nil
}
