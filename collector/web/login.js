/* login.js — the sign-in page: POST /api/v1/login, then go to ?next= (same-origin paths
 * only) or the overview. */
(function () {
  'use strict';
  const CM = window.CM;
  const form = document.getElementById('login-form');
  const user = document.getElementById('login-user');
  const pass = document.getElementById('login-password');
  const submit = document.getElementById('login-submit');
  const error = document.getElementById('login-error');
  let lastError = null; /* [key, vars] so a language switch re-labels it */

  /* Only a path of this site: "/x…" but never "//host" or "/\host". */
  function nextUrl() {
    const n = CM.params.get('next') || '';
    if (!n.startsWith('/') || n.startsWith('//') || n.startsWith('/\\') || n.startsWith('/login')) return '/';
    return n;
  }

  function showError(key, vars) {
    lastError = key ? [key, vars] : null;
    error.hidden = !key;
    error.textContent = key ? CM.t(key, vars) : '';
  }

  const sel = document.getElementById('lang-switch');
  sel.value = CM.i18n.lang;
  sel.addEventListener('change', () => CM.i18n.set(sel.value));
  CM.i18n.onChange(() => {
    submit.textContent = CM.t(submit.disabled ? 'login.busy' : 'login.submit');
    if (lastError) showError(lastError[0], lastError[1]);
  });
  CM.i18n.apply(document);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    if (!user.value.trim() || !pass.value) {
      showError('login.missing');
      (user.value.trim() ? pass : user).focus();
      return;
    }
    showError(null);
    submit.disabled = true;
    submit.textContent = CM.t('login.busy');
    try {
      await CM.api('/api/v1/login', { method: 'POST', body: { user: user.value.trim(), password: pass.value }, noRedirect: true });
      window.location.assign(nextUrl());
      return;
    } catch (e) {
      if (e.status === 401) showError('login.bad');
      else showError('login.failed', { msg: e.message });
      pass.value = '';
      pass.focus();
    }
    submit.disabled = false;
    submit.textContent = CM.t('login.submit');
  });
})();
