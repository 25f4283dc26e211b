/* app.js — shared by every page: API calls (same-origin cookie; 401 → /login?next=…), the
 * error banner, the header (#user-name, #logout, #lang-switch, #last-updated), the refresh
 * loop (15 s, ?refresh=N overrides), DOM and formatting helpers. */
(function () {
  'use strict';
  const CM = (window.CM = window.CM || {});
  const params = new URLSearchParams(window.location.search);
  CM.params = params;

  /* ------------------------------------------------------------------ DOM */
  /* h('a', {class: 'x', href: '/', 'data-site': s, on: {click: fn}}, child, [children], 'text') */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'on') for (const ev in v) e.addEventListener(ev, v[ev]);
      else if (k === 'hidden') e.hidden = !!v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    const add = (c) => {
      if (c === undefined || c === null || c === false) return;
      if (Array.isArray(c)) c.forEach(add);
      else e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    };
    children.forEach(add);
    return e;
  }
  CM.h = h;
  CM.$ = (sel, root) => (root || document).querySelector(sel);
  CM.$$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  CM.empty = (e) => {
    while (e && e.firstChild) e.removeChild(e.firstChild);
    return e;
  };
  /* A same-origin link with query parameters (empty ones left out). */
  CM.link = (path, q) => {
    const u = new URLSearchParams();
    for (const k in q || {}) if (q[k] !== undefined && q[k] !== null && q[k] !== '') u.set(k, q[k]);
    const s = u.toString();
    return path + (s ? '?' + s : '');
  };

  /* ------------------------------------------------------------------ formatting */
  const pad2 = (n) => (n < 10 ? '0' : '') + n;
  CM.fmt = {
    /* 2026-11-25 14:03 (local time) */
    dateTime(t) {
      if (!t) return '—';
      const d = new Date(t);
      return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    },
    /* 14:03:05 */
    time(t) {
      const d = new Date(t);
      return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
    },
    /* "5 min ago" */
    ago(t, now) {
      if (!t) return '—';
      const s = Math.max(0, Math.round(((now || Date.now()) - t) / 1000));
      if (s < 60) return CM.t('common.ago.s', { n: s });
      if (s < 3600) return CM.t('common.ago.m', { n: Math.floor(s / 60) });
      if (s < 86400 * 2) return CM.t('common.ago.h', { n: Math.floor(s / 3600) });
      return CM.t('common.ago.d', { n: Math.floor(s / 86400) });
    },
    /* "2 h 5 min" */
    duration(ms) {
      const m = Math.max(0, Math.floor(ms / 60000));
      if (m < 60) return CM.t('common.dur.m', { n: m });
      if (m < 1440) return CM.t('common.dur.h', { h: Math.floor(m / 60), m: m % 60 });
      return CM.t('common.dur.d', { d: Math.floor(m / 1440), h: Math.floor((m % 1440) / 60) });
    },
    /* a share 0..1 as "97.3 %", null as "—" */
    pct(share) {
      return Number.isFinite(share) ? (share * 100).toFixed(1) + ' %' : '—';
    },
    int(n) {
      return Number.isFinite(n) ? n.toLocaleString(CM.i18n.locale()) : '—';
    },
  };

  /* The label of prefix + value, or the value itself when there is no such label. */
  CM.tv = (prefix, value) => (value !== undefined && value !== null && CM.i18n.has(prefix + value) ? CM.t(prefix + value) : value === undefined || value === null ? '' : String(value));

  /* ------------------------------------------------------------------ badges */
  CM.sevBadge = (sev) => h('span', { class: 'badge sev-' + (sev || 'ok') }, CM.t('sev.' + (sev || 'ok')));
  CM.stateBadge = (state) => h('span', { class: 'state st-' + state }, CM.i18n.has('state.' + state) ? CM.t('state.' + state) : state);
  CM.SEV_RANK = { critical: 3, warning: 2, info: 1, ok: 0 };
  /* Alert counters {critical, warning, info} as three small pills (zeros dimmed). */
  CM.alertPills = (a) => {
    const c = a || {};
    return h('span', { class: 'pills' },
      ['critical', 'warning', 'info'].map((s) => h('span', { class: 'pill sev-' + s + (c[s] ? '' : ' zero'), title: CM.t('sev.' + s) }, String(c[s] || 0))));
  };
  /* Breadcrumbs into el: [{label, href}], the last one is the current page. */
  CM.crumbs = (el, items) => {
    if (!el) return;
    CM.empty(el);
    items.forEach((it, i) => {
      if (i) el.appendChild(h('span', { class: 'sep' }, '›'));
      const last = i === items.length - 1;
      el.appendChild(last || !it.href ? h('span', { class: last ? 'current' : '' }, it.label) : h('a', { href: it.href, on: it.on ? { click: it.on } : null }, it.label));
    });
  };

  /* ------------------------------------------------------------------ alert tables */
  /* A measured value or threshold without a known unit: at most 4 significant digits. */
  CM.fmt.value = (v) => {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '';
    const n = Number(v);
    const a = Math.abs(n);
    return a >= 1000 ? Math.round(n).toLocaleString(CM.i18n.locale()) : String(Number(n.toPrecision(4)));
  };
  const alertSince = (a) => a.firing_ms || a.started_ms;
  const ALERT_COLS = {
    severity: ['al.col.severity', (a) => h('td', null, CM.sevBadge(a.severity))],
    state: ['al.col.state', (a) => h('td', null, CM.stateBadge(a.state), a.silenced ? h('span', { class: 'cell-code' }, CM.t('state.silenced')) : null)],
    site: ['al.col.site', (a) => h('td', null, a.site ? h('a', { href: CM.link('/cinema', { site: a.site }) }, a.site) : '')],
    screen: ['al.col.screen', (a) => h('td', null, a.screen ? h('a', { href: CM.link('/hall', { site: a.site, screen: a.screen }) }, a.screen) : '—')],
    device: ['al.col.device', (a) => h('td', { class: 'mono' }, a.device || '')],
    rule: ['al.col.rule', (a) => h('td', { class: 'mono' }, a.rule || '')],
    text: ['al.col.text', (a) => h('td', { class: 'wrap' }, a.text || '')],
    value: ['al.col.value', (a) => h('td', { class: 'num' }, CM.fmt.value(a.value), a.threshold !== null && a.threshold !== undefined ? h('span', { class: 'cell-code' }, '/ ' + CM.fmt.value(a.threshold)) : null)],
    since: ['al.col.since', (a) => h('td', { title: CM.fmt.ago(alertSince(a)) }, CM.fmt.dateTime(alertSince(a)))],
    duration: ['al.col.duration', (a) => h('td', { class: 'num' }, alertSince(a) ? CM.fmt.duration((a.resolved_ms || Date.now()) - alertSince(a)) : '')],
    /* hall link with the device under it */
    where: ['al.col.screen', (a) => h('td', null, a.screen ? h('a', { href: CM.link('/hall', { site: a.site, screen: a.screen }) }, a.screen) : '—', a.device ? h('div', { class: 'cell-sub mono' }, a.device) : null)],
    /* start time with the duration under it */
    when: ['al.col.since', (a) => h('td', { title: CM.fmt.ago(alertSince(a)) }, CM.fmt.dateTime(alertSince(a)), alertSince(a) ? h('div', { class: 'cell-sub' }, CM.fmt.duration((a.resolved_ms || Date.now()) - alertSince(a))) : null)],
    ack: ['al.col.ack', (a) => h('td', { class: 'ack' }, a.ack ? [h('span', { class: 'by' }, a.ack.by || ''), a.ack.comment ? ' · ' + a.ack.comment : '', h('div', { class: 'cell-code' }, CM.fmt.dateTime(a.ack.ts_ms))] : '')],
  };
  /* Fill table (thead + tbody) with alerts: one tr[data-alert-id][data-state] per alert, the
   * given columns; opts {extra(alert, tr) appending cells under a last header extraHead,
   * empty: label key when there is no alert}. */
  CM.alertTable = (table, alerts, cols, opts) => {
    const { extra, extraHead, empty } = opts || {};
    const head = CM.empty(table.tHead || table.createTHead());
    head.appendChild(h('tr', null, cols.map((c) => h('th', { class: c === 'value' || c === 'duration' ? 'num' : '' }, CM.t(ALERT_COLS[c][0]))), extraHead !== undefined ? h('th', null, extraHead) : null));
    const body = CM.empty(table.tBodies[0] || table.createTBody());
    if (!alerts.length) {
      body.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: cols.length + (extraHead !== undefined ? 1 : 0) }, CM.t(empty || 'al.empty'))));
      return;
    }
    for (const a of alerts) {
      const tr = h('tr', { 'data-alert-id': a.id, 'data-state': a.state, 'data-severity': a.severity, class: a.ack ? 'acked' : '' }, cols.map((c) => ALERT_COLS[c][1](a)));
      if (extra) extra(a, tr);
      body.appendChild(tr);
    }
  };

  /* ------------------------------------------------------------------ API */
  class ApiError extends Error {
    constructor(status, message, at) {
      super(message);
      this.status = status;
      this.at = at || '';
    }
  }
  CM.ApiError = ApiError;
  let leaving = false;

  /* Where a 401 sends the user: the login page, coming back here afterwards. */
  CM.loginUrl = () => '/login?next=' + encodeURIComponent(window.location.pathname + window.location.search);

  /* fetch JSON: opts {method, body (sent as JSON), noRedirect}; resolves to the "data" member
   * (or the whole document when it has none); rejects with an ApiError. */
  CM.api = async (path, opts) => {
    const o = opts || {};
    const init = {
      method: o.method || (o.body !== undefined ? 'POST' : 'GET'),
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    };
    if (o.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(o.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, CM.t('err.network'));
    }
    let doc = null;
    try {
      doc = await res.json();
    } catch (e) {
      doc = null;
    }
    if (res.status === 401 && !o.noRedirect) {
      if (!leaving && document.body.getAttribute('data-page') !== 'login') {
        leaving = true;
        window.location.assign(CM.loginUrl());
      }
      throw new ApiError(401, (doc && doc.error) || 'unauthorized');
    }
    if (!res.ok) {
      let msg = doc && doc.error ? doc.error : CM.t('err.http', { status: res.status });
      if (res.status === 403 && !(doc && doc.error)) msg = CM.t('err.forbidden');
      throw new ApiError(res.status, msg, doc && doc.at);
    }
    return doc && typeof doc === 'object' && !Array.isArray(doc) && 'data' in doc ? doc.data : doc;
  };

  /* ------------------------------------------------------------------ banner */
  CM.banner = (msg, kind) => {
    const b = document.getElementById('error-banner');
    if (!b) return;
    if (!msg) {
      b.hidden = true;
      return;
    }
    CM.empty(b);
    b.className = 'banner ' + (kind || 'error');
    b.appendChild(h('span', { class: 'banner-text' }, msg));
    b.appendChild(h('button', { type: 'button', class: 'banner-close', title: CM.t('common.close'), on: { click: () => (b.hidden = true) } }, '×'));
    b.hidden = false;
  };
  /* A transient notice (success of an action). */
  CM.toast = (msg) => {
    let t = document.getElementById('toast');
    if (!t) {
      t = h('div', { id: 'toast', role: 'status' });
      document.body.appendChild(t);
    }
    t.textContent = msg;
    t.classList.add('show');
    clearTimeout(CM.toast.timer);
    CM.toast.timer = setTimeout(() => t.classList.remove('show'), 3500);
  };

  /* ------------------------------------------------------------------ header */
  CM.me = null;
  const meListeners = [];
  CM.onMe = (fn) => {
    meListeners.push(fn);
    if (CM.me) fn(CM.me);
  };

  function scopeText(me) {
    const sc = (me && me.scope) || {};
    const k = sc.kind || 'all';
    return CM.t('common.scope.' + (['province', 'chain', 'site'].includes(k) ? k : 'all'), { v: sc.value || '' });
  }

  function renderMe() {
    const un = document.getElementById('user-name');
    const us = document.getElementById('user-scope');
    if (un) un.textContent = CM.me ? CM.me.user : '';
    if (us) us.textContent = CM.me ? (CM.i18n.has('role.' + CM.me.role) ? CM.t('role.' + CM.me.role) : CM.me.role || '') + ' · ' + scopeText(CM.me) : '';
  }

  function initHeader() {
    const sel = document.getElementById('lang-switch');
    if (sel) {
      sel.value = CM.i18n.lang;
      sel.addEventListener('change', () => CM.i18n.set(sel.value));
    }
    const out = document.getElementById('logout');
    if (out)
      out.addEventListener('click', async () => {
        try {
          await CM.api('/api/v1/logout', { method: 'POST', body: {}, noRedirect: true });
        } catch (e) {
          /* gone already or unreachable: the login page is still the right place */
        }
        window.location.assign('/login');
      });
    const page = document.body.getAttribute('data-page');
    CM.$$('.topnav a[data-nav]').forEach((a) => a.classList.toggle('active', a.getAttribute('data-nav') === page));
    CM.i18n.onChange(() => {
      if (sel) sel.value = CM.i18n.lang;
      renderMe();
      stamp(false);
    });
  }

  let meDone;
  /* Resolves (to CM.me, possibly null) once /api/v1/me answered. */
  CM.mePromise = new Promise((r) => (meDone = r));
  async function loadMe() {
    try {
      CM.me = await CM.api('/api/v1/me', { noRedirect: true });
    } catch (e) {
      CM.me = null; /* no session: anonymous reads may still be allowed; data calls redirect */
    }
    renderMe();
    meDone(CM.me);
    if (CM.me) meListeners.forEach((fn) => fn(CM.me));
  }

  /* ------------------------------------------------------------------ refresh loop */
  let lastOk = 0;
  function stamp(ok) {
    const e = document.getElementById('last-updated');
    if (!e) return;
    if (ok) {
      lastOk = Date.now();
      e.setAttribute('data-ts', String(lastOk));
    }
    e.textContent = lastOk ? CM.fmt.time(lastOk) : CM.t('hdr.never');
    e.classList.toggle('stale', ok === null);
    e.title = ok === null ? CM.t('hdr.stale') : '';
  }

  /* Seconds between refreshes: ?refresh=N (1..3600) or 15. */
  CM.refreshSeconds = () => {
    const n = Number(params.get('refresh'));
    return Number.isFinite(n) && n >= 1 && n <= 3600 ? n : 15;
  };

  /* Run a page: page.load() fetches (and keeps) its data, page.render() draws it; load runs
   * now and every refresh interval; render runs after each load, on a language switch and on
   * resize. CM.reload() loads again at once (after a filter change or an action). */
  CM.start = (page) => {
    initHeader();
    CM.i18n.apply(document);
    loadMe();
    let timer = 0;
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      clearTimeout(timer);
      try {
        await page.load();
        page.render();
        stamp(true);
        CM.banner(null);
      } catch (e) {
        if (e && e.status !== 401) {
          CM.banner(e.message || String(e));
          stamp(null);
        }
        if (!(e instanceof ApiError)) console.error(e);
      }
      running = false;
      if (again) {
        again = false;
        run();
        return;
      }
      timer = setTimeout(run, CM.refreshSeconds() * 1000);
    };
    CM.reload = run;
    CM.rerender = () => {
      try {
        page.render();
      } catch (e) {
        console.error(e);
      }
    };
    CM.i18n.onChange(CM.rerender);
    let rt = 0;
    window.addEventListener('resize', () => {
      clearTimeout(rt);
      rt = setTimeout(CM.rerender, 150);
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && Date.now() - lastOk > CM.refreshSeconds() * 1000) run();
    });
    run();
  };
})();
