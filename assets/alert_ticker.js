/*
 * The alert ticker on every screen (预警): the wall `/`, /command, /township and, compact and
 * read-only, the grid worker's phone /grid.
 *
 * It mounts on the element a page renders with `data-alert-ticker` (command/web/ticker.py:
 * mode wall | desk | phone, the user's role and unit, the alert seq at render time) and fills it
 * with plain DOM (text through textContent only: never interpreted as HTML). Nothing runs on a
 * page without that element.
 *
 * Data: GET /api/v1/alerts?status=open at mount, then the `alerts` events of the page's /live
 * socket (window.cmdcenterLive.socket() on the wall, window.cmdcenterDesk.socket() on the desks;
 * its own /live socket on the phone). Every alert is applied only when its seq is newer than the
 * one shown. `synced` is the seq up to which this page is sure it has every change: it advances
 * with GET answers and with pushed changes that follow it without a gap; on every (re)connect,
 * on a gap (county users see every seq) and every POLL_MS while connected (a unit's users see
 * only some seqs, so they cannot notice a gap) the page asks
 * GET /api/v1/alerts?status=all&since=<synced>: an alert missed while disconnected is never
 * missed for good.
 *
 * Shown: the live alerts that are still `open`, by level (红 橙 黄 蓝) and newest first within a
 * level, rotating page by page when there are more than fit (paused under the pointer and while
 * a form is open). Acknowledged ones leave the ticker and wait in a quieter 已确认 list until
 * they are resolved; dismissed and resolved ones leave. Clicking an alert focuses its incidents
 * (the map, the desk's detail, the lists).
 *
 * Acting: 确认 is one click; 忽略 asks for a note (required) in a small inline form; a
 * mass_gathering alert offers 合并 (merge its reports into one incident, the earliest by default).
 * The buttons are offered to county roles and to township staff on alerts of their unit; the
 * server decides (403 and its message are shown). POSTs carry X-CSRFToken from the `_csrf_token` cookie.
 *
 * Sound: while an unacknowledged red alert exists, a generated two-tone alarm (WebAudio, no file)
 * sounds at once and again every REPEAT_MS, on every screen whose switch is on (stored in
 * localStorage, on by default): a red alert asks for a person, and one tone is easily missed by
 * someone away from the screen; the acknowledgement on any screen silences all of them.
 * Browsers allow sound only after a gesture: the wall asks once (点击启用声音提示); on the
 * desks any click arms it. The phone stays silent (it beeps for new orders; see field.js).
 *
 * Test hooks: window.cmdcenterAlerts = {mode(), open(), acknowledged(), all(), synced(),
 *   connected(), tones(), audio(), sound()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var el = C.el, api = C.api, pad = C.pad, TZ_MS = C.TZ_MS;

    var LEVELS = {red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色"};
    var ORDER = {red: 0, orange: 1, yellow: 2, blue: 3};
    // rule names as the people in the center say them (the alert may bring its own `rule_label`)
    var RULES = {
        severity: "重大事件", mass_gathering: "群体性苗头", spike: "异常激增",
        repeat_place: "重复发生", feed_silence: "数据中断", overdue: "超时督办",
        escalated: "督办升级", matter_overdue: "事项督办", repeat_party: "重复来访",
        confirmation_window: "司法确认提醒"
    };
    var COUNTY = ["duty", "leader", "admin"];
    var SHOWN = {wall: 3, desk: 1, phone: 2};
    var ROTATE_MS = 8000;
    var POLL_MS = 30000;
    var REPEAT_MS = 30000;
    var RESTORE_MS = 60000;    // the wall's map goes back to the county view after a focus
    var MESSAGE_MS = 6000;
    var SOUND_KEY = "cmdcenter.alertSound";
    var SVG = "http://www.w3.org/2000/svg";

    var T = null;            // the mounted ticker's state
    var audio = null;        // one AudioContext per page, made after a gesture
    var tones = 0;
    var listening = false;

    // --- small helpers ----------------------------------------------------------------------
    function when(iso) {
        var t = Date.parse(iso);
        if (isNaN(t)) { return ""; }
        var d = new Date(t + TZ_MS);
        var hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
        var today = new Date(Date.now() + TZ_MS).toISOString().slice(0, 10);
        return d.toISOString().slice(0, 10) === today ? hm
            : (d.getUTCMonth() + 1) + "月" + d.getUTCDate() + "日 " + hm;
    }

    function isLive(a) { return a.status === "open" || a.status === "acknowledged"; }

    function byLevel(a, b) {
        var la = ORDER[a.level] === undefined ? 9 : ORDER[a.level];
        var lb = ORDER[b.level] === undefined ? 9 : ORDER[b.level];
        if (la !== lb) { return la - lb; }
        var ta = a.raised_at || "", tb = b.raised_at || "";
        return ta < tb ? 1 : ta > tb ? -1 : b.seq - a.seq;
    }

    function openAlerts() {
        if (!T) { return []; }
        return Array.from(T.alerts.values()).filter(function (a) { return a.status === "open"; }).sort(byLevel);
    }

    function ackedAlerts() {
        if (!T) { return []; }
        return Array.from(T.alerts.values()).filter(function (a) { return a.status === "acknowledged"; }).sort(byLevel);
    }

    function ruleName(a) { return a.rule_label || RULES[a.rule] || a.rule; }

    function levelName(a) { return a.level_label || LEVELS[a.level] || a.level; }

    function unitNames(a) {
        return (a.units || []).map(function (code) { return T.unitNames[code] || code; }).join("、");
    }

    // Buttons are offered where the server allows them (command/alerts/service.py `act`: county
    // roles, and township staff on alerts of their unit; grids and departments only see); it
    // decides, and its refusal is shown.
    function mayAct(a) {
        if (!T || T.mode === "phone") { return false; }
        return COUNTY.indexOf(T.role) >= 0 ||
            (T.role === "township" && !!T.unit && (a.units || []).indexOf(T.unit) >= 0);
    }

    function mayMerge(a) {
        return a.rule === "mass_gathering" && (a.incidents || []).length > 1 && COUNTY.indexOf(T.role) >= 0;
    }

    // --- the data -----------------------------------------------------------------------------
    function upsert(items, fromServer) {
        if (!T || !Array.isArray(items)) { return; }
        var changed = false;
        items.slice().sort(function (a, b) { return a.seq - b.seq; }).forEach(function (a) {
            if (!a || !a.id) { return; }
            var known = T.alerts.get(a.id);
            if (!fromServer && a.seq === T.synced + 1) { T.synced = a.seq; }  // no gap
            if (known && known.seq >= a.seq) { return; }
            changed = true;
            if (isLive(a)) { T.alerts.set(a.id, a); } else { T.alerts.delete(a.id); }
            var wasRed = known && known.status === "open" && known.level === "red";
            if (a.status === "open" && a.level === "red" && !wasRed) { T.newRed = true; }
            if (a.status === "open" && (!known || known.status !== "open")) { announce(a); }
            if (T.form && T.form.id === a.id && !isLive(a)) { T.form = null; }
        });
        if (changed) { render(); }
    }

    function seed() {
        var mine = T;
        api("GET", "/api/v1/alerts?status=open").then(function (items) {
            if (T !== mine) { return; }
            items.forEach(function (a) { if (a.seq > T.synced) { T.synced = a.seq; } });
            upsert(items, true);
            T.seeded = true;
            render();
        }).catch(function () { if (T === mine) { setTimeout(seed, 3000); } });
    }

    function catchUp() {
        if (!T || T.catching) { if (T) { T.again = true; } return; }
        var mine = T;
        T.catching = true;
        T.again = false;
        var from = T.synced;
        api("GET", "/api/v1/alerts?status=all&since=" + from).then(function (items) {
            if (T !== mine) { return; }
            var top = from;
            items.forEach(function (a) { if (a.seq > top) { top = a.seq; } });
            upsert(items, true);
            if (top > T.synced) { T.synced = top; }
            T.catching = false;
            if (T.again) { catchUp(); }
        }).catch(function () {
            if (T !== mine) { return; }
            T.catching = false;
            setTimeout(catchUp, 3000);
        });
    }

    function onAlerts(items) {
        if (!T || !Array.isArray(items) || !items.length) { return; }
        var first = items.reduce(function (m, a) { return Math.min(m, a.seq); }, Infinity);
        // county users see every alert, so a jump in seq means something went missing
        var gap = COUNTY.indexOf(T.role) >= 0 && first > T.synced + 1;
        upsert(items, false);
        if (gap) { catchUp(); }
    }

    function pageSocket() {
        if (T.mode === "wall") {
            return window.cmdcenterLive && window.cmdcenterLive.socket && window.cmdcenterLive.socket();
        }
        if (T.mode === "desk") {
            return window.cmdcenterDesk && window.cmdcenterDesk.socket && window.cmdcenterDesk.socket();
        }
        return null;
    }

    // The page's own /live socket when it has one (started and restarted by the page's script);
    // the phone page does not expose its socket, so the ticker opens one there.
    function hook() {
        var socket = pageSocket();
        if (!socket && T.mode === "phone") {
            if (!T.own) {
                T.own = window.io("/live", {transports: ["websocket"], path: "/socket.io",
                                            reconnectionDelay: 500, reconnectionDelayMax: 3000});
                T.own.on("disconnect", function (reason) {
                    if (reason !== "io server disconnect") { return; }  // no auto-reconnect then
                    setTimeout(function () { if (T && T.own) { T.own.connect(); } }, 1000);
                });
            }
            socket = T.own;
        }
        if (!socket || socket === T.socket) { return; }
        T.socket = socket;
        socket.on("alerts", onAlerts);
        socket.on("connect", catchUp);
        if (socket.connected) { catchUp(); }
    }

    // --- acting -------------------------------------------------------------------------------
    // Resolves true when the server took it (its answer is shown at once), false otherwise.
    function post(alertId, action, body, button) {
        if (button) { button.disabled = true; button.classList.add("is-busy"); }
        var mine = T;
        return api("POST", "/api/v1/alerts/" + encodeURIComponent(alertId) + "/" + action, body)
            .then(function (answer) {
                if (T !== mine) { return true; }
                T.form = null;
                var alert = answer && answer.alert ? answer.alert : answer;
                if (alert && alert.id) { upsert([alert], true); }
                say({ack: "预警已确认", dismiss: "预警已忽略", merge: "已合并为一起事件"}[action], "ok");
                return true;
            })
            .catch(function (err) {
                if (T !== mine) { return false; }
                if (button) { button.disabled = false; button.classList.remove("is-busy"); }
                var text = err.message;
                if (action === "merge" && (err.status === 404 || err.status === 405) && /action/.test(text)) {
                    text = "合并功能尚未启用";
                }
                say("操作未完成：" + text, "error");
                return false;
            });
    }

    function say(text, kind) {
        if (!T) { return; }
        T.message = {text: text, kind: kind || "ok"};
        clearTimeout(T.messageTimer);
        T.messageTimer = setTimeout(function () { if (T) { T.message = null; render(); } }, MESSAGE_MS);
        render();
    }

    function openForm(alertId, kind) {
        var a = T.alerts.get(alertId);
        if (!a) { return; }
        T.form = {id: alertId, kind: kind, into: null, error: null};
        if (kind === "merge") { loadCandidates(a); }
        T.focusDraft = alertId + ":" + kind;
        render();
    }

    // The incidents of a mass_gathering alert, with titles and times, earliest first.
    function loadCandidates(a) {
        var form = T.form;
        form.candidates = null;
        Promise.all((a.incidents || []).map(function (id) {
            return api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).catch(function () {
                return {id: id, title: id, occurred_at: ""};
            });
        })).then(function (list) {
            if (!T || T.form !== form) { return; }
            list.sort(function (x, y) {
                var tx = x.occurred_at || "", ty = y.occurred_at || "";
                return tx < ty ? -1 : tx > ty ? 1 : 0;  // stable: ties keep the alert's order
            });
            form.candidates = list;
            if (!form.into && list.length) { form.into = list[0].id; }
            render();
        });
    }

    function submitForm(button) {
        var form = T.form;
        if (!form) { return; }
        var note = (T.drafts[form.id + ":" + form.kind] || "").trim();
        if (form.kind === "dismiss") {
            if (!note) {
                form.error = "请填写忽略原因";
                T.focusDraft = form.id + ":dismiss";
                render();
                return;
            }
            post(form.id, "dismiss", {note: note}, button).then(function (done) {
                if (done && T) { delete T.drafts[form.id + ":dismiss"]; }
            });
        } else if (form.kind === "merge") {
            if (!form.into) { form.error = "请选择合并到的事件"; render(); return; }
            post(form.id, "merge", {into: form.into, note: note || null}, button);
        }
    }

    function onClick(ev) {
        if (!T || !(ev.target instanceof Element) || !T.root.contains(ev.target)) { return; }
        var act = ev.target.closest("[data-alert-act]");
        if (act) {
            ev.preventDefault();
            if (act.disabled) { return; }
            var kind = act.getAttribute("data-alert-act");
            var id = act.getAttribute("data-alert");
            if (kind === "ack") { post(id, "ack", {}, act); }
            else if (kind === "dismiss" || kind === "merge") { openForm(id, kind); }
            else if (kind === "submit") { submitForm(act); }
            else if (kind === "cancel") { T.form = null; render(); }
            else if (kind === "into" && T.form) {
                T.form.into = act.getAttribute("data-incident");
                T.form.error = null;
                render();
            }
            else if (kind === "expand") { T.expanded = !expanded(); T.form = null; render(); }
            else if (kind === "acked") { T.showAcked = !T.showAcked; render(); }
            else if (kind === "sound") { toggleSound(); }
            else if (kind === "unlock") { unlockAudio(); refreshSound(); }
            else if (kind === "page") { T.offset += Number(act.getAttribute("data-step")) * SHOWN[T.mode]; render(); }
            return;
        }
        if (ev.target.closest("[data-alert-form], [data-alert-brief]")) { return; }  // the link downloads
        var card = ev.target.closest("[data-alert-id], [data-acked-id]");
        if (card) {
            var a = T.alerts.get(card.getAttribute("data-alert-id") || card.getAttribute("data-acked-id"));
            if (a) { focusIncidents(a); }
        }
    }

    // Enter on an alert focuses its incidents; Escape closes a form, then the full list.
    function onKey(ev) {
        if (!T || !(ev.target instanceof Element) || !T.root.contains(ev.target)) { return; }
        if (ev.key === "Escape" && (T.form || T.expanded)) {
            if (T.form) { T.form = null; } else { T.expanded = false; }
            render();
        } else if (ev.key === "Enter" && ev.target.matches("[data-alert-id], [data-acked-id]")) {
            var a = T.alerts.get(ev.target.getAttribute("data-alert-id") || ev.target.getAttribute("data-acked-id"));
            if (a) { focusIncidents(a); }
        }
    }

    // --- focusing the incidents of an alert ----------------------------------------------------
    function focusIncidents(a) {
        var ids = (a.incidents || []).slice();
        if (!ids.length) { return; }
        if (T.mode === "desk" && window.cmdcenterDesk && window.cmdcenterDesk.select &&
            document.querySelector(".cc-command")) {
            window.cmdcenterDesk.select(ids[0]);
        }
        focusMap(ids);
        flash(ids);
    }

    function flash(ids) {
        ids.forEach(function (id, k) {
            var sel = '[data-incident-id="' + (window.CSS && CSS.escape ? CSS.escape(id) : id) + '"]';
            document.querySelectorAll(sel).forEach(function (item) {
                if (T.root.contains(item)) { return; }
                if (k === 0) { item.scrollIntoView({block: "nearest"}); }
                item.classList.remove("at-flash");
                void item.offsetWidth;  // restart the animation
                item.classList.add("at-flash");
                setTimeout(function () { item.classList.remove("at-flash"); }, 2600);
            });
        });
    }

    // The view goes into the figure itself (a Patch, as assets/wall.js fits the map to the screen):
    // a bare Plotly.relayout would be undone by the next patch of the page's markers.
    function viewMap(mapId, center, zoom) {
        var patch = new window.dash_clientside.Patch();
        patch.assign(["layout", "map", "center"], center);
        patch.assign(["layout", "map", "zoom"], Math.round(zoom * 100) / 100);
        window.dash_clientside.set_props(mapId, {figure: patch.build()});
    }

    function pageIncident(id) {
        var pages = [window.cmdcenterDesk, window.cmdcenterLive];
        for (var k = 0; k < pages.length; k++) {
            var rec = pages[k] && pages[k].incident && pages[k].incident(id);
            if (rec) { return rec; }
        }
        return null;
    }

    function focusMap(ids) {
        var mapId = ["situation-map", "command-map"].filter(function (id) {
            return document.getElementById(id);
        })[0];
        var plot = mapId && document.querySelector("#" + mapId + " .js-plotly-plot");
        if (!plot || !window.dash_clientside || !window.dash_clientside.Patch || !plot.data ||
            !plot.layout || !plot.layout.map) { return; }
        // where the page's own records place them (the map may not have drawn a marker that just
        // arrived yet), else where the map's markers are
        var want = {}, lons = [], lats = [];
        ids.forEach(function (id) {
            var rec = pageIncident(id);
            if (rec && rec.lon != null && rec.lat != null) {
                lons.push(Number(rec.lon));
                lats.push(Number(rec.lat));
            } else {
                want[id] = true;
            }
        });
        plot.data.forEach(function (tr) {
            (tr.customdata || []).forEach(function (cd, i) {
                if (typeof cd === "string" && want[cd] && tr.lon && tr.lat) {
                    lons.push(Number(tr.lon[i]));
                    lats.push(Number(tr.lat[i]));
                }
            });
        });
        if (!lons.length) { return; }
        var minx = Math.min.apply(null, lons), maxx = Math.max.apply(null, lons);
        var miny = Math.min.apply(null, lats), maxy = Math.max.apply(null, lats);
        var w = Math.max(maxx - minx, 0.004), hgt = Math.max(maxy - miny, 0.004);
        var zoom = Math.min(15, Math.log2(Math.max(plot.clientWidth, 100) * 360 / (512 * w * 1.6)),
                            Math.log2(Math.max(plot.clientHeight, 100) * 360 / (512 * hgt * 1.6 * 1.2)));
        var before = {center: Object.assign({}, plot.layout.map.center), zoom: plot.layout.map.zoom};
        var center = {lon: (minx + maxx) / 2, lat: (miny + maxy) / 2};
        viewMap(mapId, center, zoom);
        if (T.mode !== "wall") { return; }
        // an unattended wall goes back to the whole county, unless someone moved the map since
        if (!T.mapHome) { T.mapHome = before; }
        clearTimeout(T.restoreTimer);
        T.restoreTimer = setTimeout(function () {
            if (!T || !T.mapHome) { return; }
            var now = plot.layout && plot.layout.map;
            if (now && now.center && Math.abs(now.center.lon - center.lon) < 1e-6 &&
                Math.abs(now.center.lat - center.lat) < 1e-6) {
                viewMap(mapId, T.mapHome.center, T.mapHome.zoom);
            }
            T.mapHome = null;
        }, RESTORE_MS);
    }

    // --- sound --------------------------------------------------------------------------------
    function soundOn() {
        try { return window.localStorage.getItem(SOUND_KEY) !== "off"; } catch (e) { return true; }
    }

    function toggleSound() {
        var next = soundOn() ? "off" : "on";
        try { window.localStorage.setItem(SOUND_KEY, next); } catch (e) { /* private mode */ }
        if (next === "on") { unlockAudio(); T.lastTone = 0; }
        render();
    }

    function audioReady() { return !!audio && audio.state === "running"; }

    function unlockAudio() {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) { return; }
        if (!audio) { audio = new Ctx(); }
        if (audio.state === "suspended") {
            audio.resume().then(refreshSound, function () { /* still locked */ });
        }
    }

    // Two tones, three times (~1.3 s): unlike the grid phone's single beep for a new order.
    function alarm() {
        if (!audioReady()) { return false; }
        var t0 = audio.currentTime + 0.02;
        for (var k = 0; k < 6; k++) {
            var osc = audio.createOscillator(), gain = audio.createGain();
            var t = t0 + k * 0.22;
            osc.type = "triangle";
            osc.frequency.value = k % 2 ? 740 : 988;
            gain.gain.setValueAtTime(0.0001, t);
            gain.gain.exponentialRampToValueAtTime(0.4, t + 0.02);
            gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
            osc.connect(gain).connect(audio.destination);
            osc.start(t);
            osc.stop(t + 0.21);
        }
        tones++;
        return true;
    }

    function soundTick() {
        if (!T || T.mode === "phone") { return; }  // the phone beeps for orders (field.js), not here
        var red = openAlerts().some(function (a) { return a.level === "red"; });
        if (!red) { T.newRed = false; return; }
        if (!soundOn() || !audioReady()) { return; }
        var due = T.newRed || Date.now() - T.lastTone >= REPEAT_MS;
        if (due && alarm()) {
            T.newRed = false;
            T.lastTone = Date.now();
        }
    }

    // The prompt and the switch's hint follow the audio state in place (no rebuild: see render).
    function refreshSound() {
        if (!T || T.pressing) { return; }  // the prompt leaving would move the pressed button
        var ready = audioReady();
        var prompt = T.root.querySelector(".at-btn-unlock");
        if (prompt && (ready || !soundOn())) { prompt.remove(); }
        var sw = T.root.querySelector(".at-btn-sound");
        if (sw) { sw.title = soundTitle(soundOn(), ready); }
    }

    function soundTitle(on, ready) {
        return on ? (ready ? "红色预警声音提示：开（点击关闭）"
                           : "红色预警声音提示：开，点击页面任意处后生效（点击关闭）")
            : "红色预警声音提示：关（点击开启）";
    }

    function bellIcon(on) {
        var svg = document.createElementNS(SVG, "svg");
        svg.setAttribute("viewBox", "0 0 24 24");
        svg.setAttribute("aria-hidden", "true");
        svg.setAttribute("class", "at-bell");
        var path = document.createElementNS(SVG, "path");
        path.setAttribute("d", "M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zm-2 15a2 2 0 0 0 4 0");
        svg.appendChild(path);
        if (!on) {
            var slash = document.createElementNS(SVG, "path");
            slash.setAttribute("d", "M4 3l16 18");
            slash.setAttribute("class", "at-bell-slash");
            svg.appendChild(slash);
        }
        return svg;
    }

    // --- rendering ----------------------------------------------------------------------------
    function button(kind, label, alertId, cls) {
        var b = el("button", "at-btn" + (cls ? " " + cls : ""), label);
        b.type = "button";
        b.setAttribute("data-alert-act", kind);
        if (alertId) { b.setAttribute("data-alert", alertId); }
        return b;
    }

    function card(a, extra) {
        var c = el("div", "at-card level-" + a.level + (extra ? " " + extra : ""));
        c.setAttribute("data-alert-id", a.id);
        c.setAttribute("data-rule", a.rule);
        c.title = "点击定位相关事件";
        c.tabIndex = 0;
        var head = el("div", "at-head");
        head.appendChild(el("span", "at-level", levelName(a)));
        head.appendChild(el("span", "at-rule", ruleName(a)));
        var units = unitNames(a);
        if (units) { head.appendChild(el("span", "at-units", units)); }
        head.appendChild(el("span", "at-time", when(a.raised_at)));
        c.appendChild(head);
        var text = el("div", "at-text", a.message);
        text.title = a.message;
        c.appendChild(text);
        if (a.status === "acknowledged") {
            c.appendChild(el("div", "at-acked-by", "已确认：" + (a.acted_by || "") + " " + when(a.updated_at)));
        }
        if (mayAct(a)) {
            var acts = el("div", "at-acts");
            if (a.status === "open") {
                acts.appendChild(button("ack", "确认", a.id, "at-btn-ack"));
                acts.appendChild(button("dismiss", "忽略", a.id, "at-btn-quiet"));
            }
            if (mayMerge(a)) { acts.appendChild(button("merge", "合并", a.id, "at-btn-quiet")); }
            var draft = briefLink(a);
            if (draft) { acts.appendChild(draft); }
            if (acts.firstChild) { c.appendChild(acts); }
        }
        if (T.form && T.form.id === a.id) { c.appendChild(formOf(a)); }
        return c;
    }

    // A Ⅰ/Ⅱ级 incident's 情况报告 draft: its 专报 (or the next 续报) as a Word download.
    function briefLink(a) {
        if (a.rule !== "severity" || !(a.incidents || []).length || COUNTY.indexOf(T.role) < 0) { return null; }
        var link = el("a", "at-btn at-btn-quiet at-brief", "专报草稿");
        link.href = "/api/v1/briefs?format=docx&incident=" + encodeURIComponent(a.incidents[0]);
        link.setAttribute("data-alert-brief", a.id);
        link.title = "下载该事件的专报（已有专报时为续报），Word 格式";
        return link;
    }

    function formOf(a) {
        var form = T.form;
        var f = el("div", "at-form");
        f.setAttribute("data-alert-form", form.kind);
        if (form.kind === "merge") {
            f.appendChild(el("div", "at-form-title", "合并为一起事件，保留："));
            if (!form.candidates) {
                f.appendChild(el("div", "at-hint", "正在读取相关事件…"));
            } else {
                var list = el("div", "at-choices");
                form.candidates.forEach(function (inc, k) {
                    var b = button("into", "", a.id, "at-choice" + (form.into === inc.id ? " is-on" : ""));
                    b.setAttribute("data-incident", inc.id);
                    b.setAttribute("aria-pressed", form.into === inc.id ? "true" : "false");
                    b.appendChild(el("span", "at-choice-time", when(inc.occurred_at)));
                    b.appendChild(el("span", "at-choice-title", (inc.title || inc.id) + (k === 0 ? "（最早）" : "")));
                    list.appendChild(b);
                });
                f.appendChild(list);
            }
        }
        var box = el("textarea", "at-note");
        box.rows = 2;
        box.setAttribute("data-alert-field", "note");
        box.placeholder = form.kind === "dismiss" ? "忽略原因（必填，将记入审计）" : "合并说明（可选）";
        box.value = T.drafts[a.id + ":" + form.kind] || "";
        box.setAttribute("data-draft", a.id + ":" + form.kind);
        f.appendChild(box);
        if (form.error) { f.appendChild(el("div", "at-error", form.error)); }
        var row = el("div", "at-acts");
        row.appendChild(button("submit", form.kind === "dismiss" ? "确定忽略" : "确定合并", a.id,
                               form.kind === "dismiss" ? "at-btn-warn" : "at-btn-ack"));
        row.appendChild(button("cancel", "取消", a.id, "at-btn-quiet"));
        f.appendChild(row);
        return f;
    }

    function ackedList(list) {
        var box = el("div", "at-acked");
        box.appendChild(el("div", "at-acked-title", "已确认，待解除"));
        list.forEach(function (a) {
            if (T.form && T.form.id === a.id) {
                var full = card(a, "at-acked-card");
                full.removeAttribute("data-alert-id");  // the ticker's cards are the open ones
                full.setAttribute("data-acked-id", a.id);
                box.appendChild(full);
                return;
            }
            var row = el("div", "at-acked-item level-" + a.level);
            row.setAttribute("data-acked-id", a.id);
            row.appendChild(el("span", "at-level", levelName(a)));
            row.appendChild(el("span", "at-rule", ruleName(a)));
            row.appendChild(el("span", "at-acked-text", a.message));
            row.appendChild(el("span", "at-acked-by", (a.acted_by || "") + " " + when(a.updated_at)));
            if (mayAct(a) && mayMerge(a)) { row.appendChild(button("merge", "合并", a.id, "at-btn-quiet")); }
            box.appendChild(row);
        });
        return box;
    }

    function bar(open, acked) {
        var head = el("div", "at-bar");
        var counts = {};
        open.forEach(function (a) { counts[a.level] = (counts[a.level] || 0) + 1; });
        var title = el("span", "at-title" + (open.length ? " is-on" : ""),
                       T.mode === "phone" ? "本网格预警" : "预警");
        head.appendChild(title);
        var tally = el("span", "at-tally");
        if (!open.length) {
            tally.appendChild(el("span", "at-none", T.seeded ? "暂无未处理预警" : "读取中…"));
        }
        ["red", "orange", "yellow", "blue"].forEach(function (lv) {
            if (counts[lv]) {
                var chip = el("span", "at-count level-" + lv, LEVELS[lv].slice(0, 1) + " " + counts[lv]);
                chip.setAttribute("data-level-count", lv);
                tally.appendChild(chip);
            }
        });
        head.appendChild(tally);
        if (T.mode === "desk" && open.length && !expanded()) {
            var slot = el("div", "at-slot");
            var shown = page(open);
            shown.forEach(function (a) { slot.appendChild(card(a, "at-inline")); });
            head.appendChild(slot);
        } else if (T.mode === "desk") {
            head.appendChild(el("div", "at-slot"));
        }
        if (T.mode !== "phone") {
            if (open.length > SHOWN[T.mode] && !expanded()) {
                var pages = Math.ceil(open.length / SHOWN[T.mode]);
                var at = Math.floor(norm(open.length) / SHOWN[T.mode]) + 1;
                var pager = el("span", "at-pager");
                pager.appendChild(button("page", "‹", null, "at-btn-icon"));
                pager.lastChild.setAttribute("data-step", "-1");
                pager.lastChild.setAttribute("aria-label", "上一页");
                pager.appendChild(el("span", "at-page", at + "/" + pages));
                pager.appendChild(button("page", "›", null, "at-btn-icon"));
                pager.lastChild.setAttribute("data-step", "1");
                pager.lastChild.setAttribute("aria-label", "下一页");
                head.appendChild(pager);
            }
            if (open.length > SHOWN[T.mode] || expanded()) {
                var all = button("expand", expanded() ? "收起" : "全部 " + open.length, null, "at-btn-quiet");
                all.setAttribute("aria-expanded", expanded() ? "true" : "false");
                head.appendChild(all);
            }
            var ack = button("acked", "已确认 " + acked.length, null,
                             "at-btn-quiet at-acked-toggle" + (T.showAcked ? " is-on" : ""));
            ack.setAttribute("aria-expanded", T.showAcked ? "true" : "false");
            ack.disabled = !acked.length;
            head.appendChild(ack);
            var on = soundOn();
            if (on && !audioReady() && T.mode === "wall") {
                head.appendChild(button("unlock", "点击启用声音提示", null, "at-btn-unlock"));
            }
            var sound = button("sound", on ? "声音开" : "声音关", null, "at-btn-sound" + (on ? " is-on" : ""));
            sound.insertBefore(bellIcon(on), sound.firstChild);
            sound.setAttribute("aria-pressed", on ? "true" : "false");
            sound.title = soundTitle(on, audioReady());
            head.appendChild(sound);
        }
        return head;
    }

    // Every open alert is listed (not one page) when asked for, or while a form is open.
    function expanded() { return !!(T && (T.expanded || T.form)); }

    function norm(n) {
        var step = SHOWN[T.mode];
        var pages = Math.max(1, Math.ceil(n / step));
        T.offset = ((Math.floor(T.offset / step) % pages) + pages) % pages * step;
        return T.offset;
    }

    function page(open) {
        var step = SHOWN[T.mode];
        if (open.length <= step) { return open; }
        var from = norm(open.length);
        return open.slice(from, from + step);
    }

    // Rebuilding between a press and its click would take the pressed button away (the click
    // then goes nowhere): renders wait until the pointer is up again.
    function render() {
        if (!T || !document.body.contains(T.root)) { return; }
        if (T.pressing) { T.pending = true; return; }
        T.pending = false;
        var focused = T.focusDraft || (document.activeElement && T.root.contains(document.activeElement) ?
            document.activeElement.getAttribute("data-draft") : null);
        T.focusDraft = null;
        var open = openAlerts();
        var acked = ackedAlerts();
        if (T.form && !T.alerts.has(T.form.id)) { T.form = null; }
        if (T.form && T.alerts.get(T.form.id).status !== "open") { T.showAcked = true; }
        var wide = expanded();
        var root = T.root;
        root.textContent = "";
        root.classList.toggle("has-alerts", open.length > 0);
        root.classList.toggle("has-red", open.some(function (a) { return a.level === "red"; }));
        root.classList.toggle("is-expanded", wide);
        root.appendChild(bar(open, acked));
        if (T.mode !== "desk") {
            var cards = el("div", "at-cards");
            (wide ? open : page(open)).forEach(function (a) { cards.appendChild(card(a)); });
            root.appendChild(cards);
        }
        var drop = null;
        if (T.mode === "desk" && (wide || T.showAcked || T.message)) {
            drop = el("div", "at-drop");
            root.appendChild(drop);
        }
        var under = drop || root;
        if (T.mode === "desk" && wide) {
            var list = el("div", "at-cards");
            open.forEach(function (a) { list.appendChild(card(a)); });
            if (!open.length) { list.appendChild(el("div", "at-none", "暂无未处理预警")); }
            under.appendChild(list);
        }
        if (T.showAcked && acked.length && T.mode !== "phone") { under.appendChild(ackedList(acked)); }
        if (T.message) { under.appendChild(el("div", "at-message is-" + T.message.kind, T.message.text)); }
        if (focused) {
            var box = root.querySelector('[data-draft="' + focused + '"]');
            if (box) { box.focus(); box.selectionStart = box.selectionEnd = box.value.length; }
        }
        if (T.live) { root.appendChild(T.live); }
    }

    // New alerts are read out by screen readers from one hidden live region (not the rotation).
    function announce(a) {
        if (!T.live) {
            T.live = el("div", "at-sr");
            T.live.setAttribute("aria-live", "assertive");
        }
        T.live.textContent = "新预警：" + levelName(a) + " " + ruleName(a) + "，" + a.message;
    }

    // --- mounting -----------------------------------------------------------------------------
    function mount(root) {
        if (T) { unmount(); }
        T = {
            root: root, mode: root.getAttribute("data-alert-ticker") || "desk",
            role: root.getAttribute("data-role") || "", unit: root.getAttribute("data-unit") || "",
            synced: Number(root.getAttribute("data-alert-seq")) || 0,
            alerts: new Map(), unitNames: {}, drafts: {}, form: null, expanded: false,
            showAcked: false, offset: 0, hover: false, seeded: false, catching: false,
            again: false, newRed: false, lastTone: 0, message: null, socket: null, own: null,
            timers: [], live: null, mapHome: null, pressing: false, pending: false
        };
        if (!SHOWN[T.mode]) { T.mode = "desk"; }
        root.addEventListener("pointerdown", function () { if (T && T.root === root) { T.pressing = true; } });
        root.addEventListener("mouseenter", function () { if (T && T.root === root) { T.hover = true; } });
        root.addEventListener("mouseleave", function () { if (T && T.root === root) { T.hover = false; } });
        root.addEventListener("input", function (ev) {
            var key = ev.target.getAttribute && ev.target.getAttribute("data-draft");
            if (key && T) {
                T.drafts[key] = ev.target.value;
                if (T.form && T.form.error) { T.form.error = null; }
            }
        });
        // A wall started with autoplay allowed (kiosk: --autoplay-policy=no-user-gesture-required)
        // needs nobody to click; elsewhere the context stays suspended until the first gesture.
        if (T.mode === "wall" && soundOn()) { unlockAudio(); }
        render();
        seed();
        api("GET", "/api/v1/units").then(function (units) {
            if (!T || T.root !== root) { return; }
            units.forEach(function (u) { T.unitNames[u.code] = u.name; });
            render();
        }).catch(function () { /* codes are shown instead */ });
        T.timers.push(setInterval(function () {
            if (!T || T.hover || expanded()) { return; }
            if (openAlerts().length > SHOWN[T.mode]) { T.offset += SHOWN[T.mode]; render(); }
        }, ROTATE_MS));
        // while disconnected the reconnect catches up; polling then would only race it
        T.timers.push(setInterval(function () { if (T && T.socket && T.socket.connected) { catchUp(); } }, POLL_MS));
        T.timers.push(setInterval(soundTick, 1000));
    }

    function unmount() {
        T.timers.forEach(clearInterval);
        clearTimeout(T.messageTimer);
        clearTimeout(T.restoreTimer);
        if (T.socket) {
            T.socket.off("alerts", onAlerts);
            T.socket.off("connect", catchUp);
        }
        if (T.own) { T.own.removeAllListeners(); T.own.disconnect(); }
        T = null;
    }

    function watch() {
        var root = document.querySelector("[data-alert-ticker]");
        if (!root) { if (T) { unmount(); } return; }
        if (!T || T.root !== root) { mount(root); }
        hook();
        refreshSound();
    }

    if (!listening) {
        listening = true;
        // Any gesture on the page may start the audio (browsers allow sound only after one).
        var gesture = function () { if (T && T.mode !== "phone" && soundOn()) { unlockAudio(); } };
        document.addEventListener("pointerdown", gesture, true);
        document.addEventListener("keydown", gesture, true);
        document.addEventListener("click", onClick);
        document.addEventListener("keydown", onKey);
        var release = function () {
            setTimeout(function () {
                if (T && T.pressing) { T.pressing = false; if (T.pending) { render(); } }
            }, 0);
        };
        document.addEventListener("pointerup", release, true);
        document.addEventListener("pointercancel", release, true);
        setInterval(watch, 500);
    }

    window.cmdcenterAlerts = {
        mode: function () { return T ? T.mode : null; },
        open: function () { return openAlerts().map(function (a) { return a.id; }); },
        acknowledged: function () { return ackedAlerts().map(function (a) { return a.id; }); },
        all: function () { return T ? Array.from(T.alerts.values()) : []; },
        synced: function () { return T ? T.synced : null; },
        connected: function () { return !!(T && T.socket && T.socket.connected); },
        tones: function () { return tones; },
        audio: function () { return audio ? audio.state : "none"; },
        sound: function () { return soundOn(); }
    };
}());
