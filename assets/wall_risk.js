/*
 * The wall screen's analysis modes (page `/`, command/web/wall_risk.py): 实时 / 风险 / 回放, the
 * hotspot layer and the trend panel. A no-op on other pages: it starts only when the store
 * `risk-config` hands it its configuration.
 *
 * It shares the situation map with assets/wall.js and changes it the same way (set_props +
 * Patch, never a whole figure), on traces wall.js never touches:
 *   - 风险: the township layer (trace 0) is coloured by GET /api/v1/risk; the hover says why, on
 *     the township and on the grid layer above it (each grid names its township's score).
 *     实时 restores both.
 *   - 热点: the hexagon layer appended after the live traces, from GET /api/v1/hotspots.
 *   - 回放: the live incident traces are hidden (wall.js keeps patching them, so 实时 shows the
 *     live state at once) and the replay traces are filled from GET /api/v1/replay in the order
 *     the incidents occurred, as the replay clock runs.
 * The chosen mode is this script's state; live updates patch other traces and other props, so
 * they never change it.
 *
 * Test hooks: window.cmdcenterRisk = {mode(), setMode(m), hotspotsOn(), toggleHotspots(),
 *   risk(), hotspots(), trends(), shownTrends(), live(), replay: {state(), shown(), pick(unit, k), play(), pause(),
 *   speed(seconds)}}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var esc = C.esc, setProps = C.setProps, newPatch = C.newPatch, pad = C.pad, TZ_MS = C.TZ_MS;

    var TICK_MS = 250;
    var HOUR_MS = 3600 * 1000;
    var DAY_MS = 24 * HOUR_MS;

    var R = null;  // the state, created by start()
    var resizeBound = false;

    // --- helpers ----------------------------------------------------------------------------
    function serverNow() {
        return Date.now() + R.offset;
    }

    // Shanghai wall-clock parts of a time in ms (read with UTC getters)
    function local(ms) {
        return new Date(ms + TZ_MS);
    }

    function hm(ms) {
        var d = local(ms);
        return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    }

    function stamp(ms) {
        var d = local(ms);
        return (d.getUTCMonth() + 1) + "月" + d.getUTCDate() + "日 " + pad(d.getUTCHours()) + ":" +
            pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
    }

    function iso(ms) {  // ISO 8601 with the +08:00 offset
        var d = local(ms);
        return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
            "T" + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" +
            pad(d.getUTCSeconds()) + "+08:00";
    }

    function getJSON(url) {
        return C.api("GET", url);
    }

    function scale() {
        return Math.max(0.7, Math.min(3, window.innerWidth / 1920));
    }

    function typeIndex(code) {
        var k = R.typeIndex[code];
        return k === undefined ? R.typeIndex.other : k;
    }

    function patchMap(patch) {
        setProps(R.cfg.ids.map, {figure: patch.build()});
    }

    function layerClass() {
        var cls = "risk-layer mode-" + R.mode + (R.hotspotsOn ? " hotspots-on" : "");
        if (cls !== R.layerClass) {
            R.layerClass = cls;
            setProps(R.cfg.ids.layer, {className: cls});
        }
    }

    // --- modes ------------------------------------------------------------------------------
    function setMode(mode) {
        if (!R || mode === R.mode || ["live", "risk", "replay"].indexOf(mode) < 0) { return; }
        var before = R.mode;
        R.mode = mode;
        if (before === "risk") { leaveRisk(); }
        if (before === "replay") { leaveReplay(); }
        if (mode === "risk") { loadRisk(); }
        if (mode === "replay") { enterReplay(); }
        layerClass();
    }

    // --- 风险 --------------------------------------------------------------------------------
    function loadRisk() {
        getJSON("/api/v1/risk").then(applyRisk).catch(function () { /* next refresh */ });
    }

    function townshipHover(t) {
        var lines = ["<b>" + esc(t.name) + "</b>  风险指数 <b>" + Math.round(t.score) + "</b>（" +
                     esc(t.level_label) + "）"];
        t.components.forEach(function (p) {
            var points = Number.isInteger(p.points) ? String(p.points) : p.points.toFixed(1);
            lines.push(esc(p.label) + " <b>" + points + "</b>/" + p.max + "：" + esc(p.detail));
        });
        return lines.join("<br>");
    }

    function applyRisk(data) {
        R.riskData = data;
        if (R.mode !== "risk") { return; }
        var byCode = {};
        data.townships.forEach(function (t) { byCode[t.code] = t; });
        var look = R.cfg.township_look;
        var z = [], text = [];
        R.cfg.township_codes.forEach(function (code, k) {
            var t = byCode[code];
            z.push(t ? t.score : 0);
            text.push(t ? townshipHover(t) : look.text[k]);
        });
        var T = R.cfg.traces.township;
        var patch = newPatch();
        patch.assign(["data", T, "z"], z);
        patch.assign(["data", T, "text"], text);
        patch.assign(["data", T, "colorscale"], R.cfg.risk_colorscale);
        patch.assign(["data", T, "zmin"], 0);
        patch.assign(["data", T, "zmax"], 100);
        var names = R.cfg.grid_text;
        patch.assign(["data", R.cfg.traces.grid, "text"], R.cfg.grid_parents.map(function (p, k) {
            var t = byCode[p];
            return t ? townshipHover(t) + "<br>所在网格：" + names[k] : names[k];
        }));
        patchMap(patch);
        setProps(R.cfg.ids.legend_time, {children: hm(Date.parse(data.as_of)) + " 更新"});
    }

    function leaveRisk() {
        var look = R.cfg.township_look;
        var T = R.cfg.traces.township;
        var patch = newPatch();
        patch.assign(["data", T, "z"], look.z);
        patch.assign(["data", T, "text"], look.text);
        patch.assign(["data", T, "colorscale"], look.colorscale);
        patch.assign(["data", R.cfg.traces.grid, "text"], R.cfg.grid_text);
        patchMap(patch);
    }

    // --- 热点 --------------------------------------------------------------------------------
    function toggleHotspots() {
        R.hotspotsOn = !R.hotspotsOn;
        if (R.hotspotsOn) {
            loadHotspots();
        } else {
            patchMap(newPatch().assign(["data", R.cfg.traces.hotspot, "visible"], false));
        }
        layerClass();
        return R.hotspotsOn;
    }

    function loadHotspots() {
        getJSON("/api/v1/hotspots?days=" + R.cfg.hotspot_days + "&cell=" + R.cfg.hotspot_cell)
            .then(applyHotspots).catch(function () { /* next refresh */ });
    }

    function hexHover(f, days) {
        var p = f.properties;
        var parts = Object.keys(p.by_type).sort(function (a, b) {
            return p.by_type[b] - p.by_type[a];
        }).map(function (code) {
            return esc(R.cfg.types[typeIndex(code)].label) + " " + p.by_type[code];
        });
        return "热点 · 近" + days + "天 <b>" + p.count + "</b> 起<br>" + parts.join(" · ");
    }

    function applyHotspots(data) {
        R.hotspotData = data;
        if (!R.hotspotsOn) { return; }
        var features = data.geojson.features;
        var H = R.cfg.traces.hotspot;
        var patch = newPatch();
        patch.assign(["data", H, "geojson"], data.geojson);
        patch.assign(["data", H, "locations"], features.map(function (f) { return f.id; }));
        patch.assign(["data", H, "z"], features.map(function (f) { return f.properties.count; }));
        patch.assign(["data", H, "text"], features.map(function (f) { return hexHover(f, data.days); }));
        patch.assign(["data", H, "zmax"], Math.max(1, data.max));
        patch.assign(["data", H, "visible"], true);
        patchMap(patch);
        setProps(R.cfg.ids.hotspot_note, {children: "最多 " + data.max + " 起/格"});
    }

    // --- 趋势 --------------------------------------------------------------------------------
    function loadTrends() {
        var span = R.span;
        getJSON("/api/v1/trends?span=" + span).then(function (data) {
            R.trendReloading = false;
            if (span === R.span) { applyTrends(data); }
        }).catch(function () { R.trendReloading = false; /* next refresh */ });
    }

    // The same text as wall_risk.summary.
    function summary(s) {
        var sum = s.sum;
        var change = sum.change === null ? "" :
            " · " + (sum.change >= 0 ? "+" : "") + Math.round(sum.change * 100) + "%";
        return (s.span === "24h" ? "近24小时" : "近30天") + " " + sum.current + " 起 · 上期同期 " +
            sum.previous_to_date + " 起" + change + "（柱：本期，虚线：上期）";
    }

    // Counts get integer ticks: the same step as layers/figures.count_dtick.
    function countDtick(top) {
        if (top <= 5) { return 1; }
        var raw = top / 5;
        var mag = Math.pow(10, Math.floor(Math.log10(raw)));
        var steps = [1, 2, 5, 10];
        for (var k = 0; k < steps.length; k++) {
            if (steps[k] * mag >= raw) { return Math.max(1, Math.round(steps[k] * mag)); }
        }
        return Math.max(1, Math.round(10 * mag));
    }

    // The server's answer with the live incidents taken into their buckets, as the KPI tiles
    // take them: for 近24小时 the current period is counted from the incidents the screen holds
    // (the map's own, window.cmdcenterLive.records(): the same window and statuses), for 近30天
    // the incidents received after the answer was made are added to it.
    function withLive(data) {
        var live = window.cmdcenterLive;
        if (!live || !live.records) { return data; }
        var step = data.unit === "day" ? DAY_MS : HOUR_MS;
        var start = Date.parse(data.start), end = Date.parse(data.end);
        var asOf = Date.parse(data.as_of);
        var own = data.span === "24h";
        var current = {};
        R.cfg.types.forEach(function (t) {
            current[t.code] = own ? data.labels.map(function () { return 0; })
                                  : (data.current[t.code] || []).slice();
        });
        live.records().forEach(function (r) {
            if (!(r.t >= start && r.t < end)) { return; }
            if (!own && !(Date.parse(r.received_at) > asOf)) { return; }
            var k = Math.floor((r.t - start) / step);
            var row = current[r.type] || current.other;
            if (row && k >= 0 && k < row.length) { row[k]++; }
        });
        var total = data.labels.map(function (_, k) {
            return R.cfg.types.reduce(function (sum, t) { return sum + current[t.code][k]; }, 0);
        });
        var now = total.reduce(function (a, b) { return a + b; }, 0);
        var before = data.sum.previous_to_date;
        return Object.assign({}, data, {
            current: current,
            total: {current: total, previous: data.total.previous},
            sum: Object.assign({}, data.sum, {
                current: now,
                change: before === 0 ? null : Math.round((now - before) / before * 10000) / 10000
            })
        });
    }

    function applyTrends(data) {
        R.trendData = data;
        drawTrends();
    }

    // (re)draw the panel from the last answer and the live incidents; a no-op when nothing changed
    function drawTrends() {
        if (!R || !R.trendData) { return; }
        if (serverNow() >= Date.parse(R.trendData.end) && !R.trendReloading) {
            // the running hour (or day) ended: the buckets move on
            R.trendReloading = true;
            loadTrends();
        }
        var shown = withLive(R.trendData);
        var top = 0;
        shown.total.current.forEach(function (n, k) {
            top = Math.max(top, n, shown.total.previous[k] || 0);
        });
        var key = JSON.stringify([shown.labels, shown.current, shown.total.previous,
                                  shown.sum.previous_to_date]);
        if (key === R.trendKey) { return; }
        R.trendKey = key;
        R.trendShown = shown;
        var patch = newPatch();
        R.cfg.types.forEach(function (t, k) {
            patch.assign(["data", k, "x"], shown.labels);
            patch.assign(["data", k, "y"], shown.current[t.code]);
            patch.assign(["data", k, "customdata"], shown.previous[t.code]);
        });
        var last = R.cfg.types.length;
        patch.assign(["data", last, "x"], shown.labels);
        patch.assign(["data", last, "y"], shown.total.previous);
        patch.assign(["layout", "yaxis", "dtick"], countDtick(top));
        patch.assign(["layout", "yaxis", "tick0"], 0);
        setProps(R.cfg.ids.trend_chart, {figure: patch.build()});
        setProps(R.cfg.ids.trend_summary, {children: summary(shown)});
    }

    // --- 回放 --------------------------------------------------------------------------------
    function periodMs(unit) {
        return unit === "day" ? DAY_MS : HOUR_MS;
    }

    // the first period the slider offers: (steps - 1) periods before the one holding now
    function sliderBase(unit) {
        var now = serverNow();
        var step = periodMs(unit);
        var floor = Math.floor((now + TZ_MS) / step) * step - TZ_MS;  // Shanghai boundaries
        return floor - (R.cfg.steps[unit] - 1) * step;
    }

    function sliderMarks(unit, base) {
        var marks = {};
        var n = R.cfg.steps[unit];
        for (var k = 0; k < n; k++) {
            var d = local(base + k * periodMs(unit));
            if (unit === "hour" && d.getUTCHours() % 6 === 0) {
                marks[String(k)] = d.getUTCHours() === 0
                    ? (d.getUTCMonth() + 1) + "/" + d.getUTCDate() : d.getUTCHours() + "时";
            } else if (unit === "day" && (n - 1 - k) % 5 === 0) {
                marks[String(k)] = (d.getUTCMonth() + 1) + "/" + d.getUTCDate();
            }
        }
        return marks;
    }

    function setSlider(unit, k) {
        var P = R.replay;
        P.unit = unit;
        P.base = sliderBase(unit);
        var n = R.cfg.steps[unit];
        setProps(R.cfg.ids.slider, {min: 0, max: n - 1, step: 1, value: k,
                                    marks: sliderMarks(unit, P.base)});
    }

    function replayTraces(patch, visible) {
        R.cfg.traces.replay.forEach(function (T) {
            patch.assign(["data", T, "lon"], []);
            patch.assign(["data", T, "lat"], []);
            patch.assign(["data", T, "customdata"], []);
            patch.assign(["data", T, "hovertext"], []);
            patch.assign(["data", T, "marker", "size"], []);
            if (visible !== undefined) { patch.assign(["data", T, "visible"], visible); }
        });
    }

    function enterReplay() {
        var patch = newPatch();
        R.cfg.traces.live.forEach(function (T) { patch.assign(["data", T, "visible"], false); });
        replayTraces(patch, true);
        patchMap(patch);
        var unit = R.replay.unit;
        var k = R.cfg.steps[unit] - 2;  // the last complete hour or day
        setSlider(unit, k);
        pick(k, true);
    }

    function leaveReplay() {
        pause();
        R.replay.key = null;
        var patch = newPatch();
        R.cfg.traces.live.forEach(function (T) { patch.assign(["data", T, "visible"], true); });
        replayTraces(patch, false);
        patchMap(patch);
    }

    function pick(k, force) {
        var P = R.replay;
        if (R.mode !== "replay" || k === null || k === undefined) { return; }
        var from = P.base + Number(k) * periodMs(P.unit);
        var to = from + periodMs(P.unit);
        var key = P.unit + ":" + from;
        if (key === P.key && !force) { return; }
        pause();
        P.key = key;
        P.k = Number(k);
        P.from = from;
        P.to = to;
        P.items = [];
        P.next = 0;
        P.clock = from;
        P.shown = [];
        P.ended = false;
        P.loaded = false;
        var reset = newPatch();
        replayTraces(reset);
        patchMap(reset);
        status("载入中…");
        var url = "/api/v1/replay?from=" + encodeURIComponent(iso(from)) + "&to=" +
            encodeURIComponent(iso(to));
        getJSON(url).then(function (data) {
            if (P.key !== key) { return; }  // another window was picked meanwhile
            P.items = data.items.map(function (inc) {
                return {inc: inc, t: Date.parse(inc.occurred_at)};
            });
            P.items.sort(function (a, b) { return (a.t - b.t) || (a.inc.seq - b.inc.seq); });
            P.truncated = !!data.truncated;
            P.loaded = true;
            status();
            play();
        }).catch(function () {
            if (P.key === key) { P.key = null; status("载入失败，请重选时段"); }
        });
    }

    function status(message) {
        var P = R.replay;
        var ids = R.cfg.ids;
        setProps(ids.clock, {children: "回放时刻 " + stamp(Math.min(P.clock, P.to))});
        var total = P.items.length + (P.truncated ? "+" : "");
        setProps(ids.progress, {children: message || ("已回放 " + P.next + " / " + total + " 起")});
        var last = P.next ? P.items[P.next - 1].inc : null;
        setProps(ids.latest, {children: last ? hm(Date.parse(last.occurred_at)) + " " +
            R.cfg.types[typeIndex(last.type)].label + " · " + last.title : ""});
    }

    function play() {
        var P = R.replay;
        if (!P.loaded || P.playing) { return; }
        if (P.ended) {  // play again from the start
            P.next = 0;
            P.clock = P.from;
            P.shown = [];
            P.ended = false;
            var reset = newPatch();
            replayTraces(reset);
            patchMap(reset);
        }
        P.playing = true;
        P.last = performance.now();
        P.timer = setInterval(tick, TICK_MS);
        setProps(R.cfg.ids.play, {children: "❚❚ 暂停"});
    }

    function pause() {
        var P = R.replay;
        if (P.timer) { clearInterval(P.timer); }
        P.timer = null;
        if (P.playing) {
            P.playing = false;
            setProps(R.cfg.ids.play, {children: P.ended ? "↻ 重播" : "▶ 播放"});
        }
    }

    function hover(inc) {
        var names = [];
        if (inc.township) { names.push(inc.township.name); }
        if (inc.grid) { names.push(inc.grid.name); }
        var place = (inc.outside || !names.length) ? "辖区外" : names.join(" / ");
        return "<b>" + esc(inc.title) + "</b><br>" + esc(inc.type_label) + " · " +
            esc(String(inc.occurred_at).slice(11, 16)) + "<br>" + esc(place);
    }

    function tick() {
        var P = R.replay;
        var now = performance.now();
        var rate = (P.to - P.from) / (P.seconds * 1000);  // replayed ms per real ms
        P.clock = Math.min(P.to, P.clock + (now - P.last) * rate);
        P.last = now;
        var groups = {};
        var s = scale();
        while (P.next < P.items.length && P.items[P.next].t <= P.clock) {
            var inc = P.items[P.next].inc;
            var k = typeIndex(inc.type);
            var g = groups[k] = groups[k] || {lon: [], lat: [], id: [], hover: [], size: []};
            var size = R.cfg.sizes[String(inc.severity)];
            g.lon.push(Number(inc.lon));
            g.lat.push(Number(inc.lat));
            g.id.push(inc.id);
            g.hover.push(hover(inc));
            g.size.push(Math.round((size === undefined ? R.cfg.default_size : size) * s));
            P.shown.push(inc.id);
            P.next++;
        }
        var keys = Object.keys(groups);
        if (keys.length) {
            var patch = newPatch();
            keys.forEach(function (k) {
                var T = R.cfg.traces.replay[Number(k)];
                var g = groups[k];
                patch.extend(["data", T, "lon"], g.lon);
                patch.extend(["data", T, "lat"], g.lat);
                patch.extend(["data", T, "customdata"], g.id);
                patch.extend(["data", T, "hovertext"], g.hover);
                patch.extend(["data", T, "marker", "size"], g.size);
            });
            patchMap(patch);
        }
        if (P.clock >= P.to) {
            P.ended = true;
            pause();
            status("回放结束 · 共 " + P.items.length + " 起");
            return;
        }
        status();
    }

    function setSpeed(seconds) {
        R.replay.seconds = Math.max(0.5, Number(seconds) || R.cfg.default_speed);
    }

    // --- start, screen size -------------------------------------------------------------------
    function fitCharts() {
        var font = Math.round(13 * scale());
        setProps(R.cfg.ids.trend_chart, {figure: newPatch().assign(["layout", "font", "size"], font)
            .build()});
    }

    function start(cfg) {
        if (!cfg) { return; }
        if (R) {
            R.timers.forEach(clearInterval);
            pause();
        }
        R = {
            cfg: cfg, offset: cfg.now - Date.now(), mode: "live", hotspotsOn: false, span: "24h",
            typeIndex: {}, timers: [], layerClass: null, riskData: null, hotspotData: null,
            trendData: null, trendShown: null, trendKey: null, trendReloading: false,
            replay: {unit: "hour", base: 0, key: null, items: [], next: 0, clock: 0, from: 0,
                     to: 0, shown: [], playing: false, ended: false, loaded: false, timer: null,
                     seconds: cfg.default_speed, truncated: false}
        };
        cfg.types.forEach(function (t, k) { R.typeIndex[t.code] = k; });
        setTimeout(fitCharts, 0);
        loadTrends();  // at once: from then on live incidents go into their buckets
        R.timers.push(setInterval(function () {
            // while the live connection is down the server is likely away: wait for it
            var live = window.cmdcenterLive;
            if (live && !live.connected()) { return; }
            loadTrends();
            if (R.mode === "risk") { loadRisk(); }
            if (R.hotspotsOn) { loadHotspots(); }
        }, cfg.refresh_ms));
        if (!resizeBound) {
            resizeBound = true;
            var pending = null;
            window.addEventListener("resize", function () {
                clearTimeout(pending);
                pending = setTimeout(function () { if (R) { fitCharts(); } }, 300);
            });
        }
    }

    // --- the clientside callbacks (command/web/wall_risk.py) ----------------------------------
    function triggered() {
        var ctx = window.dash_clientside.callback_context;
        return ctx && ctx.triggered_id;
    }

    // classes for a row of pattern-matched buttons: `on` is the key of the chosen one
    function rowClasses(key, on, extra) {
        var ctx = window.dash_clientside.callback_context;
        return ctx.inputs_list[0].map(function (item) {
            return "risk-btn" + (extra ? " " + extra : "") + (String(item.id[key]) === String(on)
                ? " is-on" : "");
        });
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenterRisk = {
        start: function (cfg) {
            start(cfg);
            return "态势一张图：实时 / 风险 / 回放";
        },
        mode: function () {
            var id = triggered();
            if (R && id && id.mode) { setMode(id.mode); }
            return rowClasses("mode", R ? R.mode : "live");
        },
        hotspots: function () {
            var on = R ? toggleHotspots() : false;
            return "risk-btn risk-toggle" + (on ? " is-on" : "");
        },
        span: function () {
            var id = triggered();
            if (R && id && id.span && id.span !== R.span) {
                R.span = id.span;
                loadTrends();
            }
            return rowClasses("span", R ? R.span : "24h");
        },
        unit: function () {
            var id = triggered();
            if (R && id && id.unit && id.unit !== R.replay.unit) {
                var k = R.cfg.steps[id.unit] - 2;
                setSlider(id.unit, k);
                pick(k, true);
            }
            return rowClasses("unit", R ? R.replay.unit : "hour");
        },
        pick: function (value) {
            if (R) { pick(value, false); }
            return "risk-slider";
        },
        play: function () {
            if (R) {
                if (R.replay.playing) { pause(); } else { play(); }
            }
            return "risk-btn replay-play";
        },
        speed: function () {
            var id = triggered();
            if (R && id && id.x) { setSpeed(id.x); }
            return rowClasses("x", R ? R.replay.seconds : 60);
        }
    };

    window.cmdcenterRisk = {
        mode: function () { return R ? R.mode : null; },
        setMode: function (mode) { setMode(mode); },
        hotspotsOn: function () { return !!(R && R.hotspotsOn); },
        risk: function () { return R ? R.riskData : null; },
        hotspots: function () { return R ? R.hotspotData : null; },
        trends: function () { return R ? R.trendData : null; },
        // what the panel shows: the answer with the live incidents in their buckets
        shownTrends: function () { return R ? R.trendShown : null; },
        live: function () { drawTrends(); },
        replay: {
            state: function () {
                if (!R) { return null; }
                var P = R.replay;
                return {unit: P.unit, k: P.k, from: P.from, to: P.to, total: P.items.length,
                        next: P.next, playing: P.playing, ended: P.ended, loaded: P.loaded,
                        clock: P.clock, seconds: P.seconds};
            },
            shown: function () { return R ? R.replay.shown.slice() : []; },
            pick: function (unit, k) {
                if (!R) { return; }
                setSlider(unit, k);
                pick(k, true);
            },
            play: function () { play(); },
            pause: function () { pause(); },
            speed: function (seconds) { setSpeed(seconds); }
        }
    };
}());
