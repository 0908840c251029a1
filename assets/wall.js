/*
 * The wall screen's live updates (page `/`, command/web/pages/wall.py).
 *
 * The page arrives with its opening state (incidents of the last 24 h and `last_seq`) in the
 * store `wall-state`; a clientside callback hands it to `start`. From then on:
 *   - a socket.io client on `/live` receives `incidents` (ascending seq) into a buffer;
 *   - every FLUSH_MS the buffer is applied with dash_clientside.set_props + dash_clientside.Patch:
 *     new incidents extend their type's trace, changed ones are assigned by index, KPI tiles and
 *     the township chart get their new numbers; the feed lists are plain DOM drawn here (new
 *     items prepended, changed ones redrawn in place);
 *   - on (re)connect, on a seq gap and every POLL_MS it asks `since` from the highest seq it has,
 *     until the answer is empty, so nothing is lost while disconnected or filtered.
 * Every incident is applied only if its seq is larger than the one already shown (de-duplication
 * by id), so replays and re-broadcast changes update in place.
 *
 * A click on a marker or a list item opens a popup with the incident's facts and photos (read from REST).
 *
 * Test hooks: window.cmdcenterLive = {lastSeq(), count(), connected(), pending(), popup(id), receive(items),
 *   socket(), records(), windowStart()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var esc = C.esc, el = C.el, setProps = C.setProps, newPatch = C.newPatch, TZ_MS = C.TZ_MS;

    var FLUSH_MS = 250;
    var POLL_MS = 15000;
    var PRUNE_MS = 60000;
    var MAX_ASSIGNS = 50;  // more changes than this in one trace: assign the whole arrays

    var S = null;  // the page state, created by start()
    var socket = null;
    var timers = [];
    var resizeBound = false;

    // --- small helpers --------------------------------------------------------------------
    function serverNow() {
        return Date.now() + S.offset;
    }

    // The screen's "近24小时": the 24 hours of Asia/Shanghai ending with the one running now (the
    // trend panel's buckets, command/risk/trends.py), so the map, the township chart and the
    // trend panel count the same incidents.
    var HOUR_MS = 3600 * 1000;
    function windowStart() {
        var now = serverNow();
        return Math.floor((now + TZ_MS) / HOUR_MS) * HOUR_MS - TZ_MS - 23 * HOUR_MS;
    }

    // merged duplicates and false alarms stay on the map but are not counted (as on the server)
    var NOT_COUNTED = {merged: true, false_alarm: true};
    function counted(rec) {
        return !NOT_COUNTED[rec.status];
    }

    function shanghaiDay(ms) {
        return new Date(ms + TZ_MS).toISOString().slice(0, 10);
    }

    function typeIndex(code) {
        var k = S.typeIndex[code];
        return k === undefined ? S.typeIndex.other : k;
    }

    function toRecord(inc) {
        var occurred = String(inc.occurred_at || "");
        return {
            id: inc.id, seq: inc.seq, type: inc.type, type_label: inc.type_label,
            severity: inc.severity || 4, title: inc.title, occurred_at: occurred,
            received_at: inc.received_at, lon: Number(inc.lon), lat: Number(inc.lat),
            township: inc.township || null, grid: inc.grid || null, outside: !!inc.outside,
            status: inc.status || null,
            t: Date.parse(occurred), day: occurred.slice(0, 10),
            trace: -1, pos: -1
        };
    }

    function label(rec) {
        var t = S.cfg.types[typeIndex(rec.type)];
        return rec.type_label || t.label;
    }

    function unitNames(rec) {
        var names = [];
        if (rec.township) { names.push(rec.township.name); }
        if (rec.grid) { names.push(rec.grid.name); }
        return (rec.outside || !names.length) ? null : names.join(" / ");
    }

    // Where: township / grid, or outside with its coordinates.
    function place(rec) {
        return unitNames(rec) || ("辖区外 · " + rec.lon.toFixed(3) + "°E " + rec.lat.toFixed(3) + "°N");
    }

    // The same text as layers.figures.incident_hover (escaped: plotly renders hover as HTML).
    function hover(rec) {
        return "<b>" + esc(rec.title) + "</b><br>" + esc(label(rec)) + " · " +
            esc(rec.occurred_at.slice(11, 16)) + "<br>" + esc(unitNames(rec) || "辖区外");
    }

    function size(rec) {
        var s = S.cfg.sizes[String(rec.severity)];
        return Math.round((s === undefined ? S.cfg.default_size : s) * S.markerScale);
    }

    // --- feed lists ----------------------------------------------------------------------
    // Plain DOM, not Dash components: a Dash component costs a store subscription, and 200 items
    // of 8 components each made every later store update of the page slow (a burst of 2,000
    // reports kept the wall busy for half a minute; as DOM it takes about a second).
    // Reported more than half an hour after it happened (a phone's backlog coming in after the
    // signal returned): shown in its place with a 补报 tag, never flashed as news.
    var LATE_MS = 30 * 60 * 1000;
    function late(rec) {
        var received = Date.parse(rec.received_at || "");
        return isFinite(received) && isFinite(rec.t) && received - rec.t > LATE_MS;
    }

    function feedItem(rec, fresh) {
        var t = S.cfg.types[typeIndex(rec.type)];
        var today = shanghaiDay(serverNow());
        var when = rec.day === today ? rec.occurred_at.slice(11, 16)
            : rec.occurred_at.slice(5, 10) + " " + rec.occurred_at.slice(11, 16);
        var sev = rec.severity;
        var tardy = late(rec);
        var item = el("div", "feed-item sev-" + sev + (fresh && !tardy ? " is-new" : "") +
                      (tardy ? " is-late" : ""));
        item.style.setProperty("--type-color", t.color);
        item.setAttribute("data-incident-id", rec.id);
        var line = el("div", "feed-line");
        var badge = el("span", "sev-badge sev-" + sev, (S.cfg.numerals[String(sev)] || "") + "级");
        badge.style.setProperty("--sev-color", S.cfg.severity_colors[String(sev)] || "");
        line.append(el("span", "type-tag", label(rec)), badge,
                    el("span", "feed-title", String(rec.title)));
        var sub = el("div", "feed-line feed-sub");
        sub.append(el("span", "feed-place", place(rec)));
        if (tardy) { sub.append(el("span", "feed-late", "补报")); }
        sub.append(el("span", "feed-time", when));
        item.append(line, sub);
        return item;
    }

    // A capped list of incidents, newest first, drawn into the (childless) Dash Div `id`.
    function ListView(id, cap, ids) {
        this.id = id;
        this.cap = cap;
        this.ids = ids.slice();
        this.nodes = new Map();  // id -> element
        this.root = null;
    }

    // The list's element; drawn whole when it is new (first start, or Dash mounted it again).
    ListView.prototype.mount = function () {
        var root = document.getElementById(this.id);
        if (root && root !== this.root) {
            var self = this;
            self.root = root;
            self.nodes.clear();
            root.replaceChildren.apply(root, self.ids.map(function (id) {
                var node = feedItem(S.recs.get(id), false);
                self.nodes.set(id, node);
                return node;
            }));
            return null;  // all drawn
        }
        return root;
    };

    // added: records in ascending seq (shown newest first); changed: records to redraw in place;
    // removed: ids to take out.
    ListView.prototype.update = function (added, changed, removed) {
        var self = this;
        var gone = {};
        removed.forEach(function (id) { gone[id] = true; });
        var shown = added.slice(-self.cap);
        var fresh = shown.map(function (r) { return r.id; }).reverse();
        var next = fresh.concat(self.ids.filter(function (id) { return !gone[id]; }))
            .slice(0, self.cap);
        self.ids = next;
        var root = self.mount();
        if (!root) { return; }
        var keep = {};
        next.forEach(function (id) { keep[id] = true; });
        self.nodes.forEach(function (node, id) {
            if (!keep[id]) { node.remove(); self.nodes.delete(id); }
        });
        changed.forEach(function (rec) {
            var old = self.nodes.get(rec.id);
            if (old) {
                var node = feedItem(rec, true);
                old.replaceWith(node);
                self.nodes.set(rec.id, node);
            }
        });
        var top = document.createDocumentFragment();
        fresh.forEach(function (id) {
            if (self.nodes.has(id)) { return; }
            var node = feedItem(S.recs.get(id), true);
            self.nodes.set(id, node);
            top.appendChild(node);
        });
        root.insertBefore(top, root.firstChild);
    };

    // --- the map --------------------------------------------------------------------------
    function traceArrays(ids) {
        var a = {lon: [], lat: [], size: [], id: [], hover: []};
        ids.forEach(function (id) {
            var r = S.recs.get(id);
            a.lon.push(r.lon); a.lat.push(r.lat); a.size.push(size(r));
            a.id.push(r.id); a.hover.push(hover(r));
        });
        return a;
    }

    function place_on_trace(rec) {
        var k = typeIndex(rec.type);
        rec.trace = k;
        rec.pos = S.traces[k].length;
        S.traces[k].push(rec.id);
    }

    function take_off_trace(rec, rebuild) {
        var list = S.traces[rec.trace];
        var k = list.indexOf(rec.id);
        if (k >= 0) { list.splice(k, 1); }
        rebuild[rec.trace] = true;
    }

    function mapPatch(before, dirty, rebuild) {
        var patch = newPatch();
        var ops = 0;
        var off = S.cfg.trace_offset;
        S.traces.forEach(function (ids, k) {
            var T = off + k;
            var positions = Object.keys(dirty[k] || {});
            if (positions.length > MAX_ASSIGNS) { rebuild[k] = true; }
            if (rebuild[k]) {
                ids.forEach(function (id, pos) { S.recs.get(id).pos = pos; });
                var all = traceArrays(ids);
                patch.assign(["data", T, "lon"], all.lon);
                patch.assign(["data", T, "lat"], all.lat);
                patch.assign(["data", T, "marker", "size"], all.size);
                patch.assign(["data", T, "customdata"], all.id);
                patch.assign(["data", T, "hovertext"], all.hover);
                ops++;
                return;
            }
            positions.forEach(function (p) {
                var r = S.recs.get(ids[Number(p)]);
                var pos = Number(p);
                patch.assign(["data", T, "lon", pos], r.lon);
                patch.assign(["data", T, "lat", pos], r.lat);
                patch.assign(["data", T, "marker", "size", pos], size(r));
                patch.assign(["data", T, "hovertext", pos], hover(r));
                ops++;
            });
            if (ids.length > before[k]) {
                var add = traceArrays(ids.slice(before[k]));
                patch.extend(["data", T, "lon"], add.lon);
                patch.extend(["data", T, "lat"], add.lat);
                patch.extend(["data", T, "marker", "size"], add.size);
                patch.extend(["data", T, "customdata"], add.id);
                patch.extend(["data", T, "hovertext"], add.hover);
                ops++;
            }
        });
        if (ops) { setProps(S.cfg.ids.situation_map, {figure: patch.build()}); }
    }

    // --- KPI tiles and the township chart -------------------------------------------------
    function refreshNumbers() {
        var ids = S.cfg.ids;
        var today = shanghaiDay(serverNow());
        var k = {};
        k[ids.kpi_total] = 0; k[ids.kpi_emergency] = 0; k[ids.kpi_mass] = 0;
        k[ids.kpi_public_safety] = 0; k[ids.kpi_major] = 0; k[ids.kpi_outside] = 0;
        var towns = S.cfg.townships;
        var types = S.cfg.types;
        var counts = types.map(function () { return towns.map(function () { return 0; }); });
        var shown = 0;
        S.recs.forEach(function (r) {
            if (!counted(r)) { return; }
            shown++;
            var t = S.townIndex[r.township ? r.township.code : ""];
            if (t !== undefined) { counts[typeIndex(r.type)][t]++; }
            if (r.day !== today) { return; }
            k[ids.kpi_total]++;
            if (r.type === "emergency") { k[ids.kpi_emergency]++; }
            if (r.type === "mass") { k[ids.kpi_mass]++; }
            if (r.type === "public_safety") { k[ids.kpi_public_safety]++; }
            if (r.severity <= 2) { k[ids.kpi_major]++; }
            if (r.outside) { k[ids.kpi_outside]++; }
        });
        Object.keys(k).forEach(function (id) {
            if (S.kpis[id] !== k[id]) {
                S.kpis[id] = k[id];
                setProps(id, {children: String(k[id])});
            }
        });
        if (S.shownCount !== shown) {
            S.shownCount = shown;
            setProps(ids.map_count, {children: String(shown)});
        }
        if (window.cmdcenterRisk && window.cmdcenterRisk.live) { window.cmdcenterRisk.live(); }
        // largest township on top (the y axis is reversed), ties by code as on the server
        var totals = towns.map(function (_, t) {
            return counts.reduce(function (sum, row) { return sum + row[t]; }, 0);
        });
        var order = towns.map(function (_, t) { return t; }).sort(function (a, b) {
            return (totals[b] - totals[a]) || (towns[a][0] < towns[b][0] ? -1 : 1);
        });
        var names = order.map(function (t) { return towns[t][1]; });
        var xs = counts.map(function (row) { return order.map(function (t) { return row[t]; }); });
        var key = JSON.stringify([names, xs]);
        if (key === S.chartKey) { return; }
        S.chartKey = key;
        var patch = newPatch();
        xs.forEach(function (x, k2) {
            patch.assign(["data", k2, "y"], names);
            patch.assign(["data", k2, "x"], x);
        });
        setProps(ids.township_chart, {figure: patch.build()});
    }

    // --- applying a batch -----------------------------------------------------------------
    function flush(prune) {
        if (!S || (!S.queue.length && !prune)) { return; }
        var latest = new Map();
        S.queue.forEach(function (inc) {
            var seen = latest.get(inc.id);
            if (!seen || seen.seq < inc.seq) { latest.set(inc.id, inc); }
        });
        S.queue = [];
        var items = Array.from(latest.values()).sort(function (a, b) { return a.seq - b.seq; });
        var horizon = windowStart();
        var before = S.traces.map(function (ids) { return ids.length; });
        var dirty = {}, rebuild = {};
        var added = [], changed = [], removed = [];
        var outAdded = [], outChanged = [], outRemoved = [];

        items.forEach(function (inc) {
            var old = S.recs.get(inc.id);
            if (old && inc.seq <= old.seq) { return; }
            var rec = toRecord(inc);
            var inWindow = !(rec.t < horizon);
            if (!old) {
                if (!inWindow) { return; }
                S.recs.set(rec.id, rec);
                place_on_trace(rec);
                added.push(rec);
                if (rec.outside) { outAdded.push(rec); }
                return;
            }
            if (!inWindow) {
                take_off_trace(old, rebuild);
                S.recs.delete(old.id);
                removed.push(old.id);
                outRemoved.push(old.id);
                return;
            }
            S.recs.set(rec.id, rec);
            if (typeIndex(rec.type) !== old.trace) {
                take_off_trace(old, rebuild);
                place_on_trace(rec);
                rebuild[rec.trace] = true;
            } else {
                rec.trace = old.trace;
                rec.pos = old.pos;
                if (old.pos < before[old.trace]) {
                    (dirty[old.trace] = dirty[old.trace] || {})[old.pos] = true;
                }
            }
            changed.push(rec);
            if (rec.outside && !old.outside) { outAdded.push(rec); }
            else if (!rec.outside && old.outside) { outRemoved.push(rec.id); }
            else if (rec.outside) { outChanged.push(rec); }
        });

        if (prune) {  // incidents that left the 24-hour window since the page opened
            S.recs.forEach(function (rec) {
                if (rec.t < horizon) {
                    take_off_trace(rec, rebuild);
                    S.recs.delete(rec.id);
                    removed.push(rec.id);
                    outRemoved.push(rec.id);
                }
            });
        }
        if (!added.length && !changed.length && !removed.length) {
            if (prune) { refreshNumbers(); }
            return;
        }
        mapPatch(before, dirty, rebuild);
        if (S.popupId && changed.some(function (r) { return r.id === S.popupId; })) {
            showPopup(S.popupId);  // a photo arrived, its state moved: the popup follows
        }
        S.feed.update(added, changed, removed);
        S.outside.update(outAdded, outChanged, outRemoved);
        refreshNumbers();
    }

    function enqueue(items) {
        if (!items || !items.length) { return; }
        for (var i = 0; i < items.length; i++) {
            S.queue.push(items[i]);
            if (items[i].seq > S.lastSeq) { S.lastSeq = items[i].seq; }
        }
    }

    // --- catching up with `since` ---------------------------------------------------------
    function catchUp(from) {
        S.catchFrom = S.catchFrom === null ? from : Math.min(S.catchFrom, from);
        if (!S.catching) { askSince(); }
    }

    function askSince() {
        if (!socket || !socket.connected || S.catchFrom === null) {
            S.catching = false;
            return;
        }
        S.catching = true;
        var from = S.catchFrom;
        S.catchFrom = null;
        socket.timeout(10000).emit("since", {seq: from}, function (err, answer) {
            if (err || !answer || answer.error || !Array.isArray(answer.items)) {
                S.catching = false;
                S.catchFrom = S.catchFrom === null ? from : Math.min(S.catchFrom, from);
                setTimeout(function () { if (!S.catching) { askSince(); } }, 2000);
                return;
            }
            enqueue(answer.items);
            if (answer.items.length >= C.SINCE_PAGE) {  // a shorter page: the rest comes live
                var next = answer.last_seq;
                S.catchFrom = S.catchFrom === null ? next : Math.min(S.catchFrom, next);
            }
            askSince();
        });
    }

    // --- the connection -------------------------------------------------------------------
    function status(text, className) {
        setProps(S.cfg.ids.live_status, {children: text, className: "live-status " + className});
    }

    function connect() {
        socket = window.io("/live", {
            transports: ["websocket"], path: "/socket.io",
            reconnectionDelay: 500, reconnectionDelayMax: 3000
        });
        socket.on("connect", function () {
            status("实时连接", "is-ok");
            catchUp(S.lastSeq);
        });
        socket.on("disconnect", function (reason) {
            status("连接中断 · 重连中", "is-down");
            if (reason === "io server disconnect") {  // the server closed it: no auto-reconnect
                setTimeout(function () { socket.connect(); }, 1000);
            }
        });
        socket.on("connect_error", function () {
            status("连接中断 · 重连中", "is-down");
        });
        socket.on("incidents", function (items) {
            if (!Array.isArray(items) || !items.length) { return; }
            if (items[0].seq > S.lastSeq + 1) { catchUp(S.lastSeq); }  // missed something
            enqueue(items);
        });
    }

    // --- the clock and the screen size ----------------------------------------------------
    var WEEKDAYS = "日一二三四五六";

    function tickClock() {
        var d = new Date(serverNow() + TZ_MS);  // read with UTC getters = Shanghai wall time
        var pad = function (n) { return (n < 10 ? "0" : "") + n; };
        var time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
        var date = d.getUTCFullYear() + "年" + (d.getUTCMonth() + 1) + "月" + d.getUTCDate() +
            "日 星期" + WEEKDAYS[d.getUTCDay()];
        setProps(S.cfg.ids.clock_time, {children: time});
        if (date !== S.date) {
            S.date = date;
            setProps(S.cfg.ids.clock_date, {children: date});
        }
    }

    // Chart text and the map zoom follow the screen: 1920 px wide is the design size.
    function fitScreen() {
        var scale = Math.max(0.7, Math.min(3, window.innerWidth / 1920));
        var font = Math.round(S.cfg.chart_font * scale);
        var chart = newPatch().assign(["layout", "font", "size"], font);
        setProps(S.cfg.ids.township_chart, {figure: chart.build()});
        var patch = newPatch().assign(["layout", "legend", "font", "size"], font);
        patch.assign(["layout", "hoverlabel", "font", "size"], font);
        if (S.markerScale !== scale) {  // marker sizes are pixels: grow them with the screen
            S.markerScale = scale;
            S.traces.forEach(function (ids, k) {
                patch.assign(["data", S.cfg.trace_offset + k, "marker", "size"],
                             ids.map(function (id) { return size(S.recs.get(id)); }));
            });
        }
        var el = document.getElementById(S.cfg.ids.situation_map);
        var b = S.cfg.bounds;
        if (el && b && el.clientWidth > 0 && el.clientHeight > 0) {
            var merc = function (lat) {
                return Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360)) * 180 / Math.PI;
            };
            var w = Math.max(b[2] - b[0], 1e-4), h = Math.max(merc(b[3]) - merc(b[1]), 1e-4);
            var zoom = Math.min(Math.log2(el.clientWidth * 360 / (512 * w)),
                                Math.log2(el.clientHeight * 360 / (512 * h))) - 0.15;
            patch.assign(["layout", "map", "zoom"], Math.round(zoom * 100) / 100);
            patch.assign(["layout", "map", "center"], {lon: (b[0] + b[2]) / 2, lat: (b[1] + b[3]) / 2});
        }
        setProps(S.cfg.ids.situation_map, {figure: patch.build()});
    }

    // --- the map's ground (assets/map_ground.js: why it is painted in MapLibre) -------------
    function darkenMap() {
        return window.cmdcenterPaintGround(S.cfg.ids.situation_map, S.cfg.map_background);
    }

    function whenMapExists(tries) {
        if (!S || tries <= 0) { return; }
        var bound = bindMapClicks();
        if (darkenMap() && bound) { return; }
        setTimeout(function () { whenMapExists(tries - 1); }, 50);
    }

    // --- the popup: one incident's facts and its photos (a click on the map or the list) ---
    function showPopup(id) {
        S.popupId = id;
        C.api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).then(function (inc) {
            if (S.popupId === id) { renderPopup(inc); }
        }, function (err) {
            if (S.popupId === id) { renderPopup(null, err.message); }
        });
    }

    function closePopup() {
        S.popupId = null;
        var box = document.getElementById("wall-popup");
        if (box) { box.remove(); }
    }

    function renderPopup(inc, error) {
        var box = document.getElementById("wall-popup");
        if (!box) {
            box = el("div", "wall-popup");
            box.id = "wall-popup";
            box.setAttribute("role", "dialog");
            box.setAttribute("aria-label", "事件详情");
            document.body.appendChild(box);
        }
        box.replaceChildren();
        var close = el("button", "wall-popup-close", "×");
        close.type = "button";
        close.setAttribute("aria-label", "关闭");
        close.onclick = closePopup;
        box.appendChild(close);
        if (!inc) {
            box.appendChild(el("div", "wall-popup-error", "读取事件失败：" + error));
            return;
        }
        var rec = toRecord(inc);
        var sev = rec.severity;
        var head = el("div", "wall-popup-head");
        var badge = el("span", "sev-badge sev-" + sev, (S.cfg.numerals[String(sev)] || "") + "级");
        badge.style.setProperty("--sev-color", S.cfg.severity_colors[String(sev)] || "");
        var tag = el("span", "type-tag", label(rec));
        tag.style.setProperty("--type-color", S.cfg.types[typeIndex(rec.type)].color);
        head.append(tag, badge, el("span", "wall-popup-status", inc.status_label || ""));
        if (late(rec)) { head.append(el("span", "feed-late", "补报")); }
        box.append(head, el("div", "wall-popup-title", String(inc.title)));
        var who = [inc.channel_label, inc.reporter_user || inc.feed].filter(Boolean).join(" · ");
        box.appendChild(el("div", "wall-popup-meta", place(rec) + " · " + rec.occurred_at.slice(5, 16).replace("T", " ") +
                                                     (who ? " · " + who : "") + (inc.case_no ? " · " + inc.case_no : "")));
        if (inc.description) { box.appendChild(el("div", "wall-popup-desc", String(inc.description))); }
        var photos = inc.photos || [];
        var strip = el("div", "wall-popup-photos");
        if (!photos.length) { strip.appendChild(el("span", "wall-popup-none", "暂无现场照片")); }
        photos.forEach(function (p, k) {
            var a = el("a", "wall-popup-photo");
            a.href = p.url;
            a.target = "_blank";
            a.rel = "noopener";
            var img = el("img");
            img.src = p.thumb_url;
            img.alt = "现场照片 " + (k + 1);
            a.appendChild(img);
            strip.appendChild(a);
        });
        box.appendChild(strip);
    }

    function bindMapClicks() {
        var root = document.getElementById(S.cfg.ids.situation_map);
        var gd = root && (root.classList.contains("js-plotly-plot") ? root : root.querySelector(".js-plotly-plot"));
        if (!gd || !gd.on || gd.__ccPopup) { return !!(gd && gd.__ccPopup); }
        gd.__ccPopup = true;
        gd.on("plotly_click", function (ev) {
            var point = ev && ev.points && ev.points[0];
            var id = point && point.customdata;
            if (S && id && S.recs.has(id)) { showPopup(id); }
        });
        return true;
    }

    // --- start ----------------------------------------------------------------------------
    function start(cfg) {
        if (!cfg) { return; }
        timers.forEach(clearInterval);
        timers = [];
        S = {
            cfg: cfg, offset: cfg.now - Date.now(), lastSeq: cfg.last_seq, queue: [],
            recs: new Map(), traces: cfg.types.map(function () { return []; }),
            typeIndex: {}, townIndex: {}, kpis: {}, chartKey: null, shownCount: null,
            catchFrom: null, catching: false, date: null, markerScale: 1
        };
        cfg.types.forEach(function (t, k) { S.typeIndex[t.code] = k; });
        cfg.townships.forEach(function (t, k) { S.townIndex[t[0]] = k; });
        // the figure holds cfg.incidents in this order (layers.figures.incident_traces)
        cfg.incidents.forEach(function (inc) {
            var rec = toRecord(inc);
            S.recs.set(rec.id, rec);
            place_on_trace(rec);
        });
        S.feed = new ListView(cfg.ids.incident_feed, cfg.feed_cap, cfg.feed);
        S.outside = new ListView(cfg.ids.outside_feed, cfg.outside_cap, cfg.outside);
        S.feed.mount();
        S.outside.mount();
        refreshNumbers();
        tickClock();
        setTimeout(fitScreen, 0);
        whenMapExists(400);
        timers.push(setInterval(function () { flush(false); }, FLUSH_MS));
        timers.push(setInterval(function () { catchUp(S.lastSeq); }, POLL_MS));
        timers.push(setInterval(function () { flush(true); }, PRUNE_MS));
        timers.push(setInterval(tickClock, 1000));
        if (!resizeBound) {
            resizeBound = true;
            document.addEventListener("click", function (ev) {
                var t = ev.target;
                if (!S || !(t instanceof Element)) { return; }
                var item = t.closest(".feed-item[data-incident-id]");
                if (item) { showPopup(item.getAttribute("data-incident-id")); return; }
                if (!t.closest("#wall-popup") && !t.closest(".js-plotly-plot")) { closePopup(); }
            });
            document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { closePopup(); } });
            var pending = null;
            window.addEventListener("resize", function () {
                clearTimeout(pending);
                pending = setTimeout(function () { if (S) { fitScreen(); } }, 300);
            });
        }
        if (socket) {
            if (socket.connected) { status("实时连接", "is-ok"); catchUp(S.lastSeq); }
        } else {
            connect();
        }
        // the matter tiles (assets/wall_matters.js) read the figures; they listen on this socket
        if (window.cmdcenterWallMatters) { window.cmdcenterWallMatters.start(cfg, socket); }
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenter = {
        start: function (cfg) {
            start(cfg);
            return "实时数据连接（Socket.IO /live）";
        }
    };

    window.cmdcenterLive = {
        lastSeq: function () { return S ? S.lastSeq : null; },
        count: function () { return S ? S.recs.size : 0; },
        connected: function () { return !!(socket && socket.connected); },
        pending: function () { return S ? S.queue.length : 0; },
        popup: function (id) { showPopup(id); },
        // hand incidents to the page as if `/live` had sent them (tests of in-place updates)
        receive: function (items) { if (S) { enqueue(items); } },
        socket: function () { return socket; },
        // one incident as the screen holds it (the alert ticker centres the map on it)
        incident: function (id) { return S ? S.recs.get(id) || null : null; },
        // the counted incidents of the screen's 近24小时 ({t, type, received_at}), for the trend panel
        records: function () {
            var out = [];
            if (S) { S.recs.forEach(function (r) { if (counted(r)) { out.push(r); } }); }
            return out;
        },
        windowStart: function () { return S ? windowStart() : null; }
    };
}());
