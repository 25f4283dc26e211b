/* alerts.js — the alert list with filters (state, severity, cinema; kept in the URL),
 * acknowledge with a comment (#ack-dialog → POST /api/v1/alerts/{id}/ack), the silence form
 * (POST /api/v1/silences) and the active silences (GET /api/v1/silences). */
(function () {
  'use strict';
  const CM = window.CM;
  const h = CM.h;
  const fState = document.getElementById('filter-state');
  const fSev = document.getElementById('filter-severity');
  const fSite = document.getElementById('filter-site');
  const dialog = document.getElementById('ack-dialog');
  const ackComment = document.getElementById('ack-comment');
  const ackError = document.getElementById('ack-error');
  const ackSubmit = document.getElementById('ack-submit');
  const sForm = document.getElementById('silence-form');
  const sResult = document.getElementById('silence-result');
  const sSubmit = document.getElementById('silence-submit');

  let alerts = [];
  let silences = [];
  let acking = null; /* the alert in the dialog */

  const p = CM.params;
  const ps = p.get('state');
  fState.value = ps === 'any' ? '' : ['active', 'firing', 'pending', 'resolved'].includes(ps) ? ps : 'active';
  fSev.value = ['warning', 'critical'].includes(p.get('severity')) ? p.get('severity') : '';
  fSite.value = p.get('site') || '';

  const readOnly = () => !!(CM.me && CM.me.role === 'viewer');

  async function load() {
    const q = { state: fState.value, severity: fSev.value, site: fSite.value.trim(), limit: 1000 };
    const me = await CM.mePromise;
    /* silences: only for accounts that may add them (viewers and anonymous readers skip) */
    const [a, s] = await Promise.all([
      CM.api(CM.link('/api/v1/alerts', q)),
      me && me.role !== 'viewer'
        ? CM.api(CM.link('/api/v1/silences', { site: q.site })).catch((e) => {
          if (e.status === 401) throw e;
          return null;
        })
        : null,
    ]);
    alerts = Array.isArray(a) ? a : [];
    if (Array.isArray(s)) silences = s;
  }

  function actions(a, tr) {
    const td = h('td', { class: 'actions' });
    if (!a.ack && a.state !== 'resolved')
      td.appendChild(h('button', { type: 'button', class: 'btn small ack-btn', disabled: readOnly(), 'data-alert-id': a.id, on: { click: () => openAck(a) } }, CM.t('al.ack')));
    if (a.state !== 'resolved')
      td.appendChild(h('button', { type: 'button', class: 'btn small silence-btn', disabled: readOnly(), on: { click: () => prefillSilence(a) } }, CM.t('al.silence')));
    tr.appendChild(td);
  }

  function renderAlerts() {
    const rank = (a) => (a.state === 'resolved' ? 0 : 10) + CM.SEV_RANK[a.severity];
    const rows = alerts.slice().sort((a, b) => rank(b) - rank(a) || (b.firing_ms || b.started_ms || 0) - (a.firing_ms || a.started_ms || 0));
    CM.alertTable(document.getElementById('alerts-table'), rows, ['severity', 'state', 'site', 'where', 'rule', 'text', 'value', 'when', 'ack'], { extra: actions, extraHead: '' });
    document.getElementById('alerts-count').textContent = CM.t('al.count', { n: rows.length });
    const dl = CM.empty(document.getElementById('site-list'));
    Array.from(new Set(alerts.map((a) => a.site).filter(Boolean))).sort().forEach((s) => dl.appendChild(h('option', { value: s })));
  }

  function renderSilences() {
    const table = document.getElementById('silences-table');
    const head = CM.empty(table.tHead);
    head.appendChild(h('tr', null, ['al.sil.site', 'al.sil.screen', 'al.sil.device', 'al.sil.rule', 'al.sil.from', 'al.sil.until', 'al.sil.by', 'al.sil.comment'].map((k) => h('th', null, CM.t(k)))));
    const body = CM.empty(table.tBodies[0]);
    const now = Date.now();
    const act = silences.filter((s) => !s.until_ms || s.until_ms > now);
    if (!act.length) body.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: 8 }, CM.t('al.sil.none'))));
    for (const s of act)
      body.appendChild(
        h('tr', { 'data-silence-id': s.id },
          h('td', null, s.site || ''), h('td', null, s.screen || '*'), h('td', { class: 'mono' }, s.device || '*'), h('td', { class: 'mono' }, s.rule || '*'),
          h('td', null, CM.fmt.dateTime(s.from_ms)), h('td', null, CM.fmt.dateTime(s.until_ms)), h('td', null, s.by || ''), h('td', { class: 'wrap' }, s.comment || '')),
      );
  }

  function render() {
    document.getElementById('readonly-note').hidden = !readOnly();
    sSubmit.disabled = readOnly();
    renderAlerts();
    renderSilences();
  }
  CM.onMe(() => render());

  /* ------------------------------------------------------------------ filters */
  function applyFilters() {
    window.history.replaceState(null, '', CM.link('/alerts', {
      state: fState.value === 'active' ? '' : fState.value || 'any',
      severity: fSev.value,
      site: fSite.value.trim(),
      refresh: p.get('refresh'),
    }));
    CM.reload();
  }
  document.getElementById('alert-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    applyFilters();
  });
  fState.addEventListener('change', applyFilters);
  fSev.addEventListener('change', applyFilters);
  fSite.addEventListener('change', applyFilters);

  /* ------------------------------------------------------------------ acknowledge */
  function openAck(a) {
    acking = a;
    const box = CM.empty(document.getElementById('ack-alert'));
    box.append(CM.sevBadge(a.severity), ' ', h('b', null, a.site + (a.screen ? ' / ' + a.screen : '')), ' · ', h('span', { class: 'mono' }, a.rule || ''), h('div', null, a.text || ''));
    ackComment.value = '';
    ackError.hidden = true;
    ackSubmit.disabled = false;
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    ackComment.focus();
  }
  function closeAck() {
    acking = null;
    if (dialog.open) dialog.close();
  }
  document.getElementById('ack-cancel').addEventListener('click', closeAck);
  document.getElementById('ack-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!acking || ackSubmit.disabled) return;
    const a = acking;
    ackSubmit.disabled = true;
    ackError.hidden = true;
    const comment = ackComment.value.trim();
    try {
      const updated = await CM.api('/api/v1/alerts/' + encodeURIComponent(a.id) + '/ack', { method: 'POST', body: comment ? { comment } : {} });
      const i = alerts.findIndex((x) => x.id === a.id);
      if (i >= 0 && updated && updated.id === a.id) alerts[i] = updated;
      else if (i >= 0) alerts[i] = { ...a, ack: { by: (CM.me && CM.me.user) || '', comment, ts_ms: Date.now() } };
      closeAck();
      renderAlerts();
      CM.toast(CM.t('al.ack.done', { id: a.id }));
      CM.reload();
    } catch (err) {
      ackError.textContent = err.message;
      ackError.hidden = false;
      ackSubmit.disabled = false;
    }
  });

  /* ------------------------------------------------------------------ silence */
  const pad2 = (n) => (n < 10 ? '0' : '') + n;
  const toLocalInput = (t) => {
    const d = new Date(t);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + 'T' + pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  };
  const fromLocalInput = (v) => {
    if (!v) return null;
    const t = new Date(v).getTime(); /* "YYYY-MM-DDTHH:MM" is read as local time */
    return Number.isFinite(t) ? t : null;
  };
  function resetTimes() {
    const now = Date.now();
    sForm.elements.from.value = toLocalInput(now);
    sForm.elements.until.value = toLocalInput(now + 2 * 3600e3);
  }
  resetTimes();
  if (fSite.value) sForm.elements.site.value = fSite.value;

  function prefillSilence(a) {
    for (const k of ['site', 'screen', 'device', 'rule']) sForm.elements[k].value = a[k] || '';
    resetTimes();
    sResult.textContent = '';
    sForm.scrollIntoView({ behavior: 'smooth', block: 'center' });
    sForm.elements.comment.focus();
  }

  function result(msg, ok) {
    sResult.textContent = msg;
    sResult.className = ok ? 'form-ok' : 'form-error';
  }

  sForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (sSubmit.disabled) return;
    const el = sForm.elements;
    const body = {};
    for (const k of ['site', 'screen', 'device', 'rule', 'comment']) {
      const v = el[k].value.trim();
      if (v) body[k] = v;
    }
    if (!body.site) return result(CM.t('al.sil.needsite'), false);
    const from = fromLocalInput(el.from.value);
    const until = fromLocalInput(el.until.value);
    if (until === null) return result(CM.t('al.sil.needuntil'), false);
    if (from !== null) body.from = from;
    body.until = until;
    sSubmit.disabled = true;
    try {
      const s = await CM.api('/api/v1/silences', { method: 'POST', body });
      result(CM.t('al.sil.done', { id: s && s.id !== undefined ? s.id : '' }), true);
      if (s && s.id !== undefined) silences = [s].concat(silences.filter((x) => x.id !== s.id));
      el.comment.value = '';
      renderSilences();
      CM.reload();
    } catch (err) {
      result(err.message + (err.at ? ' (' + err.at + ')' : ''), false);
    }
    sSubmit.disabled = readOnly();
  });

  CM.start({ load, render });
})();
