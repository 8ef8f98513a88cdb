package supervisor

import "onair/web/api"

// State is where a Child's supervision loop is. It is a string so that it
// reads well in JSON and logs.
//
// Allowed transitions (anything else is a bug):
//
//	stopped  -> starting   Run called
//	starting -> running    process started (OnStart called)
//	starting -> backoff    start failed (ExtraFiles error, exec error)
//	running  -> backoff    instance exited on its own (crash, exit status)
//	running  -> stalled    no Progress for StartTimeout / StallTimeout
//	running  -> starting   Restart requested: group SIGKILLed, reaped, no backoff
//	running  -> stopping   Run's context cancelled
//	stalled  -> backoff    stalled instance SIGKILLed and reaped
//	stopping -> stopped    instance reaped after SIGTERM (or SIGKILL after Grace); Run returns
//	backoff  -> starting   delay elapsed, or Restart requested (skips the rest of the delay)
//	backoff  -> stopped    Run's context cancelled; Run returns
//
// Run's context being cancelled while starting or stalled is noticed right
// after (the instance is then stopped or already reaped), so those states
// never go to stopped directly.
//
// The type lives in the API package so that clients share it.
type State = api.RunState

// The states of a Child; see State for the transitions.
const (
	StateStopped  State = "stopped"  // Run not called yet, or returned
	StateStarting State = "starting" // ExtraFiles + fork/exec in progress
	StateRunning  State = "running"  // instance alive, being watched
	StateStalled  State = "stalled"  // no progress: instance being killed
	StateStopping State = "stopping" // shutting down: SIGTERM sent, SIGKILL after Grace
	StateBackoff  State = "backoff"  // waiting before the next start
)
