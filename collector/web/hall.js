/* hall.js — one hall: each device's latest values against their target bands, charts of
 * luminance, white x/y, SPL per channel, light-source hours and temperatures over 24 h / 7 d /
 * 90 d / 1 y with the tolerance band, events and alerts on the same time axis, alert history.
 * API: GET /api/v1/hall?site=&screen=, /api/v1/series?…&step=, /api/v1/events?site=&from=&to= */
(function () {
  'use strict';
  const CM = window.CM;
  const h = CM.h;
  const site = CM.params.get('site') || '';
  const screen = CM.params.get('screen') || '';
  const DAY = 86400e3;
  /* Range → span and roll-up step (24 h: minute roll-ups; longer: hourly). */
  const RANGES = {
    '24h': { span: DAY, step: '1m' },
    '7d': { span: 7 * DAY, step: '1h' },
    '90d': { span: 90 * DAY, step: '1h' },
    '1y': { span: 365 * DAY, step: '1h' },
  };
  const DEFAULT_CHARTS = ['screen_luminance_nits', 'white_x', 'white_y', 'spl_dbc', 'light_source_hours', 'temperature_celsius'];
  /* Longer ranges change slowly: their charts reload at most this often. */
  const SLOW_RELOAD_MS = 5 * 60e3;

  let range = RANGES[CM.params.get('range')] ? CM.params.get('range') : '24h';
  let hall = null;
  let events = [];
  let win = null; /* {from, to} of the loaded charts and events */
  let chartData = {}; /* chart key → [{name, points, step_ms, unit}] */
  let loadedRange = null;
  let loadedAt = 0;

  /* One chart per (device, metric) as /api/v1/hall lists them (device '' = every device). */
  const chartKey = (c) => (c.device || '') + '|' + c.metric;
  const devicesWith = (metric) => ((hall && hall.devices) || []).filter((d) => (d.metrics || []).some((m) => m.metric === metric));

  /* The charts to draw: the API's list, else the default metrics this hall has. */
  function chartList() {
    if (hall && Array.isArray(hall.charts) && hall.charts.length) return hall.charts;
    return DEFAULT_CHARTS.filter((m) => devicesWith(m).length).map((m) => ({ metric: m, title_key: 'metric.' + m, unit: '', band: null }));
  }

  function bandOf(c) {
    if (c.band) return c.band;
    for (const d of devicesWith(c.metric)) for (const m of d.metrics) if (m.metric === c.metric && m.band) return m.band;
    return null;
  }

  /* The distinct bands of a chart's series (/api/v1/hall charts[].series[].band) when they
   * differ (SPL: each channel against its own reference); else null (the chart's band). */
  function seriesBands(c) {
    const seen = new Map();
    for (const s of c.series || []) if (s && s.band) seen.set(JSON.stringify([s.band.lo, s.band.hi, s.band.target]), s.band);
    return seen.size > 1 ? Array.from(seen.values()) : null;
  }

  async function loadCharts(from, to) {
    const step = RANGES[range].step;
    const jobs = [];
    for (const c of chartList()) {
      const devs = c.device ? [{ device: c.device }] : devicesWith(c.metric);
      for (const d of devs)
        jobs.push(
          CM.api(CM.link('/api/v1/series', { site, device: d.device, metric: c.metric, from, to, step }))
            .then((list) => ({ c, d, list: Array.isArray(list) ? list : [], multi: devs.length > 1 }))
            .catch((e) => {
              if (e.status === 401) throw e;
              return { c, d, list: [], multi: false, error: e };
            }),
        );
    }
    const evP = CM.api(CM.link('/api/v1/events', { site, from, to, limit: 5000 })).catch((e) => {
      if (e.status === 401) throw e;
      return [];
    });
    const [results, ev] = await Promise.all([Promise.all(jobs), evP]);
    const out = {};
    for (const r of results) {
      const k = chartKey(r.c);
      const arr = (out[k] = out[k] || []);
      for (const s of r.list) {
        const name = [CM.units.labelText(s.labels), r.multi ? r.d.device : ''].filter(Boolean).join(' · ');
        arr.push({ name, points: s.points || [], step_ms: s.step_ms, unit: s.unit });
      }
    }
    const mine = new Set(((hall && hall.devices) || []).map((d) => d.device));
    events = (Array.isArray(ev) ? ev : []).filter((e) => !e.device || mine.has(e.device));
    chartData = out;
  }

  async function load() {
    if (!site || !screen) throw new CM.ApiError(400, 'site? screen?');
    try {
      hall = await CM.api(CM.link('/api/v1/hall', { site, screen }));
      document.body.classList.remove('not-found');
    } catch (e) {
      if (e.status === 404) document.body.classList.add('not-found');
      if (e.status === 404) e.message = CM.t('err.notfound') + ' (' + site + ' / ' + screen + ')';
      throw e;
    }
    const now = Date.now();
    if (loadedRange !== range || range === '24h' || now - loadedAt > SLOW_RELOAD_MS) {
      const r = RANGES[range];
      const w = { from: now - r.span, to: now };
      const want = range;
      await loadCharts(w.from, w.to);
      if (want === range) {
        win = w;
        loadedRange = range;
        loadedAt = now;
      }
    }
  }

  /* ------------------------------------------------------------------ render */
  function inBand(v, b) {
    if (!b || v === null || v === undefined) return null;
    const lo = Number.isFinite(b.lo) ? b.lo : -Infinity;
    const hi = Number.isFinite(b.hi) ? b.hi : Infinity;
    return v >= lo && v <= hi;
  }

  function bandText(metric, b, unit) {
    const f = (v) => CM.units.parts(metric, v, unit).text;
    const r = Number.isFinite(b.lo) && Number.isFinite(b.hi) ? f(b.lo) + ' – ' + f(b.hi) : Number.isFinite(b.lo) ? '≥ ' + f(b.lo) : '≤ ' + f(b.hi);
    return r + (Number.isFinite(b.target) ? ' · ' + CM.t('hall.target') + ' ' + f(b.target) : '');
  }

  /* A metric's band: its own, else the band of the chart of that metric. */
  function metricBand(m) {
    if (m.band) return m.band;
    const c = hall && Array.isArray(hall.charts) ? hall.charts.find((x) => x.metric === m.metric && x.band) : null;
    return c ? c.band : null;
  }

  function metricRow(m0) {
    const m = { ...m0, band: metricBand(m0) };
    const ok = typeof m.in_band === 'boolean' ? m.in_band : inBand(m.value, m.band);
    const p = CM.units.parts(m.metric, m.value, m.unit);
    const lbl = CM.units.labelText(m.labels);
    const cls = 'metric ' + (ok === null ? 'no-band' : ok ? 'in-band' : 'out-of-band');
    const li = h('li', { class: cls, 'data-metric': m.metric, 'data-labels': lbl || null, title: m.ts_ms ? CM.fmt.dateTime(m.ts_ms) + (ok === null ? '' : ' · ' + CM.t(ok ? 'hall.inband' : 'hall.outband')) : null },
      h('span', { class: 'metric-name' }, CM.i18n.has('metric.' + m.metric) ? CM.t('metric.' + m.metric) : m.metric, lbl ? h('span', { class: 'lbl' }, lbl) : null),
      h('span', { class: 'metric-value' }, p.text, p.sub ? h('small', null, p.sub) : null));
    if (m.band) li.appendChild(h('span', { class: 'metric-band', title: m.band.standard || null }, bandText(m.metric, m.band, m.unit)));
    return li;
  }

  function renderDevices() {
    const box = CM.empty(document.getElementById('devices'));
    const devs = (hall && hall.devices) || [];
    document.getElementById('devices-count').textContent = devs.length ? String(devs.length) : '';
    if (!devs.length) {
      box.appendChild(h('div', { class: 'hint' }, CM.t(hall ? 'hall.nodevices' : 'common.loading')));
      return;
    }
    const fresh = (t) => t && Date.now() - t < 10 * 60e3;
    for (const d of devs) {
      const metrics = (d.metrics || []).slice().sort((a, b) => (b.band ? 1 : 0) - (a.band ? 1 : 0) || a.metric.localeCompare(b.metric) || CM.units.labelText(a.labels).localeCompare(CM.units.labelText(b.labels), undefined, { numeric: true }));
      const kind = CM.tv('kind.', d.kind);
      box.appendChild(
        h('div', { class: 'device', 'data-device': d.device },
          h('div', { class: 'device-head' },
            h('span', { class: 'dot ' + (fresh(d.last_seen_ms) ? 'on' : 'off') }),
            h('span', { class: 'device-kind' }, kind),
            h('span', { class: 'device-id' }, d.device),
            h('span', { class: 'device-model' }, [d.vendor, d.model].filter(Boolean).join(' '))),
          h('div', { class: 'device-seen' }, d.last_seen_ms ? CM.t('hall.lastseen', { t: CM.fmt.ago(d.last_seen_ms) }) : CM.t('hall.never')),
          h('ul', { class: 'metrics' }, metrics.map(metricRow))),
      );
    }
  }

  function renderHead() {
    const sc = (hall && hall.screen) || {};
    CM.crumbs(document.getElementById('crumbs'), [
      { label: CM.t('common.national'), href: '/' },
      { label: site, href: CM.link('/cinema', { site }) },
      { label: sc.name || screen },
    ]);
    document.getElementById('hall-name').textContent = sc.name || screen;
    document.getElementById('hall-code').textContent = site + ' / ' + screen;
    document.title = (sc.name || screen) + ' · ' + site + ' · cinemon';
    const active = ((hall && hall.alerts) || []).filter((a) => a.state !== 'resolved');
    const worst = active.reduce((w, a) => (CM.SEV_RANK[a.severity] > CM.SEV_RANK[w] ? a.severity : w), 'ok');
    CM.empty(document.getElementById('hall-worst')).appendChild(CM.sevBadge(hall ? worst : 'ok'));
    const box = CM.empty(document.getElementById('hall-settings'));
    const item = (k, v) => (v ? box.appendChild(h('span', null, CM.t(k) + ' ', h('b', null, v))) : null);
    item('hall.class', CM.tv('hall.class.', sc.class));
    item('hall.display', CM.tv('hall.display.', sc.display));
    item('hall.format', sc.format);
    let ref = sc.spl_ref;
    if (typeof ref === 'string') {
      try {
        ref = JSON.parse(ref);
      } catch (e) {
        ref = null;
      }
    }
    if (ref && typeof ref === 'object' && Object.keys(ref).length)
      item('hall.splref', Object.keys(ref).sort().map((k) => k + ' ' + ref[k]).join(' · ') + ' dBC');
  }

  function renderRange() {
    CM.$$('#range-buttons button[data-range]').forEach((b) => {
      const on = b.getAttribute('data-range') === range;
      b.classList.toggle('active', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    });
  }

  function markers() {
    const out = [];
    for (const a of (hall && hall.alerts) || []) out.push({ ts: a.firing_ms || a.started_ms, severity: a.severity, title: a.rule + ': ' + (a.text || '') });
    for (const e of events) if (e.severity && e.severity !== 'info') out.push({ ts: e.ts_ms, severity: e.severity, title: (e.device || '') + ' ' + (e.code || '') + ' ' + (e.text || '') });
    return out.slice(0, 300);
  }

  function renderCharts() {
    const box = document.getElementById('charts');
    const list = chartList();
    const w = win || { from: Date.now() - RANGES[range].span, to: Date.now() };
    const key = list.map(chartKey).join(',');
    if (box.getAttribute('data-key') !== key) {
      CM.empty(box);
      box.setAttribute('data-key', key);
      for (const c of list)
        box.appendChild(
          h('figure', { class: 'chart-card', 'data-chart': chartKey(c) },
            h('figcaption', null, h('span', { class: 'chart-title' }), h('span', { class: 'chart-unit' }), c.device ? h('span', { class: 'chart-device' }, c.device) : null, h('span', { class: 'legend' })),
            h('div', { class: 'chart-host' }, (() => {
              const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
              svg.setAttribute('class', 'chart');
              svg.setAttribute('data-metric', c.metric);
              if (c.device) svg.setAttribute('data-device', c.device);
              return svg;
            })())),
        );
      if (!list.length) box.appendChild(h('div', { class: 'hint' }, CM.t(hall ? 'hall.nocharts' : 'common.loading')));
    }
    const mk = markers();
    for (const c of list) {
      const fig = box.querySelector('figure[data-chart="' + CSS.escape(chartKey(c)) + '"]');
      if (!fig) continue;
      const series = chartData[chartKey(c)] || [];
      const unit = c.unit || (series[0] && series[0].unit) || '';
      const title = c.title_key && CM.i18n.has(c.title_key) ? CM.t(c.title_key) : CM.i18n.has('metric.' + c.metric) ? CM.t('metric.' + c.metric) : c.title_key || c.metric;
      fig.querySelector('.chart-title').textContent = title;
      fig.querySelector('.chart-unit').textContent = CM.units.caption(c.metric, unit);
      CM.chart.render(fig.querySelector('svg.chart'), {
        metric: c.metric,
        unit,
        from: w.from,
        to: w.to,
        series,
        step_ms: series[0] && series[0].step_ms,
        band: bandOf(c),
        bands: seriesBands(c),
        markers: mk,
        height: 180,
        legend: fig.querySelector('.legend'),
      });
    }
    const tl = document.getElementById('hall-timeline');
    CM.chart.timeline(tl, {
      from: w.from,
      to: w.to,
      alerts: ((hall && hall.alerts) || []).map((a) => ({ id: a.id, start: a.firing_ms || a.started_ms, end: a.resolved_ms, severity: a.severity, title: a.rule + ': ' + (a.text || '') })),
      events: events.map((e) => ({ ts: e.ts_ms, severity: e.severity, title: [e.device, e.code, e.text].filter(Boolean).join(' ') })),
    });
  }

  function renderHistory() {
    CM.alertTable(document.getElementById('hall-alerts'), (hall && hall.alerts) || [], ['severity', 'state', 'device', 'rule', 'text', 'value', 'when', 'ack'], { empty: 'common.none' });
  }

  function render() {
    renderHead();
    renderRange();
    renderDevices();
    renderCharts();
    renderHistory();
  }

  CM.$$('#range-buttons button[data-range]').forEach((b) =>
    b.addEventListener('click', () => {
      const r = b.getAttribute('data-range');
      if (!RANGES[r] || r === range) return;
      range = r;
      window.history.replaceState(null, '', CM.link('/hall', { site, screen, range, refresh: CM.params.get('refresh') }));
      renderRange();
      CM.reload();
    }),
  );

  CM.start({ load, render });
})();
