/* cinema.js — one cinema: a tile per hall coloured by its worst active alert (critical red,
 * warning amber, info blue, ok green) with the latest luminance (nits and fL), SPL (dBC),
 * light-source hours and state; the cinema's active alerts. API: GET /api/v1/cinema?site= */
(function () {
  'use strict';
  const CM = window.CM;
  const h = CM.h;
  const site = CM.params.get('site') || '';
  let data = null;

  async function load() {
    if (!site) throw new CM.ApiError(400, 'site?');
    try {
      data = await CM.api(CM.link('/api/v1/cinema', { site }));
      document.body.classList.remove('not-found');
    } catch (e) {
      if (e.status === 404) document.body.classList.add('not-found');
      if (e.status === 404) e.message = CM.t('err.notfound') + ' (' + site + ')';
      throw e;
    }
  }

  /* A latest value object {value, ts_ms, unit} or a bare number → number or null. */
  const val = (x) => (x === null || x === undefined ? null : typeof x === 'object' ? x.value : x);

  function stateText(stt) {
    const parts = [];
    for (const k of ['power_state', 'playback_state']) {
      const v = val(stt && stt[k]);
      if (v !== null && v !== undefined) parts.push(CM.units.fmt(k, v));
    }
    return parts;
  }

  function metricBlock(labelKey, metric, latest, wide) {
    const v = val(latest);
    const p = CM.units.parts(metric, v, latest && latest.unit);
    const dd = h('dd', { title: latest && latest.ts_ms ? CM.fmt.dateTime(latest.ts_ms) : null }, p.text, p.sub ? h('small', null, p.sub) : null);
    return h('div', { class: wide ? 'wide' : '' }, h('dt', null, CM.t(labelKey)), dd);
  }

  function tile(hl) {
    const worst = hl.worst || 'ok';
    const href = CM.link('/hall', { site, screen: hl.screen });
    const states = stateText(hl.state);
    const power = val(hl.state && hl.state.power_state);
    return h(
      'a',
      { class: 'hall-tile' + (hl.reporting === false ? ' silent' : ''), 'data-screen': hl.screen, 'data-worst': worst, href },
      h('div', { class: 'tile-head' },
        h('span', { class: 'dot ' + (hl.reporting ? 'on' : 'off'), title: CM.t(hl.reporting ? 'cin.reporting' : 'cin.silent') }),
        h('span', { class: 'tile-name' }, hl.name || hl.screen),
        hl.name && hl.name !== hl.screen ? h('span', { class: 'tile-code' }, hl.screen) : null,
        CM.sevBadge(worst)),
      h('div', { class: 'tile-state' },
        states.length ? h('span', { class: power === 5 ? 'poor' : '' }, states.join(' · ')) : h('span', null, hl.reporting === false ? CM.t('cin.silent') : '—')),
      h('dl', { class: 'tile-metrics' },
        metricBlock('cin.luminance', 'screen_luminance_nits', hl.luminance),
        metricBlock('cin.spl', 'spl_dbc', hl.spl),
        metricBlock('cin.hours', 'light_source_hours', hl.light_hours, true)),
      h('div', { class: 'tile-foot' },
        h('span', null, [CM.tv('hall.class.', hl.class), CM.tv('hall.display.', hl.display)].filter(Boolean).join(' · ')),
        hl.alerts ? h('span', { class: 'alerts-n' }, CM.t('cin.nalerts', { n: hl.alerts })) : h('span', null, CM.t('cin.noalerts'))),
    );
  }

  function render() {
    if (!data) {
      CM.crumbs(document.getElementById('crumbs'), [{ label: CM.t('common.national'), href: '/' }, { label: site }]);
      return;
    }
    const s = data.site || {};
    CM.crumbs(document.getElementById('crumbs'), [
      { label: CM.t('common.national'), href: '/' },
      s.province ? { label: s.province, href: CM.link('/', { province: s.province }) } : null,
      s.city ? { label: s.city, href: CM.link('/', { province: s.province, city: s.city }) } : null,
      { label: s.name || s.code || site },
    ].filter(Boolean));
    document.getElementById('cinema-name').textContent = s.name || s.code || site;
    document.title = (s.name || site) + ' · cinemon';
    document.getElementById('cinema-code').textContent = s.code || site;
    const meta = CM.empty(document.getElementById('cinema-meta'));
    if (s.chain) meta.appendChild(h('span', null, CM.t('ov.chain') + ' ', h('b', null, s.chain)));

    const halls = (data.halls || []).slice();
    const coll = new Intl.Collator(CM.i18n.locale(), { numeric: true });
    halls.sort((a, b) => coll.compare(a.screen, b.screen));
    const box = CM.empty(document.getElementById('hall-tiles'));
    if (!halls.length) box.appendChild(h('div', { class: 'hint' }, CM.t('common.nodata')));
    halls.forEach((hl) => box.appendChild(tile(hl)));
    const alerts = data.alerts || [];
    document.getElementById('cinema-summary').textContent = CM.t('cin.summary', {
      halls: halls.length,
      rep: halls.filter((x) => x.reporting).length,
      alerts: alerts.length,
    });
    document.getElementById('cinema-alerts-link').setAttribute('href', CM.link('/alerts', { site }));
    const order = (a) => -CM.SEV_RANK[a.severity] * 1e15 - (a.firing_ms || a.started_ms || 0) / 1e3;
    CM.alertTable(
      document.getElementById('cinema-alerts'),
      alerts.slice().sort((a, b) => order(a) - order(b)),
      ['severity', 'state', 'where', 'rule', 'text', 'value', 'when', 'ack'],
      { empty: 'cin.noalerts' },
    );
  }

  CM.start({ load, render });
})();
