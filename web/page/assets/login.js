// login.js: the setup or login page, as GET /api/session says.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  async function start() {
    let s;
    try {
      s = await onair.session();
    } catch (e) {
      onair.message('Cannot reach the box: ' + e.message, 'err');
      setTimeout(start, 3000);
      return;
    }
    $('wait').hidden = true;
    if (s.logged_in) {
      location.replace('/');
      return;
    }
    $('setup').hidden = !s.setup_needed;
    $('locked').hidden = !s.locked;
    $('login').hidden = s.setup_needed || s.locked;
    const first = s.setup_needed ? $('setup-token') : $('login-password');
    if (!s.locked) first.focus();
  }

  async function submit(form, button, path, body) {
    button.disabled = true;
    try {
      await onair.post(path, body);
      location.replace('/');
    } catch (e) {
      onair.message(e.message, 'err');
      button.disabled = false;
    }
  }

  $('setup').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const pw = $('setup-password').value;
    if (pw !== $('setup-password2').value) {
      onair.message('The two passwords differ.', 'err');
      return;
    }
    submit($('setup'), $('setup-submit'), '/api/setup', { token: $('setup-token').value.trim(), password: pw });
  });

  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit($('login'), $('login-submit'), '/api/login', { password: $('login-password').value });
  });

  start();
})();
