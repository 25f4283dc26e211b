/* overview.js — national / provincial / city overview: KPIs, the sortable #overview-table
 * (province → city → cinema drill-down, kept in the URL), and #compliance-chart by province.
 * API: GET /api/v1/overview?level=&province=&city=&day= */
(function () {
  'use strict';
  const CM = window.CM;
  const h = CM.h;
  const Q = ['luminance', 'white', 'spl'];
  const QLABEL = { luminance: 'ov.lum', white: 'ov.white', spl: 'ov.spl' };

  const st = {
    province: CM.params.get('province') || '',
    city: CM.params.get('city') || '',
    day: CM.params.get('day') || '',
    rows: null,
    provinces: [],
    totals: null,
    sort: {},
    quantity: 'luminance',
  };
  try {
    const q = window.localStorage.getItem('cinemon.ov.quantity');
    if (Q.includes(q)) st.quantity = q;
  } catch (e) {
    /* default quantity */
  }

  const level = () => (st.city ? 'cinema' : st.province ? 'city' : 'province');

  function shareClass(v) {
    return !Number.isFinite(v) ? 'none' : v >= 0.95 ? 'good' : v >= 0.8 ? 'fair' : 'poor';
  }

  function shareCell(v) {
    const c = shareClass(v);
    const meter = h('span', { class: 'meter' }, h('i', { class: c }));
    if (Number.isFinite(v)) meter.firstChild.style.width = Math.max(0, Math.min(100, v * 100)) + '%';
    return h('td', { class: 'num' }, h('span', { class: 'share' }, h('span', { class: c }, CM.fmt.pct(v)), meter));
  }

  function reportingCell(r) {
    const n = r.screens_reporting || 0;
    const of = r.screens || 0;
    const share = of ? n / of : NaN;
    return h('td', { class: 'num reporting' }, h('span', { class: shareClass(share) === 'good' ? '' : shareClass(share) }, CM.fmt.int(n)), h('span', { class: 'frac' }, '/ ' + CM.fmt.int(of)));
  }

  const nameOf = (r) => (level() === 'province' ? r.province : level() === 'city' ? r.city : r.name || r.site) || '';
  const alertScore = (a) => ((a && a.critical) || 0) * 1e8 + ((a && a.warning) || 0) * 1e4 + ((a && a.info) || 0);
  const shareOf = (r, q) => (r.compliance && Number.isFinite(r.compliance[q]) ? r.compliance[q] : -1);

  /* Sort keys: name, cinemas, screens, reporting, luminance, white, spl, alerts, worst, city, chain. */
  function sortValue(r, key) {
    switch (key) {
      case 'name': return nameOf(r);
      case 'city': return r.city || '';
      case 'chain': return r.chain || '';
      case 'cinemas': return r.cinemas || 0;
      case 'screens': return r.screens || 0;
      case 'reporting': return r.screens ? (r.screens_reporting || 0) / r.screens : -1;
      case 'alerts': return alertScore(r.alerts);
      case 'worst': return CM.SEV_RANK[r.worst || 'ok'];
      default: return shareOf(r, key);
    }
  }

  function columns() {
    const lv = level();
    const cols = [{ key: 'name', label: lv === 'province' ? 'ov.province' : lv === 'city' ? 'ov.city' : 'ov.cinema' }];
    if (lv === 'cinema') cols.push({ key: 'city', label: 'ov.city' }, { key: 'chain', label: 'ov.chain' });
    else cols.push({ key: 'cinemas', label: 'ov.cinemas', num: true });
    cols.push(
      { key: 'screens', label: 'ov.screens', num: true },
      { key: 'reporting', label: 'ov.reporting', num: true, title: 'ov.reporting.title' },
      { key: 'luminance', label: 'ov.lum', num: true, title: 'ov.share.title' },
      { key: 'white', label: 'ov.white', num: true, title: 'ov.share.title' },
      { key: 'spl', label: 'ov.spl', num: true, title: 'ov.share.title' },
      { key: 'alerts', label: 'ov.alerts' },
    );
    if (lv === 'cinema') cols.push({ key: 'worst', label: 'ov.worst' });
    return cols;
  }

  function sortState() {
    const lv = level();
    if (!st.sort[lv]) st.sort[lv] = { key: 'name', dir: 1 };
    return st.sort[lv];
  }

  /* ------------------------------------------------------------------ navigation */
  function go(province, city, push) {
    st.province = province || '';
    st.city = city || '';
    const url = CM.link('/', { province: st.province, city: st.city, day: st.day, refresh: CM.params.get('refresh') });
    if (push) window.history.pushState({ province: st.province, city: st.city }, '', url);
    st.rows = null;
    st.totals = null;
    render();
    CM.reload();
  }
  window.addEventListener('popstate', () => {
    const p = new URLSearchParams(window.location.search);
    go(p.get('province') || '', p.get('city') || '', false);
  });

  /* ------------------------------------------------------------------ load */
  async function load() {
    const lv = level();
    const base = { day: st.day };
    const rowsP = CM.api(CM.link('/api/v1/overview', { ...base, level: lv, province: st.province, city: lv === 'cinema' ? st.city : '' }));
    const provP = lv === 'province' ? rowsP : CM.api(CM.link('/api/v1/overview', { ...base, level: 'province' }));
    const [rows, provinces] = await Promise.all([rowsP, provP]);
    st.rows = Array.isArray(rows) ? rows : [];
    st.provinces = Array.isArray(provinces) ? provinces : [];
    st.totals = totals(st.rows);
  }

  /* Sums of the rows; the shares weighted by the rows' screens. */
  function totals(rows) {
    const t = { cinemas: 0, screens: 0, reporting: 0, alerts: { critical: 0, warning: 0, info: 0 }, share: {} };
    const w = {};
    for (const r of rows) {
      t.cinemas += level() === 'cinema' ? 1 : r.cinemas || 0;
      t.screens += r.screens || 0;
      t.reporting += r.screens_reporting || 0;
      for (const s of ['critical', 'warning', 'info']) t.alerts[s] += (r.alerts && r.alerts[s]) || 0;
      for (const q of Q) {
        const v = r.compliance && r.compliance[q];
        if (Number.isFinite(v)) {
          w[q] = w[q] || [0, 0];
          w[q][0] += v * (r.screens || 1);
          w[q][1] += r.screens || 1;
        }
      }
    }
    for (const q of Q) t.share[q] = w[q] ? w[q][0] / w[q][1] : null;
    return t;
  }

  /* ------------------------------------------------------------------ render */
  function renderCrumbs() {
    const items = [{ label: CM.t('common.national'), href: '/', on: (e) => { e.preventDefault(); go('', '', true); } }];
    if (st.province) items.push({ label: st.province, href: CM.link('/', { province: st.province }), on: (e) => { e.preventDefault(); go(st.province, '', true); } });
    if (st.city) items.push({ label: st.city });
    if (items.length === 1) items[0] = { label: CM.t('common.national') };
    CM.crumbs(document.getElementById('crumbs'), items);
    const title = document.getElementById('ov-title');
    title.textContent = st.city ? st.city : st.province ? st.province : CM.t('ov.title');
    const day = document.getElementById('ov-day');
    const d = new Date();
    const pad = (n) => (n < 10 ? '0' : '') + n;
    document.querySelector('[data-i18n="ov.chart.today"]').hidden = !!st.day;
    day.textContent = st.day || d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function kpi(label, value, sub, cls) {
    return h('div', { class: 'kpi' }, h('div', { class: 'kpi-label', title: label }, label), h('div', { class: 'kpi-value' + (cls ? ' ' + cls : '') }, value), h('div', { class: 'kpi-sub' }, sub || '\u00a0'));
  }

  function renderKpis() {
    const box = CM.empty(document.getElementById('kpis'));
    const t = st.totals;
    if (!t) return;
    box.appendChild(kpi(CM.t('ov.kpi.cinemas'), CM.fmt.int(t.cinemas)));
    box.appendChild(kpi(CM.t('ov.kpi.screens'), CM.fmt.int(t.screens)));
    const rep = t.screens ? t.reporting / t.screens : NaN;
    box.appendChild(kpi(CM.t('ov.kpi.reporting'), CM.fmt.int(t.reporting), CM.fmt.pct(rep), shareClass(rep)));
    for (const q of Q) box.appendChild(kpi(CM.t('ov.kpi.' + (q === 'luminance' ? 'lum' : q)), CM.fmt.pct(t.share[q]), CM.t('ov.target'), shareClass(t.share[q])));
    const a = kpi(CM.t('ov.kpi.alerts'), CM.alertPills(t.alerts), CM.fmt.int(t.alerts.critical + t.alerts.warning + t.alerts.info));
    box.appendChild(a);
  }

  function renderTable() {
    const table = document.getElementById('overview-table');
    const cols = columns();
    const s = sortState();
    const lv = level();
    table.classList.toggle('compact', lv === 'cinema');
    const thead = CM.empty(table.tHead);
    const tr = h('tr');
    for (const c of cols) {
      const th = h('th', { 'data-sort': c.key, class: c.num ? 'num' : '', title: c.title ? CM.t(c.title) : null, tabindex: 0, scope: 'col' }, CM.t(c.label));
      if (s.key === c.key) th.setAttribute('aria-sort', s.dir > 0 ? 'ascending' : 'descending');
      const click = () => {
        if (s.key === c.key) s.dir = -s.dir;
        else {
          s.key = c.key;
          s.dir = ['name', 'city', 'chain'].includes(c.key) ? 1 : c.key === 'alerts' || c.key === 'worst' ? -1 : 1;
        }
        renderTable();
      };
      th.addEventListener('click', click);
      th.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          click();
        }
      });
      tr.appendChild(th);
    }
    thead.appendChild(tr);

    const coll = new Intl.Collator(CM.i18n.locale(), { numeric: true });
    const rows = (st.rows || []).slice().sort((a, b) => {
      const va = sortValue(a, s.key);
      const vb = sortValue(b, s.key);
      const c = typeof va === 'string' ? coll.compare(va, vb) : va - vb;
      return c * s.dir || coll.compare(nameOf(a), nameOf(b));
    });
    const tbody = CM.empty(table.tBodies[0]);
    if (!rows.length) tbody.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: cols.length }, CM.t(st.rows ? 'ov.empty' : 'common.loading'))));
    for (const r of rows) {
      const attrs = { class: 'clickable', tabindex: 0 };
      let open;
      let nameCell;
      if (lv === 'province') {
        attrs['data-province'] = r.province || '';
        open = r.province ? () => go(r.province, '', true) : null;
        nameCell = h('td', { class: 'cell-name' }, r.province || CM.t('ov.unknown'));
      } else if (lv === 'city') {
        attrs['data-city'] = r.city || '';
        open = r.city ? () => go(st.province || r.province, r.city, true) : null;
        nameCell = h('td', { class: 'cell-name' }, r.city || CM.t('ov.unknown'), !st.province && r.province ? h('span', { class: 'cell-code' }, r.province) : null);
      } else {
        attrs['data-site'] = r.site;
        const href = CM.link('/cinema', { site: r.site });
        open = () => window.location.assign(href);
        nameCell = h('td', { class: 'cell-name' }, h('a', { class: 'cinema-link', href }, r.name || r.site), h('span', { class: 'cell-code' }, r.site));
      }
      const row = h('tr', attrs, nameCell);
      if (lv === 'cinema') row.append(h('td', null, r.city || ''), h('td', null, r.chain || ''));
      else row.append(h('td', { class: 'num' }, CM.fmt.int(r.cinemas || 0)));
      row.append(
        h('td', { class: 'num' }, CM.fmt.int(r.screens || 0)),
        reportingCell(r),
        ...Q.map((q) => shareCell(r.compliance ? r.compliance[q] : null)),
        h('td', null, CM.alertPills(r.alerts)),
      );
      if (lv === 'cinema') row.append(h('td', null, CM.sevBadge(r.worst || 'ok')));
      if (open) {
        row.addEventListener('click', (e) => {
          if (e.target.closest('a')) return;
          open();
        });
        row.addEventListener('keydown', (e) => {
          if (e.key === 'Enter') open();
        });
      }
      tbody.appendChild(row);
    }
    document.getElementById('table-title').textContent = CM.t(lv === 'province' ? 'ov.province' : lv === 'city' ? 'ov.city' : 'ov.cinema');
    document.getElementById('table-count').textContent = rows.length ? String(rows.length) : '';
    document.getElementById('table-hint').hidden = lv === 'cinema';
  }

  function renderChart() {
    const svg = document.getElementById('compliance-chart');
    CM.$$('#chart-quantity button').forEach((b) => {
      b.classList.toggle('active', b.getAttribute('data-q') === st.quantity);
      b.setAttribute('aria-pressed', b.getAttribute('data-q') === st.quantity ? 'true' : 'false');
    });
    const q = st.quantity;
    const rows = st.provinces
      .map((r) => ({ label: r.province || CM.t('ov.unknown'), value: r.compliance ? r.compliance[q] : null, province: r.province, attrs: { 'data-province': r.province || '' } }))
      .sort((a, b) => (Number.isFinite(a.value) ? a.value : 2) - (Number.isFinite(b.value) ? b.value : 2));
    svg.setAttribute('aria-label', CM.t('ov.chart') + ' — ' + CM.t(QLABEL[q]));
    CM.chart.bars(svg, rows, {
      target: 0.95,
      labelWidth: 86,
      onClick: (r) => {
        if (r.province) go(r.province, '', true);
      },
    });
    CM.$$('rect.bar', svg).forEach((b) => b.classList.toggle('current', b.getAttribute('data-province') === st.province && !!st.province));
  }

  function render() {
    renderCrumbs();
    renderKpis();
    renderTable();
    renderChart();
  }

  CM.$$('#chart-quantity button').forEach((b) =>
    b.addEventListener('click', () => {
      st.quantity = b.getAttribute('data-q');
      try {
        window.localStorage.setItem('cinemon.ov.quantity', st.quantity);
      } catch (e) {
        /* not remembered */
      }
      renderChart();
    }),
  );

  CM.start({ load, render });
})();
