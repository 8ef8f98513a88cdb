// common.js: what the page and the login page share: the session, the
// CSRF token, JSON POSTs and safe DOM building (textContent only: every
// string from the box may come from a peer).
'use strict';

const onair = (() => {
  let csrf = '';

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // session asks GET /api/session and keeps its CSRF token.
  async function session() {
    const r = await fetch('/api/session', { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new ApiError('session: ' + r.status + ' ' + r.statusText, r.status);
    const s = await r.json();
    csrf = s.csrf_token || '';
    return s;
  }

  // post sends body as JSON with the CSRF token. A 401 outside login and
  // setup sends the page to /login; a refused token is fetched again once
  // (another tab logged in or out). Non-2xx answers throw ApiError with
  // the API's {"error": …} text.
  async function post(path, body, retried) {
    if (!csrf) await session();
    const r = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body === undefined ? {} : body),
    });
    let j = null;
    try { j = await r.json(); } catch (_) { j = null; }
    const authRoute = path === '/api/login' || path === '/api/setup';
    if (r.status === 401 && !authRoute) {
      location.href = '/login';
      throw new ApiError('not logged in', 401);
    }
    if (r.status === 403 && !retried && j && typeof j.error === 'string' && j.error.includes('X-CSRF-Token')) {
      await session();
      return post(path, body, true);
    }
    if (!r.ok) {
      const msg = j && typeof j.error === 'string' ? j.error : r.status + ' ' + r.statusText;
      throw new ApiError(msg, r.status);
    }
    return j;
  }

  // el makes an element with a class and a text (as text, never HTML).
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // message shows text in the page's message line (#msg); kind: ok, err.
  let msgTimer = 0;
  function message(text, kind) {
    const m = document.getElementById('msg');
    if (!m) return;
    m.textContent = text;
    m.className = 'msg ' + (kind || 'ok');
    m.hidden = false;
    clearTimeout(msgTimer);
    if (kind !== 'err') msgTimer = setTimeout(() => { m.hidden = true; }, 6000);
  }

  return { ApiError, session, post, el, message };
})();
