// Package abr is onaird's adaptive bitrate: it reads the SRT sender's
// statistics and the SRTLA links every 100 ms and sets the video bitrate of
// both twins (encoder.Twins.SetBitrate, one frame index for both) between
// video.bitrate_min_kbps and video.bitrate_kbps.
//
// Not for: scheduling packets over the links (that is the SRTLA sender,
// which gives a weak modem a smaller share), nor plain srt:// outputs
// unless video.abr asks for it, nor reading stats itself (Source does).
//
// # What it reads
//
// Per tick (Sample): the send-buffer span (SendBufMs) and packet count,
// the cumulative sent / retransmitted counters, from which it derives the
// cumulative acknowledged packets (PktSent − PktRetrans − SendBufPkts: in
// gosrt the send buffer counts packets pushed and not yet acknowledged),
// and each SRTLA link's liveness and throughput (LinksFromUplinks). RTT is logged but never
// decides: during a cut gosrt's MsRTT stays frozen while the send buffer
// grows (FACTS.md §10), and MbpsLinkCapacity is meaningless.
//
// From these it keeps:
//   - the delivered rate: acknowledged stream kbps over the last 500 ms,
//     measured only over a run of ticks with ACK progress (a tick without
//     progress while packets are outstanding restarts it), so an ACK gap
//     never counts as a low rate;
//   - the send-buffer growth over 500 ms and over the last 200 ms;
//   - the send-buffer floor: the span with no queue (the slowest carrying
//     path's round trip, plus a retransmission when links lose packets).
//     It follows a lower span at once and creeps up (10 s) only on quiet
//     ticks, so a modem that became slower is learnt but a queue is not;
//     queue = span − floor;
//   - the capacity: the delivered rate whenever the queue is above its
//     threshold (max(40 ms, latency/20)), i.e. whenever the network, not
//     the encoder, limits what is acknowledged — but only when the rate is
//     steady: no ACK pause in the window (over lossy links the ACK point
//     waits behind every hole whose repair was lost again, then jumps) and
//     retransmissions under 15 % of it (in a storm of repairs the unique
//     rate acknowledged is far under what the links carry once it ends);
//   - the knee: the video bitrate at which the network last congested, the
//     lowest bitrate from 1.5 s to 0.5 s before a congestion or emergency
//     decrease (the queue built under it), or the steady delivered rate
//     when lower. It does not depend on the ACK rate, so it holds over
//     lossy links where the delivered rate is noise; it is kept 30 s;
//   - the stream overhead (stream kbps per video kbps: TS, audio), learnt
//     on clean ticks.
//
// # Rules, first match wins
//
//  1. Emergency: the span reaches latency/3, or no ACK progress for 500 ms
//     with packets outstanding, or no link alive. One immediate step to
//     70 % of the delivered rate (at most 80 % of the current): the steady
//     rate of the last 500 ms, or, when ACKs merely paused (up to 250 ms)
//     or retransmissions storm while links are alive, the rate delivered
//     over the last 2 s, pauses included; the minimum only when nothing is
//     delivered, no link is alive or ACKs stopped for longer (a cut). A
//     repeat within three latencies needs the buffer still growing: a
//     buffer that drains is the last cut working.
//  2. Link lost: a link that carried part of the load is dead: the bitrate
//     loses that share at once, without waiting for the buffer to fill.
//  3. Congestion: the queue is above its threshold and the buffer has grown
//     (over both windows) for 250 ms while ACKs flow. A delay step on one
//     path (a weak modem) grows the buffer once and stops, so it does not
//     qualify; a capacity drop does. The cut goes to 85 % of the rate
//     delivered since the queue started building, in one step, and always
//     at least 10 % down (a growing buffer is a bitrate too high, whatever
//     the rate says); when that rate is not steady (ACK pauses, a storm) it
//     goes at most 30 % down. The next congestion cut waits 500 ms, the
//     next increase 1 s.
//  4. Climb, on clean ticks (no growth, queue under threshold, span under
//     latency/3, delivered ≥ 90 % of what entered SRT — not of the bitrate:
//     x264 runs without filler, and a static picture sends far less):
//     - the capacity was measured within 5 s and the bitrate is below 75 %
//     of it (after a cut or a hiccup): jump back to 80 % of it (at most
//     85 % of the knee);
//     - a knee is known and the bitrate is under 85 % of it: jump back to
//     85 % of it;
//     - under the knee: probe +5 % a second, every 3 s from 92 % of it
//     (where the next congestion is likely); from the knee to 110 % of it,
//     every 2 s;
//     - no knee, and within 110 % of a capacity measured within 20 s: probe
//     +5 % a second (every 2 s from 90 % of it);
//     - otherwise (past both: they are stale), a geometric climb that
//     reaches the ceiling within 12 s of its start (every step at least
//     100 kbps).
//
// Changes are rounded to 100 kbps (down for decreases, up for increases),
// clamped to [MinKbps, ceiling], and applied only when at least
// max(100 kbps, 5 %) away (reaching a bound is always allowed) and 500 ms
// after the previous change; emergencies, lost links and a lowered
// operator cap are applied at once.
//
// # Why this beats belacoder (SRTLA.md appendix)
//
// belacoder walks down by 100 kbps + 10 % per 250 ms on RTT or buffer
// thresholds derived from its own averages, and climbs by ~3 % per 500 ms
// only while RTT is below a creeping minimum: after a CPU hiccup or a cut
// its averages say "congested" for a long time and it stays low; over a
// bond, the slowest modem's RTT keeps it from climbing. Here a decrease
// goes in one step to what the network was measured to deliver, an RTT
// rise or a delay step that does not grow the buffer never cuts, and the
// climb is bounded in time: back at the maximum in well under 30 s after
// capacity returns (the tests: ~4 s after a 1 s or 10 s cut, ~10 s after
// the same cut with a static picture, ~7 s after a 1 s CPU hiccup, ~10 s
// after capacity halved and restored).
//
// The tests drive both through a fluid model of SRT over a bond
// (netmodel_test.go, reference_test.go): after a 1 s cut belacoder sits at
// ~1 Mbit/s for the next minute where this is back at 8 Mbit/s in 4 s; one
// modem turning slow and lossy takes belacoder to 3.5 Mbit/s and this
// nowhere. Over a lossy 5 + 2 Mbit/s bond the model does not show
// belacoder's lab failure (packet-level effects), and its finer 100-kbps
// walk settles a little higher there (6.4 vs 6.1 Mbit/s mean; ours never
// under 5.2): this controller pays for its one-step decreases with a
// sawtooth between 85 % and 100 % of the capacity.
//
// # Start
//
// It starts at Config.StartKbps, by default the maximum, where belacoder
// starts at the minimum. A studio wants its full quality from the first
// frame on a wired uplink, and starting high is safe here because the
// first congestion cut lands on the measured capacity within about a
// second (the 5 + 2 Mbit/s test starts at 10 Mbit/s and is at 5.5 Mbit/s
// after 0.6 s), not after a 100-kbps walk. Cellular-only boxes that would
// rather start low set StartKbps.
package abr
