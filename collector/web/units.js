/* units.js — values as operators read them: luminance in nits and fL side by side
 * (1 fL = 3.426 nits), sound in dBC, light-source hours, °C, CIE x/y, state names. */
(function () {
  'use strict';
  const CM = (window.CM = window.CM || {});
  const NITS_PER_FL = 3.426;

  const ENUMS = ['power_state', 'playback_state', 'raid_state', 'audio_input_state', 'error_status'];
  const BOOLS = [
    'up', 'douser_open', 'audio_mute', 'security_tampered', 'marriage_broken',
    'led_cabinet_online', 'ups_on_battery', 'amp_channel_fault',
  ];

  /* What kind of quantity a metric is, from its name (the unit is its last word) or unit. */
  function kind(metric, unit) {
    const m = metric || '';
    const u = (unit || '').toLowerCase();
    if (ENUMS.includes(m)) return 'enum';
    if (BOOLS.includes(m)) return 'bool';
    if (m === 'white_x' || m === 'white_y') return 'xy';
    if (m.endsWith('_nits') || u === 'nits' || u === 'cd/m2' || u === 'cd/m²') return 'luminance';
    if (m.endsWith('_dbc') || u === 'dbc') return 'spl';
    if (m.endsWith('_hours') || u === 'h') return 'hours';
    if (m.endsWith('_celsius') || u === 'celsius' || u === '°c') return 'celsius';
    if (m.endsWith('_percent') || u === '%') return 'percent';
    if (m.endsWith('_rpm')) return 'rpm';
    if (m.endsWith('_volts')) return 'volts';
    if (m.endsWith('_kelvin')) return 'kelvin';
    if (m.endsWith('_ohms')) return 'ohms';
    if (m.endsWith('_bytes')) return 'bytes';
    if (m.endsWith('_seconds')) return 'seconds';
    if (m.endsWith('_ms')) return 'ms';
    return 'number';
  }

  function num(v, digits) {
    return Number(v).toLocaleString(CM.i18n ? CM.i18n.locale() : 'en', {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  }

  function bytes(v) {
    const u = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    let x = Math.abs(v);
    while (x >= 1000 && i < u.length - 1) {
      x /= 1000;
      i++;
    }
    return (v < 0 ? '-' : '') + num(x, x < 10 && i ? 1 : 0) + ' ' + u[i];
  }

  /* Formatted value: {text, sub} — sub is the second unit (fL beside nits) or ''. */
  function parts(metric, value, unit) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return { text: '—', sub: '' };
    const v = Number(value);
    switch (kind(metric, unit)) {
      case 'luminance':
        return { text: num(v, 1) + ' nits', sub: num(v / NITS_PER_FL, 1) + ' fL' };
      case 'spl':
        return { text: num(v, 1) + ' dBC', sub: '' };
      case 'hours':
        return { text: num(v, 0) + ' h', sub: '' };
      case 'celsius':
        return { text: num(v, 1) + ' °C', sub: '' };
      case 'xy':
        return { text: num(v, 4), sub: '' };
      case 'percent':
        return { text: num(v, 1) + ' %', sub: '' };
      case 'rpm':
        return { text: num(v, 0) + ' rpm', sub: '' };
      case 'volts':
        return { text: num(v, 2) + ' V', sub: '' };
      case 'kelvin':
        return { text: num(v, 0) + ' K', sub: '' };
      case 'ohms':
        return { text: num(v, 1) + ' Ω', sub: '' };
      case 'bytes':
        return { text: bytes(v), sub: '' };
      case 'seconds':
        return { text: num(v, Math.abs(v) < 10 ? 2 : 0) + ' s', sub: '' };
      case 'ms':
        return { text: num(v, 0) + ' ms', sub: '' };
      case 'enum': {
        const key = 'enum.' + metric + '.' + Math.round(v);
        return { text: CM.i18n && CM.i18n.has(key) ? CM.t(key) : String(v), sub: '' };
      }
      case 'bool':
        return { text: CM.t('enum.bool.' + (v ? 1 : 0)), sub: '' };
      default:
        return { text: num(v, Math.abs(v) >= 100 ? 0 : 2) + (unit ? ' ' + unit : ''), sub: '' };
    }
  }

  CM.units = {
    NITS_PER_FL,
    kind,
    parts,
    /* One string: "48.0 nits · 14.0 fL", "85.0 dBC", "12,345 h". */
    fmt(metric, value, unit) {
      const p = parts(metric, value, unit);
      return p.sub ? p.text + ' · ' + p.sub : p.text;
    },
    /* Short tick label for a chart's y axis. */
    tick(metric, value, unit) {
      const k = kind(metric, unit);
      if (k === 'xy') return num(value, 3);
      if (k === 'bytes') return bytes(value);
      const a = Math.abs(value);
      return num(value, a !== 0 && a < 1 ? 2 : a < 10 && value % 1 ? 1 : 0);
    },
    /* Unit caption of a chart: "nits (fL on the right)" → shown as "nits | fL". */
    caption(metric, unit) {
      switch (kind(metric, unit)) {
        case 'luminance': return 'nits · fL';
        case 'spl': return 'dBC';
        case 'hours': return 'h';
        case 'celsius': return '°C';
        case 'xy': return 'CIE 1931';
        case 'percent': return '%';
        default: return unit || '';
      }
    },
    /* Label text of a series' labels object: {"channel":"L"} → "L"; {} → "". */
    labelText(labels) {
      if (typeof labels === 'string') {
        try {
          labels = JSON.parse(labels);
        } catch (e) {
          return labels;
        }
      }
      if (!labels || typeof labels !== 'object') return '';
      return Object.keys(labels).sort().map((k) => labels[k]).join(' ');
    },
    /* fL of a luminance in nits. */
    toFl(nits) {
      return nits / NITS_PER_FL;
    },
  };
})();
