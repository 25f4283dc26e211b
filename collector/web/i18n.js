/* i18n.js — every label of the dashboard in English and Simplified Chinese.
 * Language: localStorage "cinemon.lang" ("en" | "zh"), else Chinese when navigator.language
 * starts with "zh", else English. <html lang> follows ("en" | "zh-CN").
 * Markup: data-i18n="key" sets the text, data-i18n-placeholder / data-i18n-title the attribute. */
(function () {
  'use strict';
  const CM = (window.CM = window.CM || {});

  /* key: [English, 中文] */
  const D = {
    'app.name': ['cinemon', 'cinemon'],
    'app.tagline': ['Projection quality monitoring', '影院放映质量监测'],
    'nav.overview': ['Overview', '总览'],
    'nav.alerts': ['Alerts', '告警'],
    'hdr.updated': ['Updated', '更新于'],
    'hdr.logout': ['Log out', '退出登录'],
    'hdr.lang': ['Language', '语言'],
    'hdr.stale': ['Data is stale: the last refresh failed', '数据已过期：最近一次刷新失败'],
    'hdr.never': ['never', '尚未'],
    'err.network': ['Cannot reach the collector', '无法连接采集服务器'],
    'err.http': ['Request failed ({status})', '请求失败（{status}）'],
    'err.forbidden': ['Not allowed for your account', '当前账号无此权限'],
    'err.notfound': ['Not found, or outside your scope', '不存在，或不在您的权限范围内'],
    'common.loading': ['Loading…', '加载中…'],
    'common.none': ['None', '无'],
    'common.nodata': ['No data', '暂无数据'],
    'common.retry': ['Retry', '重试'],
    'common.cancel': ['Cancel', '取消'],
    'common.close': ['Close', '关闭'],
    'common.national': ['National', '全国'],
    'common.all': ['All', '全部'],
    'common.yes': ['yes', '是'],
    'common.no': ['no', '否'],
    'common.ago.s': ['{n} s ago', '{n} 秒前'],
    'common.ago.m': ['{n} min ago', '{n} 分钟前'],
    'common.ago.h': ['{n} h ago', '{n} 小时前'],
    'common.ago.d': ['{n} d ago', '{n} 天前'],
    'common.dur.m': ['{n} min', '{n} 分钟'],
    'common.dur.h': ['{h} h {m} min', '{h} 小时 {m} 分'],
    'common.dur.d': ['{d} d {h} h', '{d} 天 {h} 小时'],
    'common.scope.all': ['national', '全国'],
    'common.scope.province': ['province {v}', '省份 {v}'],
    'common.scope.chain': ['chain {v}', '院线 {v}'],
    'common.scope.site': ['cinema {v}', '影院 {v}'],
    'role.viewer': ['viewer', '只读'],
    'role.operator': ['operator', '运维'],

    'sev.critical': ['Critical', '严重'],
    'sev.warning': ['Warning', '警告'],
    'sev.info': ['Info', '提示'],
    'sev.ok': ['OK', '正常'],
    'state.firing': ['Firing', '告警中'],
    'state.pending': ['Pending', '待确认'],
    'state.resolved': ['Resolved', '已恢复'],
    'state.active': ['Active', '活动'],
    'state.silenced': ['silenced', '已静默'],

    'enum.power_state.0': ['Off', '关机'],
    'enum.power_state.1': ['On', '开机'],
    'enum.power_state.2': ['Warming up', '预热中'],
    'enum.power_state.3': ['Cooling', '冷却中'],
    'enum.power_state.4': ['Standby', '待机'],
    'enum.power_state.5': ['Fault', '故障'],
    'enum.playback_state.0': ['Stopped', '停止'],
    'enum.playback_state.1': ['Playing', '放映中'],
    'enum.playback_state.2': ['Paused', '暂停'],
    'enum.raid_state.0': ['OK', '正常'],
    'enum.raid_state.1': ['Degraded', '降级'],
    'enum.raid_state.2': ['Failed', '故障'],
    'enum.audio_input_state.0': ['Gray', '灰'],
    'enum.audio_input_state.1': ['Green', '绿'],
    'enum.audio_input_state.2': ['Yellow', '黄'],
    'enum.audio_input_state.3': ['Red', '红'],
    'enum.error_status.0': ['OK', '正常'],
    'enum.error_status.1': ['Warning', '警告'],
    'enum.error_status.2': ['Error', '错误'],
    'enum.bool.0': ['No', '否'],
    'enum.bool.1': ['Yes', '是'],

    'kind.projector': ['Projector', '放映机'],
    'kind.led_screen': ['LED screen', 'LED 屏'],
    'kind.media_block': ['Media block', '媒体服务器'],
    'kind.audio_processor': ['Audio processor', '音频处理器'],
    'kind.light_sensor': ['Light sensor', '亮度传感器'],
    'kind.sound_sensor': ['Sound sensor', '声压传感器'],
    'kind.ups': ['UPS', 'UPS 电源'],
    'kind.agent': ['Agent', '采集代理'],

    'metric.screen_luminance_nits': ['Screen luminance', '银幕亮度'],
    'metric.white_x': ['White point x', '白点色坐标 x'],
    'metric.white_y': ['White point y', '白点色坐标 y'],
    'metric.white_cct_kelvin': ['White colour temperature', '白场色温'],
    'metric.luminance_side_ratio_percent': ['Side-to-centre luminance', '边中亮度比'],
    'metric.luminance_nonuniformity_percent': ['Luminance non-uniformity', '亮度不均匀度'],
    'metric.black_level_nits': ['Black level', '黑电平'],
    'metric.spl_dbc': ['Sound pressure level', '声压级'],
    'metric.av_sync_offset_ms': ['A/V sync offset', '音画同步偏差'],
    'metric.audio_fader_level': ['Fader level', '推子电平'],
    'metric.audio_mute': ['Audio muted', '静音'],
    'metric.audio_input_state': ['Audio input', '音频输入状态'],
    'metric.amp_channel_fault': ['Amplifier channel fault', '功放通道故障'],
    'metric.amp_load_impedance_ohms': ['Amplifier load', '功放负载阻抗'],
    'metric.power_state': ['Power', '电源状态'],
    'metric.playback_state': ['Playback', '放映状态'],
    'metric.light_source_hours': ['Light-source hours', '光源使用时长'],
    'metric.light_source_rated_hours': ['Light-source rated hours', '光源额定寿命'],
    'metric.light_source_power_percent': ['Light-source power', '光源功率'],
    'metric.light_output_percent': ['Light output', '光输出'],
    'metric.temperature_celsius': ['Temperatures', '温度'],
    'metric.fan_speed_rpm': ['Fan speed', '风扇转速'],
    'metric.filter_hours': ['Filter hours', '滤网使用时长'],
    'metric.douser_open': ['Douser open', '遮光板打开'],
    'metric.error_status': ['Error status', '错误状态'],
    'metric.security_tampered': ['Security tampered', '安全防拆触发'],
    'metric.marriage_broken': ['Marriage broken', '绑定已断开'],
    'metric.kdm_hours_left': ['KDM hours left', '密钥剩余时长'],
    'metric.security_log_backlog_hours': ['Security log backlog', '安全日志积压'],
    'metric.clock_offset_seconds': ['Clock offset', '时钟偏差'],
    'metric.raid_state': ['RAID', '磁盘阵列'],
    'metric.storage_free_bytes': ['Free storage', '剩余存储'],
    'metric.led_cabinet_temperature_celsius': ['LED cabinet temperature', 'LED 箱体温度'],
    'metric.led_cabinet_online': ['LED cabinet online', 'LED 箱体在线'],
    'metric.led_receiving_card_voltage_volts': ['Receiving card voltage', '接收卡电压'],
    'metric.led_failed_pixels': ['Failed pixels', '坏点数'],
    'metric.booth_temperature_celsius': ['Booth temperature', '放映室温度'],
    'metric.booth_humidity_percent': ['Booth humidity', '放映室湿度'],
    'metric.ups_on_battery': ['UPS on battery', 'UPS 电池供电'],
    'metric.ups_battery_charge_percent': ['UPS charge', 'UPS 电量'],
    'metric.ups_runtime_seconds': ['UPS runtime', 'UPS 续航'],
    'metric.ups_load_percent': ['UPS load', 'UPS 负载'],
    'metric.up': ['Reachable', '可达'],
    'metric.poll_duration_seconds': ['Poll duration', '轮询耗时'],
    'metric.poll_errors_total': ['Poll errors', '轮询错误'],
    'metric.uptime_seconds': ['Uptime', '运行时长'],
    'metric.projector_runtime_hours': ['Projector hours', '放映机运行时长'],

    'login.title': ['Sign in', '登录'],
    'login.user': ['User name', '用户名'],
    'login.password': ['Password', '密码'],
    'login.submit': ['Sign in', '登录'],
    'login.busy': ['Signing in…', '正在登录…'],
    'login.bad': ['Wrong user name or password', '用户名或密码错误'],
    'login.missing': ['Enter your user name and password', '请输入用户名和密码'],
    'login.failed': ['Sign-in failed: {msg}', '登录失败：{msg}'],
    'login.hint': ['Accounts are created by the collector administrator.', '账号由采集服务器管理员创建。'],

    'ov.title': ['Overview', '总览'],
    'ov.province': ['Province', '省份'],
    'ov.city': ['City', '城市'],
    'ov.cinema': ['Cinema', '影院'],
    'ov.code': ['Code', '编码'],
    'ov.chain': ['Chain', '院线'],
    'ov.cinemas': ['Cinemas', '影院'],
    'ov.screens': ['Screens', '影厅'],
    'ov.reporting': ['Reporting', '在线'],
    'ov.reporting.title': ['Screens with a device seen in the last 10 minutes', '最近 10 分钟内有设备上报的影厅'],
    'ov.lum': ['Luminance', '亮度达标'],
    'ov.white': ['White point', '白点达标'],
    'ov.spl': ['SPL', '声压达标'],
    'ov.share.title': ['Share of measured time within the standard today', '今日测量时间内符合标准的比例'],
    'ov.alerts': ['Active alerts', '活动告警'],
    'ov.worst': ['Status', '状态'],
    'ov.chart': ['Compliance by province', '各省达标率'],
    'ov.chart.today': ['today', '今日'],
    'ov.kpi.cinemas': ['Cinemas', '影院'],
    'ov.kpi.screens': ['Screens', '影厅'],
    'ov.kpi.reporting': ['Reporting now', '当前在线'],
    'ov.kpi.lum': ['Luminance in standard', '亮度达标率'],
    'ov.kpi.white': ['White point in standard', '白点达标率'],
    'ov.kpi.spl': ['SPL in standard', '声压达标率'],
    'ov.kpi.alerts': ['Active alerts', '活动告警'],
    'ov.empty': ['No cinemas in your scope yet', '您的权限范围内暂无影院'],
    'ov.drill': ['Click a row to drill down', '点击行查看下级'],
    'ov.target': ['target 95 %', '目标 95%'],
    'ov.unknown': ['(unknown)', '（未知）'],

    'cin.title': ['Cinema', '影院'],
    'cin.halls': ['Halls', '影厅'],
    'cin.alerts': ['Active alerts', '活动告警'],
    'cin.luminance': ['Luminance', '亮度'],
    'cin.spl': ['SPL', '声压'],
    'cin.hours': ['Light source', '光源'],
    'cin.state': ['State', '状态'],
    'cin.reporting': ['Reporting', '在线'],
    'cin.silent': ['Not reporting', '未上报'],
    'cin.noalerts': ['No active alerts', '无活动告警'],
    'cin.nalerts': ['{n} alerts', '{n} 条告警'],
    'cin.summary': ['{halls} halls · {rep} reporting · {alerts} active alerts', '{halls} 个影厅 · {rep} 个在线 · {alerts} 条活动告警'],

    'hall.title': ['Hall', '影厅'],
    'hall.devices': ['Devices', '设备'],
    'hall.charts': ['Trends', '趋势'],
    'hall.timeline': ['Events and alerts', '事件与告警'],
    'hall.history': ['Alert history (90 days)', '告警历史（90 天）'],
    'hall.lastseen': ['last seen {t}', '最近上报 {t}'],
    'hall.never': ['never seen', '从未上报'],
    'hall.band': ['Tolerance', '容差'],
    'hall.target': ['target', '目标'],
    'hall.inband': ['within tolerance', '在容差内'],
    'hall.outband': ['outside tolerance', '超出容差'],
    'hall.nodevices': ['No devices reported for this hall', '该影厅暂无设备上报'],
    'hall.nocharts': ['No chartable metrics', '暂无可绘制的指标'],
    'hall.class': ['Class', '类型'],
    'hall.display': ['Display', '显示'],
    'hall.format': ['Format', '格式'],
    'hall.splref': ['SPL reference', '声压参考'],
    'hall.class.theatre': ['theatre', '影院厅'],
    'hall.class.review': ['review room', '审片室'],
    'hall.display.projection': ['projection', '投影'],
    'hall.display.led': ['LED', 'LED'],
    'hall.events': ['events', '事件'],
    'hall.alerts': ['alerts', '告警'],
    'hall.range': ['Range', '时间范围'],
    'range.24h': ['24 h', '24 小时'],
    'range.7d': ['7 days', '7 天'],
    'range.90d': ['90 days', '90 天'],
    'range.1y': ['1 year', '1 年'],
    'chart.nodata': ['No data in this range', '该时段无数据'],
    'chart.minmax': ['min–max', '最小–最大'],

    'al.title': ['Alerts', '告警'],
    'al.filter.state': ['State', '状态'],
    'al.filter.severity': ['Severity', '级别'],
    'al.filter.site': ['Cinema code', '影院编码'],
    'al.filter.apply': ['Apply', '应用'],
    'al.sev.any': ['Any severity', '全部级别'],
    'al.sev.warning': ['Warning and above', '警告及以上'],
    'al.sev.critical': ['Critical only', '仅严重'],
    'al.state.any': ['Any state', '全部状态'],
    'al.col.severity': ['Severity', '级别'],
    'al.col.state': ['State', '状态'],
    'al.col.site': ['Cinema', '影院'],
    'al.col.screen': ['Hall', '影厅'],
    'al.col.device': ['Device', '设备'],
    'al.col.rule': ['Rule', '规则'],
    'al.col.text': ['Description', '描述'],
    'al.col.value': ['Value', '数值'],
    'al.col.since': ['Since', '开始时间'],
    'al.col.duration': ['Duration', '持续'],
    'al.col.ack': ['Acknowledged', '确认'],
    'al.col.actions': ['', ''],
    'al.ack': ['Acknowledge', '确认'],
    'al.silence': ['Silence…', '静默…'],
    'al.ackby': ['{by} · {t}', '{by} · {t}'],
    'al.ack.title': ['Acknowledge alert', '确认告警'],
    'al.ack.comment': ['Comment (what is being done)', '备注（处理情况）'],
    'al.ack.submit': ['Acknowledge', '确认'],
    'al.ack.done': ['Alert {id} acknowledged', '告警 {id} 已确认'],
    'al.count': ['{n} alerts', '共 {n} 条告警'],
    'al.empty': ['No alerts match the filters', '没有符合条件的告警'],
    'al.readonly': ['Your account can view alerts but not acknowledge or silence them', '您的账号只能查看告警，不能确认或静默'],
    'al.silences': ['Silences', '静默'],
    'al.sil.title': ['Silence alerts (maintenance window)', '静默告警（维护窗口）'],
    'al.sil.site': ['Cinema code', '影院编码'],
    'al.sil.screen': ['Hall', '影厅'],
    'al.sil.device': ['Device', '设备'],
    'al.sil.rule': ['Rule', '规则'],
    'al.sil.from': ['From', '开始'],
    'al.sil.until': ['Until', '结束'],
    'al.sil.comment': ['Comment', '备注'],
    'al.sil.submit': ['Add silence', '添加静默'],
    'al.sil.done': ['Silence {id} added', '静默 {id} 已添加'],
    'al.sil.optional': ['any', '任意'],
    'al.sil.needsite': ['A cinema code is required', '请填写影院编码'],
    'al.sil.needuntil': ['An end time is required', '请填写结束时间'],
    'al.sil.none': ['No active silences', '当前没有静默'],
    'al.sil.by': ['By', '操作人'],
  };

  const LANGS = ['en', 'zh'];
  const KEY = 'cinemon.lang';
  const listeners = [];

  function detect() {
    let saved = null;
    try {
      saved = window.localStorage.getItem(KEY);
    } catch (e) {
      /* storage disabled: fall back to the browser's language */
    }
    if (LANGS.includes(saved)) return saved;
    const nav = (navigator.language || '').toLowerCase();
    return nav.startsWith('zh') ? 'zh' : 'en';
  }

  const i18n = {
    lang: detect(),
    /* The label of key in the current language with {name} placeholders filled; the key
     * itself when unknown (so a missing label shows, rather than hides). */
    t(key, vars) {
      const row = D[key];
      let s = row ? row[i18n.lang === 'zh' ? 1 : 0] : key;
      if (vars)
        s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined || vars[k] === null ? m : String(vars[k])));
      return s;
    },
    has(key) {
      return Object.prototype.hasOwnProperty.call(D, key);
    },
    /* Intl locale tag of the current language. */
    locale() {
      return i18n.lang === 'zh' ? 'zh-CN' : 'en-GB';
    },
    /* Translate every data-i18n* element under root. */
    apply(root) {
      const r = root || document;
      r.querySelectorAll('[data-i18n]').forEach((e) => {
        e.textContent = i18n.t(e.getAttribute('data-i18n'));
      });
      r.querySelectorAll('[data-i18n-placeholder]').forEach((e) => {
        e.setAttribute('placeholder', i18n.t(e.getAttribute('data-i18n-placeholder')));
      });
      r.querySelectorAll('[data-i18n-title]').forEach((e) => {
        e.setAttribute('title', i18n.t(e.getAttribute('data-i18n-title')));
      });
      if (r === document) {
        document.documentElement.lang = i18n.lang === 'zh' ? 'zh-CN' : 'en';
        const tk = document.body && document.body.getAttribute('data-title');
        document.title = (tk ? i18n.t(tk) + ' · ' : '') + 'cinemon';
      }
    },
    /* Switch language, remember it, re-label the page and tell the page to re-render. */
    set(lang) {
      if (!LANGS.includes(lang) || lang === i18n.lang) return;
      i18n.lang = lang;
      try {
        window.localStorage.setItem(KEY, lang);
      } catch (e) {
        /* not remembered: still switched for this page */
      }
      i18n.apply(document);
      listeners.forEach((fn) => fn(lang));
    },
    onChange(fn) {
      listeners.push(fn);
    },
  };
  CM.i18n = i18n;
  CM.t = i18n.t;
})();
