/* chart.js — a small SVG time-series chart and an events/alerts timeline.
 *   CM.chart.render(svg, opts)    opts: {metric, unit, from, to, series:[{name, points}],
 *                                 step_ms, band:{lo,hi,target}|null, markers:[{ts, severity,
 *                                 title}], height, legend: element|null}
 *   CM.chart.timeline(svg, opts)  opts: {from, to, alerts:[{start, end, severity, title}],
 *                                 events:[{ts, severity, title}]}
 * Points are [ts_ms, value] (raw) or [bucket_ms, avg, min, max, count] (roll-ups: the line is
 * the average, a shaded envelope spans min..max). The line breaks where data is missing.
 * The tolerance band is a rect.band behind the path.line elements. */
(function () {
  'use strict';
  const CM = (window.CM = window.CM || {});
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2f7fd8', '#e07b24', '#2aa876', '#b04fc4', '#d9455f', '#1fa2b5', '#8a6d3b', '#6b7a8f'];
  const MIN = 60e3;
  const HOUR = 3600e3;
  const DAY = 86400e3;
  let clipSeq = 0;

  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    if (attrs) for (const k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function clear(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
  }

  /* ------------------------------------------------------------------ time ticks */
  const TICK_STEPS = [
    [MIN, 'minute', 1], [5 * MIN, 'minute', 5], [15 * MIN, 'minute', 15], [30 * MIN, 'minute', 30],
    [HOUR, 'hour', 1], [2 * HOUR, 'hour', 2], [3 * HOUR, 'hour', 3], [6 * HOUR, 'hour', 6],
    [12 * HOUR, 'hour', 12], [DAY, 'day', 1], [2 * DAY, 'day', 2], [7 * DAY, 'week', 1],
    [14 * DAY, 'week', 2], [30 * DAY, 'month', 1], [61 * DAY, 'month', 2], [91 * DAY, 'month', 3],
    [182 * DAY, 'month', 6], [365 * DAY, 'year', 1],
  ];

  /* Local-time tick positions for [from, to] with at most maxTicks ticks; each {t, major}. */
  function timeTicks(from, to, maxTicks) {
    const span = Math.max(1, to - from);
    let st = TICK_STEPS[TICK_STEPS.length - 1];
    for (const s of TICK_STEPS)
      if (span / s[0] <= maxTicks) {
        st = s;
        break;
      }
    const [, unit, n] = st;
    const d = new Date(from);
    d.setSeconds(0, 0);
    if (unit === 'minute') d.setMinutes(Math.floor(d.getMinutes() / n) * n);
    else d.setMinutes(0);
    if (unit === 'hour') d.setHours(Math.floor(d.getHours() / n) * n);
    if (unit === 'day' || unit === 'week' || unit === 'month' || unit === 'year') d.setHours(0);
    if (unit === 'week') d.setDate(d.getDate() - ((d.getDay() + 6) % 7)); /* Monday */
    if (unit === 'month' || unit === 'year') d.setDate(1);
    if (unit === 'month') d.setMonth(Math.floor(d.getMonth() / n) * n);
    if (unit === 'year') d.setMonth(0);
    const out = [];
    for (let guard = 0; guard < 500; guard++) {
      const t = d.getTime();
      if (t > to) break;
      if (t >= from) {
        const midnight = d.getHours() === 0 && d.getMinutes() === 0;
        out.push({ t, unit, major: unit === 'minute' || unit === 'hour' ? midnight : d.getMonth() === 0 && d.getDate() === 1 });
      }
      if (unit === 'minute') d.setMinutes(d.getMinutes() + n);
      else if (unit === 'hour') d.setHours(d.getHours() + n);
      else if (unit === 'day') d.setDate(d.getDate() + n);
      else if (unit === 'week') d.setDate(d.getDate() + 7 * n);
      else if (unit === 'month') d.setMonth(d.getMonth() + n);
      else d.setFullYear(d.getFullYear() + n);
    }
    return out;
  }

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  function tickLabel(tk, first) {
    const d = new Date(tk.t);
    const zh = CM.i18n && CM.i18n.lang === 'zh';
    const md = zh ? d.getMonth() + 1 + '/' + d.getDate() : pad2(d.getDate()) + '/' + pad2(d.getMonth() + 1);
    if (tk.unit === 'minute' || tk.unit === 'hour')
      return tk.major || first ? md + (tk.major ? '' : ' ' + pad2(d.getHours()) + ':' + pad2(d.getMinutes())) : pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    if (tk.unit === 'day' || tk.unit === 'week') return md;
    const loc = CM.i18n ? CM.i18n.locale() : 'en';
    if (tk.unit === 'year' || tk.major || first)
      return new Intl.DateTimeFormat(loc, { year: 'numeric', month: 'short' }).format(d);
    return new Intl.DateTimeFormat(loc, { month: 'short' }).format(d);
  }

  /* ------------------------------------------------------------------ value ticks */
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  function valueTicks(lo, hi, count) {
    const step = niceStep((hi - lo) / count);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  /* ------------------------------------------------------------------ data */
  function isRollup(points) {
    return points.length > 0 && points[0].length >= 4;
  }

  /* The largest gap between neighbours that still counts as continuous. */
  function gapLimit(points, stepMs) {
    if (stepMs) return stepMs * 2.5;
    if (points.length < 3) return Infinity;
    const d = [];
    for (let i = 1; i < points.length; i++) d.push(points[i][0] - points[i - 1][0]);
    d.sort((a, b) => a - b);
    return Math.max(d[Math.floor(d.length / 2)] * 3, 1000);
  }

  /* Runs of continuous points. */
  function segments(points, limit) {
    const out = [];
    let cur = [];
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      if (p[1] === null || !Number.isFinite(Number(p[1]))) {
        if (cur.length) out.push(cur);
        cur = [];
        continue;
      }
      if (cur.length && p[0] - cur[cur.length - 1][0] > limit) {
        out.push(cur);
        cur = [];
      }
      cur.push(p);
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /* More points than pixels: fold them into nb time buckets [t, avg, min, max, count] (the
   * envelope keeps the extremes); a gap of the original data becomes a [t, null] break. */
  function decimate(points, from, to, nb, limit) {
    const bw = (to - from) / nb;
    const out = [];
    let cur = null;
    let curIdx = -1;
    let prevT = null;
    const flush = () => {
      if (cur) out.push([Math.round(cur.ts / cur.k), cur.sum / cur.w, cur.min, cur.max, cur.n]);
      cur = null;
    };
    for (const p of points) {
      const v = p[1];
      if (p[0] < from || p[0] > to || v === null || !Number.isFinite(v)) continue;
      const gap = prevT !== null && p[0] - prevT > limit;
      prevT = p[0];
      const idx = Math.min(nb - 1, Math.floor((p[0] - from) / bw));
      if (cur && (idx !== curIdx || gap)) {
        const end = cur.ts / cur.k;
        flush();
        if (gap) out.push([end, null]);
      }
      const mn = p.length >= 4 ? p[2] : v;
      const mx = p.length >= 4 ? p[3] : v;
      const w = p.length >= 5 && p[4] > 0 ? p[4] : 1;
      if (!cur) {
        cur = { ts: 0, k: 0, sum: 0, w: 0, min: mn, max: mx, n: 0 };
        curIdx = idx;
      }
      cur.ts += p[0];
      cur.k++;
      cur.sum += v * w;
      cur.w += w;
      cur.min = Math.min(cur.min, mn);
      cur.max = Math.max(cur.max, mx);
      cur.n += p.length >= 5 ? p[4] : 1;
    }
    flush();
    return out;
  }

  function fmtTime(t) {
    if (CM.fmt && CM.fmt.dateTime) return CM.fmt.dateTime(t);
    return new Date(t).toISOString();
  }

  /* ------------------------------------------------------------------ chart */
  function render(svg, opts) {
    const o = opts || {};
    const series = (o.series || []).filter((s) => s && Array.isArray(s.points));
    const metric = o.metric || svg.getAttribute('data-metric') || '';
    const unit = o.unit || '';
    const from = o.from;
    const to = o.to;
    const H = o.height || 190;
    const W = Math.max(240, Math.round(svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 600));
    const lum = CM.units && CM.units.kind(metric, unit) === 'luminance';
    const M = { l: 50, r: lum ? 46 : 14, t: 8, b: 30 };
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', H);
    svg.classList.add('chart');
    if (metric) svg.setAttribute('data-metric', metric);

    /* y domain: the data (envelope included) and the band, padded */
    let lo = Infinity;
    let hi = -Infinity;
    let npts = 0;
    for (const s of series)
      for (const p of s.points) {
        if (p[0] < from || p[0] > to) continue;
        const vals = p.length >= 4 ? [p[1], p[2], p[3]] : [p[1]];
        for (const v of vals)
          if (Number.isFinite(v)) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
        npts++;
      }
    const bands = (o.bands && o.bands.length ? o.bands : [o.band]).filter(Boolean);
    const band = bands[0] || null;
    for (const bd of bands)
      for (const v of [bd.lo, bd.hi, bd.target])
        if (Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    if (hi - lo < 1e-9) {
      const d = Math.abs(hi) > 1e-9 ? Math.abs(hi) * 0.05 : 1;
      lo -= d;
      hi += d;
    }
    const padv = (hi - lo) * 0.08;
    lo -= padv;
    hi += padv;
    const yt = valueTicks(lo, hi, Math.max(3, Math.floor(ph / 36)));
    const x = (t) => M.l + ((t - from) / (to - from)) * pw;
    const y = (v) => M.t + (1 - (v - lo) / (hi - lo)) * ph;

    const cid = 'cmclip' + ++clipSeq;
    const defs = el('defs', null, svg);
    el('rect', { x: M.l, y: M.t, width: pw, height: ph }, el('clipPath', { id: cid }, defs));
    el('rect', { class: 'plot-bg', x: M.l, y: M.t, width: pw, height: ph }, svg);

    /* grid and axes */
    const grid = el('g', { class: 'grid' }, svg);
    const axis = el('g', { class: 'axis' }, svg);
    for (const v of yt) {
      const yy = Math.round(y(v)) + 0.5;
      el('line', { x1: M.l, x2: M.l + pw, y1: yy, y2: yy }, grid);
      el('text', { x: M.l - 6, y: yy + 3.5, 'text-anchor': 'end', class: 'tick' }, axis).textContent = CM.units ? CM.units.tick(metric, v, unit) : String(v);
    }
    if (lum) {
      const flLo = lo / CM.units.NITS_PER_FL;
      const flHi = hi / CM.units.NITS_PER_FL;
      for (const f of valueTicks(flLo, flHi, Math.max(3, Math.floor(ph / 36)))) {
        const yy = Math.round(y(f * CM.units.NITS_PER_FL)) + 0.5;
        el('line', { x1: M.l + pw, x2: M.l + pw + 4, y1: yy, y2: yy, class: 'axis-tick' }, axis);
        el('text', { x: M.l + pw + 6, y: yy + 3.5, class: 'tick tick-fl' }, axis).textContent = CM.units.tick('', f, '');
      }
      el('text', { x: M.l + pw + 6, y: M.t + ph + 24, class: 'tick tick-fl' }, axis).textContent = 'fL';
      el('text', { x: M.l - 6, y: M.t + ph + 24, 'text-anchor': 'end', class: 'tick' }, axis).textContent = 'nits';
    }
    const xt = timeTicks(from, to, Math.max(2, Math.floor(pw / 72)));
    xt.forEach((tk, i) => {
      const xx = Math.round(x(tk.t)) + 0.5;
      el('line', { x1: xx, x2: xx, y1: M.t, y2: M.t + ph, class: tk.major ? 'major' : null }, grid);
      const tx = el('text', { x: xx, y: M.t + ph + 14, 'text-anchor': 'middle', class: 'tick' + (tk.major ? ' major' : '') }, axis);
      tx.textContent = tickLabel(tk, i === 0);
    });
    el('line', { x1: M.l, x2: M.l + pw, y1: M.t + ph + 0.5, y2: M.t + ph + 0.5, class: 'baseline' }, axis);

    /* the tolerance band(s) behind the data (several when the series have their own, such
     * as each SPL channel against the hall's reference) */
    const plot = el('g', { 'clip-path': 'url(#' + cid + ')' }, svg);
    for (const bd of bands) {
      if (!Number.isFinite(bd.lo) && !Number.isFinite(bd.hi)) continue;
      const yTop = Number.isFinite(bd.hi) ? y(bd.hi) : M.t;
      const yBot = Number.isFinite(bd.lo) ? y(bd.lo) : M.t + ph;
      const r = el('rect', { class: 'band' + (bands.length > 1 ? ' multi' : ''), x: M.l, y: Math.min(yTop, yBot), width: pw, height: Math.max(1, Math.abs(yBot - yTop)) }, plot);
      const tip = [bd.lo, bd.hi].map((v) => (Number.isFinite(v) ? CM.units.fmt(metric, v, unit) : '…')).join(' – ');
      el('title', null, r).textContent = CM.t('hall.band') + ': ' + tip + (bd.standard ? ' (' + bd.standard + ')' : '');
      if (Number.isFinite(bd.hi)) el('line', { class: 'band-edge', x1: M.l, x2: M.l + pw, y1: y(bd.hi), y2: y(bd.hi) }, plot);
      if (Number.isFinite(bd.lo)) el('line', { class: 'band-edge', x1: M.l, x2: M.l + pw, y1: y(bd.lo), y2: y(bd.lo) }, plot);
      if (Number.isFinite(bd.target)) el('line', { class: 'target', x1: M.l, x2: M.l + pw, y1: y(bd.target), y2: y(bd.target) }, plot);
    }

    /* envelopes, then lines */
    const drawn = [];
    const nb = Math.max(20, Math.floor(pw / 2));
    series.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      let pts = s.points;
      let limit = gapLimit(pts, o.step_ms || s.step_ms);
      if (pts.length > nb * 1.5) {
        pts = decimate(pts, from, to, nb, limit);
        limit = Infinity;
      }
      const roll = isRollup(pts);
      const segs = segments(pts, limit);
      if (roll) {
        let d = '';
        for (const sg of segs) {
          if (sg.length === 1) {
            const p = sg[0];
            d += 'M' + (x(p[0]) - 1).toFixed(1) + ' ' + y(p[3]).toFixed(1) + 'h2V' + y(p[2]).toFixed(1) + 'h-2Z';
            continue;
          }
          d += 'M' + sg.map((p) => x(p[0]).toFixed(1) + ' ' + y(p[3]).toFixed(1)).join('L');
          d += 'L' + sg.slice().reverse().map((p) => x(p[0]).toFixed(1) + ' ' + y(p[2]).toFixed(1)).join('L') + 'Z';
        }
        if (d) el('path', { class: 'envelope' + (series.length > 2 ? ' faint' : ''), d, fill: color }, plot);
      }
      let d = '';
      for (const sg of segs) {
        d += 'M' + sg.map((p) => x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join('L');
        if (sg.length === 1) d += 'h0.01';
      }
      const path = el('path', { class: 'line', d: d || 'M0 0', stroke: color, 'data-series': s.name || '' }, plot);
      if (!d) path.setAttribute('visibility', 'hidden');
      drawn.push({ s, pts: pts.filter((p) => p[1] !== null), color, roll });
    });

    if (!npts) {
      el('text', { x: M.l + pw / 2, y: M.t + ph / 2, 'text-anchor': 'middle', class: 'nodata' }, svg).textContent = CM.t('chart.nodata');
    }

    /* events and alerts on the same time axis: ticks along the bottom of the plot */
    const mk = el('g', { class: 'markers' }, svg);
    for (const m of o.markers || []) {
      if (m.ts < from || m.ts > to) continue;
      const xx = x(m.ts);
      const g = el('g', { class: 'marker sev-' + (m.severity || 'info') }, mk);
      el('line', { x1: xx, x2: xx, y1: M.t, y2: M.t + ph, class: 'marker-line' }, g);
      el('path', { d: 'M' + xx.toFixed(1) + ' ' + (M.t + ph - 6) + 'l4 6h-8z', class: 'marker-head' }, g);
      el('title', null, g).textContent = fmtTime(m.ts) + ' ' + (m.title || '');
    }

    /* legend */
    if (o.legend) {
      const lg = o.legend;
      lg.textContent = '';
      drawn.forEach((d) => {
        if (!d.s.name && drawn.length === 1 && !d.roll) return;
        const item = document.createElement('span');
        item.className = 'lg-item';
        const sw = document.createElement('i');
        sw.className = 'lg-swatch';
        sw.style.background = d.color;
        item.appendChild(sw);
        item.appendChild(document.createTextNode(d.s.name || CM.t('metric.' + metric)));
        lg.appendChild(item);
      });
      if (drawn.some((d) => d.roll)) {
        const item = document.createElement('span');
        item.className = 'lg-item lg-env';
        item.textContent = CM.t('chart.minmax');
        lg.appendChild(item);
      }
      if (band) {
        const item = document.createElement('span');
        item.className = 'lg-item lg-band';
        const sw = document.createElement('i');
        sw.className = 'lg-swatch lg-swatch-band';
        item.appendChild(sw);
        const rng = (bd) => [bd.lo, bd.hi].map((v) => (Number.isFinite(v) ? CM.units.parts(metric, v, unit).text : '…')).join(' – ');
        item.appendChild(document.createTextNode(CM.t('hall.band') + ' ' + bands.map(rng).join(' / ')));
        lg.appendChild(item);
      }
    }

    /* hover: crosshair and a tooltip with every series' value at that time */
    const cross = el('line', { class: 'crosshair', x1: 0, x2: 0, y1: M.t, y2: M.t + ph, visibility: 'hidden' }, svg);
    const hover = el('rect', { class: 'hover', x: M.l, y: M.t, width: pw, height: ph }, svg);
    const host = svg.parentNode;
    let tip = host ? host.querySelector('.chart-tip') : null;
    if (host && !tip) {
      tip = document.createElement('div');
      tip.className = 'chart-tip';
      tip.hidden = true;
      host.appendChild(tip);
    }
    const near = (pts, t) => {
      let a = 0;
      let b = pts.length - 1;
      if (b < 0) return null;
      while (b - a > 1) {
        const m = (a + b) >> 1;
        if (pts[m][0] < t) a = m;
        else b = m;
      }
      return Math.abs(pts[a][0] - t) <= Math.abs(pts[b][0] - t) ? pts[a] : pts[b];
    };
    hover.addEventListener('mousemove', (ev) => {
      if (!tip) return;
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      const t = from + ((px - M.l) / pw) * (to - from);
      let best = null;
      const rows = [];
      for (const d of drawn) {
        const p = near(d.pts, t);
        if (!p) continue;
        if (!best || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        rows.push([d, p]);
      }
      if (!best) return;
      const tt = best[0];
      cross.setAttribute('x1', x(tt));
      cross.setAttribute('x2', x(tt));
      cross.setAttribute('visibility', 'visible');
      tip.textContent = '';
      const head = document.createElement('div');
      head.className = 'tip-time';
      head.textContent = fmtTime(tt);
      tip.appendChild(head);
      for (const [d, p] of rows) {
        if (p[0] !== tt) continue;
        const row = document.createElement('div');
        const sw = document.createElement('i');
        sw.className = 'lg-swatch';
        sw.style.background = d.color;
        row.appendChild(sw);
        let txt = (d.s.name ? d.s.name + ': ' : '') + CM.units.fmt(metric, p[1], unit);
        if (p.length >= 4) txt += ' (' + CM.units.parts(metric, p[2], unit).text + ' – ' + CM.units.parts(metric, p[3], unit).text + ')';
        row.appendChild(document.createTextNode(txt));
        tip.appendChild(row);
      }
      tip.hidden = false;
      const left = (x(tt) / W) * r.width;
      tip.style.left = Math.min(Math.max(0, left + 12), r.width - tip.offsetWidth - 4) + 'px';
      tip.style.top = '6px';
    });
    hover.addEventListener('mouseleave', () => {
      cross.setAttribute('visibility', 'hidden');
      if (tip) tip.hidden = true;
    });
    return { x, y, width: W, margin: M };
  }

  /* ------------------------------------------------------------------ timeline */
  function timeline(svg, opts) {
    const o = opts || {};
    const from = o.from;
    const to = o.to;
    const alerts = (o.alerts || []).filter((a) => (a.end || to) >= from && a.start <= to);
    const events = (o.events || []).filter((e) => e.ts >= from && e.ts <= to);
    /* lanes: alerts packed so overlapping ones do not hide each other */
    const lanesEnd = [];
    const placed = alerts
      .slice()
      .sort((a, b) => a.start - b.start)
      .map((a) => {
        let lane = lanesEnd.findIndex((end) => end < a.start);
        if (lane < 0 || lane > 5) {
          lane = lanesEnd.length < 6 ? lanesEnd.length : 5;
          lanesEnd[lane] = -Infinity;
        }
        lanesEnd[lane] = a.end || to;
        return { a, lane };
      });
    const nl = Math.max(1, lanesEnd.length);
    const W = Math.max(240, Math.round(svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 600));
    const M = { l: 70, r: 14, t: 6, b: 22 };
    const laneH = 9;
    const evH = 16;
    const H = M.t + nl * laneH + 6 + evH + M.b;
    const pw = W - M.l - M.r;
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', H);
    const x = (t) => M.l + ((Math.min(Math.max(t, from), to) - from) / (to - from)) * pw;
    el('rect', { class: 'plot-bg', x: M.l, y: M.t, width: pw, height: H - M.t - M.b }, svg);
    const grid = el('g', { class: 'grid' }, svg);
    const axis = el('g', { class: 'axis' }, svg);
    timeTicks(from, to, Math.max(2, Math.floor(pw / 72))).forEach((tk, i) => {
      const xx = Math.round(x(tk.t)) + 0.5;
      el('line', { x1: xx, x2: xx, y1: M.t, y2: H - M.b, class: tk.major ? 'major' : null }, grid);
      el('text', { x: xx, y: H - M.b + 14, 'text-anchor': 'middle', class: 'tick' + (tk.major ? ' major' : '') }, axis).textContent = tickLabel(tk, i === 0);
    });
    const evY = M.t + nl * laneH + 6;
    el('text', { x: M.l - 8, y: M.t + Math.min(nl * laneH, 12) - 2, 'text-anchor': 'end', class: 'lane-label' }, axis).textContent = CM.t('hall.alerts');
    el('text', { x: M.l - 8, y: evY + 11, 'text-anchor': 'end', class: 'lane-label' }, axis).textContent = CM.t('hall.events');
    for (const { a, lane } of placed) {
      const x1 = x(a.start);
      const x2 = Math.max(x(a.end || to), x1 + 3);
      const r = el('rect', { class: 'tl-alert sev-' + (a.severity || 'info') + (a.end ? '' : ' open'), x: x1, y: M.t + lane * laneH + 1, width: x2 - x1, height: laneH - 2, rx: 1.5 }, svg);
      if (a.id !== undefined) r.setAttribute('data-alert-id', a.id);
      el('title', null, r).textContent = fmtTime(a.start) + (a.end ? ' – ' + fmtTime(a.end) : ' –') + '  ' + (a.title || '');
    }
    for (const e of events) {
      const xx = x(e.ts);
      const g = el('path', { class: 'tl-event sev-' + (e.severity || 'info'), d: 'M' + xx.toFixed(1) + ' ' + (evY + 2) + 'l5 6l-5 6l-5 -6z' }, svg);
      el('title', null, g).textContent = fmtTime(e.ts) + '  ' + (e.title || '');
    }
    if (!placed.length && !events.length)
      el('text', { x: M.l + pw / 2, y: M.t + (H - M.t - M.b) / 2 + 4, 'text-anchor': 'middle', class: 'nodata' }, svg).textContent = CM.t('common.none');
  }

  /* ------------------------------------------------------------------ bars */
  /* Horizontal bar chart: rows [{key, label, value (0..1 or null), attrs}], one rect.bar per
   * row carrying its attrs (e.g. data-province); onClick(row) when a bar is clicked. */
  function bars(svg, rows, opts) {
    const o = opts || {};
    const rowH = o.rowHeight || 17;
    const W = Math.max(240, Math.round(svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 360));
    const M = { l: o.labelWidth || 78, r: 44, t: 18, b: 6 };
    const H = M.t + Math.max(1, rows.length) * rowH + M.b;
    const pw = W - M.l - M.r;
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', H);
    const axis = el('g', { class: 'axis' }, svg);
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      const xx = Math.round(M.l + v * pw) + 0.5;
      el('line', { x1: xx, x2: xx, y1: M.t - 2, y2: H - M.b, class: 'gridline' }, axis);
      el('text', { x: xx, y: M.t - 6, 'text-anchor': 'middle', class: 'tick' }, axis).textContent = Math.round(v * 100) + '%';
    }
    if (Number.isFinite(o.target)) {
      const xx = M.l + o.target * pw;
      el('line', { x1: xx, x2: xx, y1: M.t - 2, y2: H - M.b, class: 'target' }, svg);
    }
    rows.forEach((r, i) => {
      const yy = M.t + i * rowH;
      const g = el('g', { class: 'bar-row' }, svg);
      el('text', { x: M.l - 6, y: yy + rowH / 2 + 4, 'text-anchor': 'end', class: 'bar-label' }, g).textContent = r.label;
      el('rect', { x: M.l, y: yy + 2, width: pw, height: rowH - 4, class: 'bar-track' }, g);
      const v = Number.isFinite(r.value) ? Math.max(0, Math.min(1, r.value)) : 0;
      const cls = !Number.isFinite(r.value) ? 'none' : r.value >= (o.good || 0.95) ? 'good' : r.value >= (o.fair || 0.8) ? 'fair' : 'poor';
      const bar = el('rect', { x: M.l, y: yy + 2, width: Math.max(Number.isFinite(r.value) ? 1 : 0, v * pw), height: rowH - 4, class: 'bar ' + cls }, g);
      for (const k in r.attrs || {}) bar.setAttribute(k, r.attrs[k]);
      el('title', null, bar).textContent = r.label + ': ' + (Number.isFinite(r.value) ? (r.value * 100).toFixed(1) + ' %' : CM.t('common.nodata'));
      el('text', { x: W - M.r + 6, y: yy + rowH / 2 + 4, class: 'bar-value ' + cls }, g).textContent = Number.isFinite(r.value) ? (r.value * 100).toFixed(1) + '%' : '—';
      if (o.onClick) {
        g.classList.add('clickable');
        g.addEventListener('click', () => o.onClick(r));
      }
    });
  }

  CM.chart = { render, timeline, bars, timeTicks, COLORS };
})();
