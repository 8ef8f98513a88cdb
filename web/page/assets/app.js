// app.js: the box's live page. It reads the api.Status JSON of the
// stream's "status" events and shows each part only when it is present;
// "event" events fill the event list, "log" events the log tail. The
// controls POST to the command endpoints (common.js adds the CSRF token).
// Every string from the box is set as textContent.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const el = onair.el;

  const state = {
    status: null,
    events: new Map(), // seq → event
    logs: [], // newest last
    lastLogSeq: 0,
    uptime: -1,
    rate: new Map(), // child name → {frames, t, fps}
    busy: false,
  };
  const MAX_EVENTS = 200;
  const MAX_LOGS = 200;

  // ---- formatting -------------------------------------------------------

  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);
  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : null);
  const str = (v) => (v === undefined || v === null ? '' : String(v));

  function fmtDuration(s) {
    s = num(s);
    if (s === null || s < 0) return '';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, '0');
    return (d ? d + 'd ' : '') + pad(h) + ':' + pad(m) + ':' + pad(s % 60);
  }
  function fmtBytes(b) {
    b = num(b);
    if (b === null) return '';
    const u = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return (i ? b.toFixed(b < 10 ? 2 : 1) : b) + ' ' + u[i];
  }
  function fmtKbps(k) {
    k = num(k);
    if (k === null) return '';
    return k >= 1000 ? (k / 1000).toFixed(2) + ' Mb/s' : Math.round(k) + ' kb/s';
  }
  function fmtTime(t) {
    const d = new Date(t);
    if (isNaN(d)) return str(t);
    if (d.getUTCFullYear() < 2000) return ''; // Go's zero time: not known
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }
  const fixed = (v, n) => (num(v) === null ? '' : v.toFixed(n));
  const words = (s) => str(s).replace(/_/g, ' ');

  // ---- DOM helpers ------------------------------------------------------

  function show(id, on) { $(id).hidden = !on; }

  // kv fills a <dl> with [label, value] pairs (empty values are left out).
  function kv(dl, pairs) {
    const frag = document.createDocumentFragment();
    for (const [k, v] of pairs) {
      if (v === '' || v === null || v === undefined) continue;
      frag.append(el('dt', '', k), el('dd', '', v));
    }
    dl.replaceChildren(frag);
  }

  // keyed keeps one child of container per key, in the order of items:
  // existing nodes are updated in place, so a button is never replaced
  // under a finger between touch and click.
  function keyed(container, items, keyOf, create, update) {
    const old = new Map();
    for (const c of container.children) old.set(c.dataset.key, c);
    let i = 0;
    for (const it of items) {
      const k = str(keyOf(it));
      let n = old.get(k);
      if (!n) {
        n = create(it, k);
        n.dataset.key = k;
      }
      old.delete(k);
      update(n, it);
      if (container.children[i] !== n) container.insertBefore(n, container.children[i] || null);
      i++;
    }
    for (const n of old.values()) n.remove();
  }

  function badge(node, text, cls) {
    node.textContent = text;
    node.className = 'badge ' + (cls || '');
    node.hidden = text === '';
  }

  // badgeClass maps the box's state words to a colour.
  function badgeClass(s) {
    switch (s) {
      case 'ok': case 'up': case 'running': case 'online': case 'registered': case 'connected': case 'live':
      case 'on_air': case 'mains': case 'locked':
        return 'good';
      case 'degraded': case 'registering': case 'silent': case 'on_battery': case 'backoff': case 'starting':
      case 'capped': case 'unreachable': case 'stopping': case 'unlocked': case 'pending':
        return 'warn';
      case 'down': case 'dead': case 'stalled': case 'failed': case 'absent': case 'low_battery': case 'forced_shutdown':
      case 'power_lost': case 'ending': case 'outage': case 'off_air': case 'hot': case 'no_signal':
        return 'bad';
      default:
        return 'neutral';
    }
  }

  // ---- actions and confirmation ----------------------------------------

  let pending = null;

  // ask shows the in-page confirm step for an action that could end or
  // hurt the show; run is called only on "confirm".
  function ask(text, yes, run) {
    pending = run;
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yes;
    $('confirm').hidden = false;
    $('confirm-yes').focus();
  }
  function closeConfirm() {
    pending = null;
    $('confirm').hidden = true;
  }
  $('confirm-no').addEventListener('click', closeConfirm);
  $('confirm-yes').addEventListener('click', () => {
    const run = pending;
    closeConfirm();
    if (run) run();
  });

  // act POSTs one command and shows its outcome in the message line.
  async function act(label, path, body, done) {
    if (state.busy) return;
    state.busy = true;
    document.body.classList.add('busy');
    try {
      const res = await onair.post(path, body);
      onair.message(done ? done(res) : label + ': done', 'ok');
    } catch (e) {
      if (e.status !== 401) onair.message(label + ': ' + e.message, 'err');
    } finally {
      state.busy = false;
      document.body.classList.remove('busy');
    }
  }

  $('logout').addEventListener('click', async () => {
    closeStream();
    try {
      await onair.post('/api/logout', {});
    } catch (e) {
      if (e.status !== 401) { onair.message('Log out: ' + e.message, 'err'); return; }
    }
    location.href = '/login';
  });

  $('btn-live').addEventListener('click', () => {
    const st = state.status;
    const live = st && obj(st.on_air) && st.on_air.phase !== 'stopped';
    if (live) {
      ask('Stop the stream? The studio loses the picture until you go live again.', 'Stop stream',
        () => act('Stop', '/api/onair', { live: false }, () => 'Stopped: the stream ended cleanly.'));
    } else {
      act('Go live', '/api/onair', { live: true }, () => 'Going live.');
    }
  });

  $('btn-failover').addEventListener('click', () => {
    const sw = videoSwitch(state.status);
    const target = otherEncoder(sw);
    const run = () => act('Failover', '/api/failover/video', {}, (r) =>
      r && r.result === 'pending' ? 'Failover pending: ' + str(r.detail) : 'Switched to ' + str(r && r.target) + '.');
    if (sw && sw.locked === false) {
      ask('The twins are unlocked: the switch to ' + target + ' waits for its next clean IDR and may glitch. Fail over anyway?',
        'Fail over to ' + target, run);
    } else {
      run();
    }
  });

  $('bitrate-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const kbps = parseInt($('bitrate').value, 10);
    if (!(kbps > 0)) {
      onair.message('Bitrate: enter kbps, e.g. 4000.', 'err');
      return;
    }
    ask('Set the video bitrate cap to ' + kbps + ' kb/s? Too low hurts the picture, too high the uplinks.',
      'Set ' + kbps + ' kb/s', () => act('Bitrate', '/api/video/bitrate', { kbps }, (r) => {
        $('bitrate').value = '';
        return 'Bitrate ' + (r && r.result === 'ceiling' ? 'ceiling ' : '') + str(r && r.kbps) + ' kb/s.';
      }));
  });

  for (const b of document.querySelectorAll('[data-mode]')) {
    b.addEventListener('click', () => {
      const mode = b.dataset.mode;
      act('Audio source', '/api/audio/source', { mode }, () => 'Audio source: ' + mode + '.');
    });
  }

  $('btn-rec').addEventListener('click', () => {
    const rec = obj(state.status && state.status.recording);
    const on = isRecording(rec);
    const run = () => act(on ? 'Stop recording' : 'Start recording', '/api/recording', { recording: !on },
      () => (on ? 'Recording stopped.' : 'Recording.'));
    if (on) ask('Stop the recording on the box?', 'Stop recording', run);
    else run();
  });

  // ---- rendering --------------------------------------------------------

  const TALLY = { on_air: 'ON AIR', degraded: 'DEGRADED', off_air: 'OFF AIR', stopped: 'STOPPED' };

  function renderTally(st) {
    const s = str(st.state);
    $('tally').className = 'tally state-' + (TALLY[s] ? s : 'unknown');
    $('tally-state').textContent = TALLY[s] || words(s).toUpperCase() || '?';
    const oa = obj(st.on_air) || {};
    const out = obj(st.output) || {};
    const parts = [];
    if (oa.phase) parts.push(words(oa.phase) + (oa.reason ? ' (' + oa.reason + ')' : ''));
    if (out.state) parts.push('output ' + words(out.state));
    $('tally-detail').textContent = parts.join(' · ');
    $('uptime').textContent = 'up ' + fmtDuration(st.uptime_s);
    $('version').textContent = str(st.version);
  }

  function renderControls(st) {
    show('controls', true);
    const oa = obj(st.on_air) || {};
    const live = oa.phase !== undefined && oa.phase !== 'stopped';
    const b = $('btn-live');
    b.textContent = oa.phase === 'stopping' ? 'Stopping…' : live ? 'Stop stream' : 'Go live';
    b.className = 'btn ' + (live ? 'danger' : 'primary');
    b.disabled = oa.phase === 'stopping';

    const sw = videoSwitch(st);
    const names = sw ? arr(sw.names) : [];
    const fo = $('btn-failover');
    fo.hidden = names.length < 2;
    if (names.length >= 2) {
      const target = otherEncoder(sw);
      fo.textContent = sw.failover_pending ? 'Pending: ' + sw.failover_pending : 'Fail over to ' + target;
      fo.className = 'btn' + (sw.locked === false ? ' warn' : '');
    }

    const bond = obj(st.bond);
    const br = bond && obj(bond.bitrate) ? bond.bitrate : null;
    const video = obj(st.video) || {};
    const now = br ? fmtKbps(br.kbps) + (br.abr ? ' · adaptive ' + fmtKbps(br.min_kbps) + '–' + fmtKbps(br.max_kbps) : '')
      : num(video.bitrate_kbps) ? fmtKbps(video.bitrate_kbps) : '';
    $('bitrate-now').textContent = now ? '· now ' + now : '';

    const rec = obj(st.recording);
    show('rec-row', !!rec);
    if (rec) {
      const on = isRecording(rec);
      $('btn-rec').textContent = on ? 'Stop recording' : 'Start recording';
      $('btn-rec').className = 'btn ' + (on ? 'danger' : '');
      $('rec-info').textContent = on ? '● REC' : '';
    }
  }

  function isRecording(rec) {
    if (!rec) return false;
    if (typeof rec.recording === 'boolean') return rec.recording;
    if (typeof rec.active === 'boolean') return rec.active;
    return rec.state === 'recording';
  }

  function videoSwitch(st) {
    const v = st && obj(st.video);
    return v && obj(v.switch) ? v.switch : null;
  }
  function otherEncoder(sw) {
    const names = sw ? arr(sw.names) : [];
    return str(names.find((n) => n !== sw.active) || '');
  }

  // fps derives frames per second from the frame counters of successive
  // statuses (over at least one second of the box's uptime).
  function fps(name, frames, t) {
    let r = state.rate.get(name);
    if (!r || frames < r.frames || t < r.t) {
      r = { frames, t, fps: null };
      state.rate.set(name, r);
    } else if (t - r.t >= 1) {
      r.fps = (frames - r.frames) / (t - r.t);
      r.frames = frames;
      r.t = t;
    }
    return r.fps;
  }

  function renderEncoders(st) {
    const sw = videoSwitch(st);
    const children = arr(st.children);
    let names = sw ? arr(sw.names).map(str) : [];
    if (!names.length) names = children.filter((c) => c.role === 'encode').map((c) => str(c.name));
    show('encoders', names.length > 0);
    if (!names.length) return;
    const video = obj(st.video) || {};
    const capture = children.find((c) => c.role === 'capture');
    const cad = obj(video.cadence);
    const sum = [];
    if (sw && sw.twins) sum.push(sw.locked ? 'twins locked' : 'twins UNLOCKED');
    if (capture && capture.source) sum.push('input ' + words(capture.source));
    if (cad && cad.signal && cad.signal !== 'live') sum.push(words(cad.signal));
    $('video-summary').textContent = sum.join(' · ');

    const items = names.map((name, i) => ({ name, i, child: children.find((c) => str(c.name) === name) || null }));
    keyed($('encoder-list'), items, (it) => it.name, () => {
      const n = el('div', 'enc');
      const head = el('div', 'enc-head');
      n._name = el('span', 'enc-name');
      n._active = el('span', 'badge');
      head.append(n._name, n._active);
      n._badges = el('div', 'badges');
      n._alive = el('span', 'badge');
      n._run = el('span', 'badge');
      n._lock = el('span', 'badge');
      n._badges.append(n._alive, n._run, n._lock);
      n._kv = el('dl', 'kv');
      n.append(head, n._badges, n._kv);
      return n;
    }, (n, it) => {
      const c = it.child || {};
      const active = sw && sw.active === it.name;
      const alive = sw ? arr(sw.alive)[it.i] : undefined;
      n.classList.toggle('active', !!active);
      n._name.textContent = it.name;
      badge(n._active, active ? 'ACTIVE' : sw && sw.failover_pending === it.name ? 'PENDING' : 'standby',
        active ? 'good' : sw && sw.failover_pending === it.name ? 'warn' : 'neutral');
      badge(n._alive, alive === undefined ? '' : alive ? 'alive' : 'NOT ALIVE', alive ? 'good' : 'bad');
      badge(n._run, c.state ? words(c.state) : '', badgeClass(c.state));
      badge(n._lock, sw && sw.twins ? (sw.locked ? 'locked' : 'unlocked') : '', sw && sw.locked ? 'good' : 'warn');
      const f = num(c.frames) !== null && num(st.uptime_s) !== null ? fps(it.name, c.frames, st.uptime_s) : null;
      kv(n._kv, [
        ['fps', f === null ? '' : f.toFixed(1)],
        ['bitrate', fmtKbps(video.bitrate_kbps)],
        ['frames', num(c.frames) === null ? '' : String(c.frames)],
        ['lag', num(c.lag_frames) ? c.lag_frames + ' frames' : ''],
        // times faster than real time (last second), and its lowest of the last 10 s
        ['margin', num(c.margin) ? fixed(c.margin, 1) + '× (min ' + fixed(c.margin_min, 1) + '×)' : ''],
        ['restarts', num(c.restarts) === null ? '' : String(c.restarts)],
        ['last error', str(c.last_error)],
      ]);
    });
    const det = [];
    if (num(video.latency_p50_ms)) det.push('latency p50 ' + fixed(video.latency_p50_ms, 0) + ' ms, p99 ' + fixed(video.latency_p99_ms, 0) + ' ms');
    if (sw && num(sw.switches) !== null) det.push(sw.switches + (sw.switches === 1 ? ' switch' : ' switches'));
    if (sw && num(sw.gap_frames)) det.push(sw.gap_frames + ' gap frames');
    $('video-detail').textContent = det.join(' · ');
  }

  // level maps dBFS to a bar width: -60 dBFS and below is empty, 0 full.
  const level = (db) => Math.max(0, Math.min(100, ((num(db) === null ? -120 : db) + 60) / 60 * 100));
  const levelClass = (db) => (db >= -6 ? 'hot' : db >= -18 ? 'warm' : 'cool');

  function renderAudio(st) {
    const a = obj(st.audio) || {};
    const chains = arr(a.chains);
    show('audio', chains.length > 0);
    if (!chains.length) return;
    $('audio-summary').textContent = (a.active ? 'on ' + a.active : 'no audio yet') + (a.reason ? ' (' + a.reason + ')' : '');
    for (const b of document.querySelectorAll('[data-mode]')) {
      const on = b.dataset.mode === a.mode;
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      b.classList.toggle('on', on);
    }
    keyed($('chain-list'), chains, (c) => c.name, () => {
      const n = el('div', 'chain');
      const head = el('div', 'enc-head');
      n._name = el('span', 'enc-name');
      n._state = el('span', 'badge');
      n._active = el('span', 'badge');
      head.append(n._name, n._state, n._active);
      const meter = (label) => {
        const row = el('div', 'meter-row');
        const track = el('div', 'meter');
        const bar = el('div', 'bar');
        track.append(bar);
        const val = el('span', 'meter-val');
        row.append(el('span', 'meter-label', label), track, val);
        return { row, bar, val };
      };
      n._peak = meter('peak');
      n._rms = meter('rms');
      n._kv = el('p', 'muted small');
      n.append(head, n._peak.row, n._rms.row, n._kv);
      return n;
    }, (n, c) => {
      n._name.textContent = str(c.name);
      badge(n._state, words(c.state), badgeClass(c.state));
      badge(n._active, a.active === c.name ? 'ON AIR' : '', 'good');
      for (const [m, db] of [[n._peak, c.peak_dbfs], [n._rms, c.rms_dbfs]]) {
        m.bar.style.width = level(db) + '%';
        m.bar.className = 'bar ' + levelClass(db);
        m.val.textContent = num(db) === null || db <= -120 ? '−∞' : db.toFixed(1);
      }
      const extra = [];
      if (num(c.delay_ms) !== null) extra.push('delay ' + fixed(c.delay_ms, 0) + ' ms');
      if (c.rate_measured) extra.push(fixed(c.rate_ppm, 0) + ' ppm');
      if (num(c.late)) extra.push(c.late + ' late');
      if (num(c.dropped)) extra.push(c.dropped + ' dropped');
      n._kv.textContent = 'dBFS · ' + extra.join(' · ');
    });
  }

  function renderOutput(st) {
    const o = obj(st.output);
    show('output', !!(o && o.state));
    if (!o || !o.state) return;
    badge($('output-state'), words(o.state), badgeClass(o.state));
    const srt = obj(o.srt) || {};
    kv($('output-kv'), [
      ['target', str(o.target)],
      ['send rate', fmtKbps(o.send_rate_kbps)],
      ['RTT', num(srt.rtt_ms) !== null ? fixed(srt.rtt_ms, 0) + ' ms' : ''],
      ['retransmitted', num(srt.loss_rate_pct) !== null ? fixed(srt.loss_rate_pct, 2) + ' %' : ''],
      ['sent', fmtBytes(o.bytes_sent)],
      ['dropped', num(o.bytes_dropped) ? fmtBytes(o.bytes_dropped) : ''],
      ['last error', str(o.last_error)],
    ]);
  }

  function renderUplinks(st) {
    const b = obj(st.bond);
    show('uplinks', !!b);
    if (!b) return;
    $('bond-summary').textContent = words(b.group) + (b.receiver ? ' → ' + b.receiver : '');
    keyed($('uplink-list'), arr(b.uplinks), (u) => u.name, () => {
      const n = el('div', 'uplink');
      const head = el('div', 'enc-head');
      n._name = el('span', 'enc-name');
      n._state = el('span', 'badge');
      n._carry = el('span', 'badge');
      head.append(n._name, n._state, n._carry);
      n._kv = el('dl', 'kv');
      n._btn = el('button', 'btn small');
      n._btn.type = 'button';
      n._btn.addEventListener('click', () => {
        const name = n.dataset.key;
        const path = '/api/uplinks/' + encodeURIComponent(name);
        if (n._enabled) {
          ask('Disable uplink ' + name + '? Its share of the stream moves to the other links.', 'Disable ' + name,
            () => act('Disable ' + name, path, { enabled: false }, () => name + ' disabled.'));
        } else {
          act('Enable ' + name, path, { enabled: true }, () => name + ' enabled.');
        }
      });
      n.append(head, n._kv, n._btn);
      return n;
    }, (n, u) => {
      n._enabled = !!u.enabled;
      n._name.textContent = str(u.name) + (u.interface && u.interface !== u.name ? ' (' + u.interface + ')' : '');
      badge(n._state, words(u.state), badgeClass(u.state));
      badge(n._carry, u.carrying ? 'carrying' : '', 'good');
      const used = fmtBytes(u.bytes_sent) + (num(u.cap_bytes) ? ' of ' + fmtBytes(u.cap_bytes) : '');
      const live = u.state === 'up' || u.carrying; // a link that is not up has no RTT or loss to show
      kv(n._kv, [
        ['RTT', live && num(u.rtt_ms) !== null ? fixed(u.rtt_ms, 0) + ' ms' : ''],
        ['loss', live && num(u.loss_pct) !== null ? fixed(u.loss_pct, 1) + ' %' : ''],
        ['throughput', fmtKbps(u.throughput_kbps)],
        ['data used', used],
        ['policy', words(u.policy)],
        ['error', str(u.last_error)],
      ]);
      n._btn.textContent = u.enabled ? 'Disable' : 'Enable';
      n._btn.className = 'btn small ' + (u.enabled ? 'ghost' : 'primary');
    });
  }

  function renderPower(st) {
    const p = obj(st.power);
    show('power', !!p);
    if (!p) return;
    badge($('power-state'), words(p.state), badgeClass(p.state));
    const ups = obj(p.ups);
    const pairs = [['source', words(p.source)], ['reason', str(p.reason)]];
    if (ups) {
      pairs.push(['UPS', str(ups.name) + (ups.reachable === false ? ' (unreachable)' : '')]);
      if (num(ups.charge_pct) !== null && ups.charge_pct >= 0) pairs.push(['battery', fixed(ups.charge_pct, 0) + ' %']);
      if (num(ups.runtime_s) !== null && ups.runtime_s >= 0) pairs.push(['runtime', fmtDuration(ups.runtime_s)]);
      pairs.push(['UPS status', arr(ups.status).map(str).join(' ')], ['UPS error', str(ups.last_error)]);
    }
    for (const s of arr(p.signals)) pairs.push([words(s.name), s.active ? 'active' : 'inactive']);
    if (p.shedding) pairs.push(['load', 'shedding (lower bitrate)']);
    if (p.deadline) pairs.push(['grace ends', fmtTime(p.deadline)]);
    kv($('power-kv'), pairs);
  }

  function renderThermal(st) {
    const t = obj(st.thermal);
    show('thermal', !!t);
    if (!t) return;
    badge($('thermal-state'), (fixed(t.max_c, 1) || '?') + ' °C' + (t.hot ? ' HOT' : ''), t.hot ? 'bad' : 'good');
    const pairs = [['warn at', num(t.warn_c) !== null ? fixed(t.warn_c, 0) + ' °C' : '']];
    for (const z of arr(t.zones)) pairs.push([str(z.type || z.name), fixed(z.temp_c, 1) + ' °C']);
    if (t.shedding) pairs.push(['load', 'shedding (lower bitrate)']);
    kv($('thermal-kv'), pairs);
  }

  function renderPanel(st) {
    const p = obj(st.panel);
    show('panel', !!p);
    if (!p) return;
    $('panel-kind').textContent = p.virtual ? 'virtual' : 'GPIO';
    keyed($('led-list'), arr(p.leds), (l) => l.name, () => {
      const n = el('li', 'led');
      n._dot = el('span', 'dot');
      n._name = el('span', 'led-name');
      n._meaning = el('span', 'muted small');
      n.append(n._dot, n._name, n._meaning);
      return n;
    }, (n, l) => {
      n._dot.className = 'dot ' + str(l.pattern).replace(/[^a-z_]/g, '');
      n._name.textContent = str(l.name);
      n._meaning.textContent = str(l.meaning);
    });
    keyed($('panel-buttons'), arr(p.buttons).map(str), (b) => b, (b) => {
      const n = el('div', 'pbtn');
      const short = el('button', 'btn', words(b));
      short.type = 'button';
      short.addEventListener('click', () => press(b, false));
      const long = el('button', 'btn small ghost', 'hold');
      long.type = 'button';
      long.title = 'long press';
      long.addEventListener('click', () => ask('Long-press ' + words(b) + ' on the panel? A long press may stop the stream.',
        'Long-press ' + words(b), () => press(b, true)));
      n.append(short, long);
      return n;
    }, () => {});
    $('panel-last').textContent = p.last_press ? 'last press: ' + p.last_press + (p.last_press_at ? ' at ' + fmtTime(p.last_press_at) : '') : '';
  }

  function press(button, long) {
    act('Panel ' + button, '/api/panel/press', { button, long }, (r) => 'Panel: ' + str(r && r.action));
  }

  function renderRecording(st) {
    const r = obj(st.recording);
    show('recording', !!r);
    if (!r) return;
    // Rendered generically: the recording's status type is not settled.
    kv($('recording-kv'), Object.keys(r).map((k) => {
      const v = r[k];
      return [words(k), v !== null && typeof v === 'object' ? JSON.stringify(v) : str(v)];
    }));
  }

  function render(st) {
    const parts = [renderTally, renderControls, renderEncoders, renderAudio, renderOutput, renderUplinks,
      renderPower, renderThermal, renderPanel, renderRecording];
    for (const f of parts) {
      try {
        f(st);
      } catch (e) {
        console.error('render', f.name, e); // one odd part must not blank the others
      }
    }
  }

  // ---- events and logs --------------------------------------------------

  let eventsDirty = false;
  function renderEvents() {
    eventsDirty = false;
    const evs = [...state.events.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_EVENTS);
    $('events-empty').hidden = evs.length > 0;
    keyed($('event-list'), evs, (e) => e.seq, (e) => {
      const n = el('li', 'ev ev-' + str(e.kind).replace(/[^a-z_]/g, ''));
      const head = el('div', 'ev-head');
      head.append(el('time', 'ev-time', fmtTime(e.time)), el('span', 'ev-kind', words(e.kind)));
      if (e.subject) head.append(el('span', 'ev-subject', e.subject));
      if (e.frame !== undefined && e.frame !== null) head.append(el('span', 'ev-frame', 'frame ' + e.frame));
      n.append(head, el('div', 'ev-reason', e.reason));
      return n;
    }, () => {});
  }

  function onEvent(e) {
    if (!obj(e) || typeof e.seq !== 'number') return;
    state.events.set(e.seq, e);
    if (state.events.size > MAX_EVENTS * 2) {
      const keep = [...state.events.keys()].sort((a, b) => b - a).slice(0, MAX_EVENTS);
      state.events = new Map(keep.map((k) => [k, state.events.get(k)]));
    }
    if (!eventsDirty) {
      eventsDirty = true;
      requestAnimationFrame(renderEvents);
    }
  }

  function onLog(l) {
    if (!obj(l) || typeof l.seq !== 'number' || l.seq <= state.lastLogSeq) return;
    state.lastLogSeq = l.seq;
    show('logs', true);
    const list = $('log-list');
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    const n = el('li', 'log lvl-' + str(l.level).replace(/[^a-z]/g, ''));
    n.append(el('time', '', fmtTime(l.time)), el('span', 'log-lvl', str(l.level)),
      el('span', 'log-logger', str(l.logger)), el('span', 'log-msg', str(l.msg)));
    if (l.fields && l.fields !== '{}') n.append(el('span', 'log-fields', str(l.fields)));
    list.append(n);
    while (list.children.length > MAX_LOGS) list.firstChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function onStatus(st) {
    if (!obj(st)) return;
    // A smaller uptime: onaird started again; its events and logs are new.
    if (num(st.uptime_s) !== null && st.uptime_s + 1 < state.uptime) {
      state.events.clear();
      state.lastLogSeq = 0;
      state.rate.clear();
      $('log-list').replaceChildren();
      renderEvents();
    }
    state.uptime = num(st.uptime_s) === null ? -1 : st.uptime_s;
    state.status = st;
    render(st);
  }

  // ---- the stream -------------------------------------------------------

  function setLink(up) {
    document.body.classList.toggle('stale', !up);
    $('link').textContent = up ? '● live' : '○ reconnecting';
    $('link').className = 'link ' + (up ? 'up' : 'down');
  }

  const parse = (f) => (e) => {
    let v;
    try { v = JSON.parse(e.data); } catch (_) { return; }
    f(v);
  };

  let es = null;

  // closeStream ends the stream before the page goes (log out, another
  // page): a page kept in the back/forward cache would keep it open.
  function closeStream() {
    if (es) es.close();
    es = null;
  }
  window.addEventListener('pagehide', closeStream);
  window.addEventListener('pageshow', (ev) => { if (ev.persisted && !es) connect(); });

  function connect() {
    closeStream();
    const me = new EventSource('/api/stream');
    es = me;
    me.addEventListener('status', parse(onStatus));
    me.addEventListener('event', parse(onEvent));
    me.addEventListener('log', parse(onLog));
    me.addEventListener('open', () => setLink(true));
    me.addEventListener('error', async () => {
      if (es !== me) return;
      setLink(false);
      if (me.readyState !== EventSource.CLOSED) return; // the browser reconnects itself
      // Refused (401, 503): ask the session, then try again.
      closeStream();
      try {
        const s = await onair.session();
        if (!s.logged_in) {
          location.href = '/login';
          return;
        }
      } catch (_) { /* the box is unreachable: retry below */ }
      setTimeout(() => { if (!es) connect(); }, 3000);
    });
  }

  async function start() {
    try {
      const s = await onair.session();
      if (!s.logged_in) {
        location.replace('/login');
        return;
      }
    } catch (e) {
      onair.message('Cannot reach the box: ' + e.message, 'err');
    }
    connect();
  }

  start();
})();
