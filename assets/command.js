/*
 * The command desks: `/command` (leaders, duty officers; command/web/pages/command.py) and
 * `/township` (townships, departments; command/web/pages/township.py).
 *
 * Each page arrives with its opening state in a store; a clientside callback hands it to
 * `startCommand` / `startTownship`. Nothing runs on other pages. From then on:
 *   - Socket.IO `/live` brings incidents (ascending seq; a gap or a reconnect asks `since` until
 *     the answer is empty) and, on /command, order-node changes;
 *   - /township listens on `/field` for its nodes and sends `delivered` receipts;
 *   - on every (re)connect the nodes are read again with GET /api/v1/orders and merged by seq,
 *     so nothing changed while disconnected is missed;
 *   - the selected incident's detail (timeline, order tree, allowed moves) is read with
 *     GET /api/v1/incidents/{id} whenever a pushed change touches it;
 *   - actions are REST calls (`fetch` with the X-CSRFToken header); the server decides what is
 *     allowed and its message is shown as it is.
 * Components are changed with dash_clientside.set_props; clicks inside them are caught by one
 * delegated listener (elements with `data-act`). Free text lives in uncontrolled textareas.
 *
 * Test hooks: window.cmdcenterDesk = {connected(), selected(), detail(), nodes()}; the alert
 * ticker uses socket() and select(id).
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var h = C.h, setProps = C.setProps, newPatch = C.newPatch, api = C.api, hhmm = C.hhmm;
    var TZ_MS = C.TZ_MS;

    var FLUSH_MS = 300;
    var TICK_MS = 15000;  // elapsed times and overdue marks are redrawn this often (local clock)
    var OPEN = ["issued", "delivered", "acknowledged", "in_progress", "returned"];
    var LEVEL_LABELS = {township: "乡镇", grid: "网格", dept: "部门", county: "县"};
    var MOVE_VERBS = {
        accepted: "受理", dispatched: "派遣", in_progress: "转入处置", responded: "反馈办结情况",
        verified: "核查结案", followed_up: "回访", closed: "归档", escalated: "上报升级",
        merged: "合并到其他事件", false_alarm: "标记误报"
    };
    var LIMIT_CHOICES = [5, 10, 15, 30, 60, 120, 240, 480, 1440];

    var S = null;       // the page state
    var live = null;    // socket on /live
    var field = null;   // socket on /field (township desk)
    var timers = [];
    var listening = false;

    // --- helpers ----------------------------------------------------------------------------
    function now() { return Date.now() + S.offset; }

    function when(iso) {
        var t = Date.parse(iso);
        if (isNaN(t)) { return ""; }
        var day = new Date(t + TZ_MS).toISOString().slice(0, 10);
        var today = new Date(now() + TZ_MS).toISOString().slice(0, 10);
        return day === today ? hhmm(iso) : day.slice(5) + " " + hhmm(iso);
    }

    function span(ms) {
        var m = Math.max(0, Math.round(ms / 60000));
        if (m < 60) { return m + "分钟"; }
        if (m < 1440) { return Math.floor(m / 60) + "小时" + (m % 60 ? (m % 60) + "分" : ""); }
        return Math.floor(m / 1440) + "天" + (Math.floor(m % 1440 / 60) ? Math.floor(m % 1440 / 60) + "小时" : "");
    }

    // A node's time against its limits: {text, overdue}.
    function timing(node) {
        var t = now();
        var created = Date.parse(node.created_at);
        var stamp = function (state) {
            for (var i = node.history.length - 1; i >= 0; i--) {
                if (node.history[i].state === state) { return Date.parse(node.history[i].at); }
            }
            return NaN;
        };
        if (node.state === "completed") {
            var done = stamp("completed");
            var late = done > Date.parse(node.due_by);
            return {text: "办结于 " + hhmm(node.history[node.history.length - 1].at) + " · 用时 " +
                    span(done - created) + (late ? "（超时办结）" : ""), overdue: false};
        }
        if (node.state === "cancelled") { return {text: "已撤销", overdue: false}; }
        if (node.state === "returned") { return {text: "已退回，待上级重新下达或撤销", overdue: false}; }
        var unacked = node.state === "issued" || node.state === "delivered";
        var limit = Date.parse(unacked ? node.ack_by : node.due_by);
        var what = unacked ? "签收时限 " : "办结时限 ";
        var left = limit - t;
        var text = what + hhmm(unacked ? node.ack_by : node.due_by) + " · 已用 " + span(t - created) +
            (left >= 0 ? " · 剩余 " + span(left) : " · 已超时 " + span(-left));
        return {text: text, overdue: left < 0};
    }

    function toast(text, kind) {
        setProps(S.cfg.ids[S.kind + "_message"], {children: text,
                                                  className: "cc-toast is-" + (kind || "ok")});
        clearTimeout(S.toastTimer);
        S.toastTimer = setTimeout(function () {
            setProps(S.cfg.ids[S.kind + "_message"], {className: "cc-toast"});
        }, kind === "error" ? 7000 : 3500);
    }

    function status(text, cls) {
        setProps(S.cfg.ids[S.kind + "_status"], {children: text, className: "cc-live " + cls});
    }

    function sevBadge(sev) {
        sev = sev || 4;
        return h("Span", {className: "cc-sev sev-" + sev,
                          style: {"--sev-color": S.cfg.severity_colors[String(sev)]}},
                 (S.cfg.numerals[String(sev)] || "") + "级");
    }

    function place(inc) {
        var names = [];
        if (inc.township) { names.push(inc.township.name); }
        if (inc.grid) { names.push(inc.grid.name); }
        return inc.outside || !names.length ? "辖区外" : names.join(" / ");
    }

    function textOf(selector) {
        var el = document.querySelector(selector);
        return el ? el.value.trim() : "";
    }

    function clearText(selector) {
        var el = document.querySelector(selector);
        if (el) { el.value = ""; }
    }

    function priorityLabel(code) {
        var found = S.cfg.priorities.filter(function (p) { return p[0] === code; })[0];
        return found ? found[1] : code;
    }

    function statePill(node) {
        return h("Span", {className: "cc-state st-" + node.state}, node.state_label ||
                 S.cfg.node_labels[node.state]);
    }

    // --- incidents from /live (both desks) ---------------------------------------------------
    function enqueue(items) {
        items.forEach(function (inc) {
            S.queue.push(inc);
            if (inc.seq > S.lastSeq) { S.lastSeq = inc.seq; }
        });
    }

    function catchUp(from) {
        S.catchFrom = S.catchFrom === null ? from : Math.min(S.catchFrom, from);
        if (!S.catching) { askSince(); }
    }

    function askSince() {
        if (!live || !live.connected || S.catchFrom === null) { S.catching = false; return; }
        S.catching = true;
        var from = S.catchFrom;
        S.catchFrom = null;
        live.timeout(10000).emit("since", {seq: from}, function (err, answer) {
            if (err || !answer || !Array.isArray(answer.items)) {
                S.catching = false;
                S.catchFrom = S.catchFrom === null ? from : Math.min(S.catchFrom, from);
                setTimeout(function () { if (!S.catching) { askSince(); } }, 2000);
                return;
            }
            enqueue(answer.items);
            if (answer.items.length >= C.SINCE_PAGE) {  // a shorter page: the rest comes live
                S.catchFrom = S.catchFrom === null ? answer.last_seq
                    : Math.min(S.catchFrom, answer.last_seq);
            }
            askSince();
        });
    }

    function flushIncidents() {
        if (!S.queue.length) { return []; }
        var changed = [];
        S.queue.sort(function (a, b) { return a.seq - b.seq; });
        S.queue.forEach(function (inc) {
            var old = S.recs.get(inc.id);
            if (old && old.seq >= inc.seq) { return; }
            S.recs.set(inc.id, Object.assign({}, old || {}, inc));
            changed.push(inc.id);
        });
        S.queue = [];
        return changed;
    }

    function newestFirst() {
        return Array.from(S.recs.values()).sort(function (a, b) {
            return (b.received_at || b.occurred_at) < (a.received_at || a.occurred_at) ? -1
                : (b.received_at || b.occurred_at) > (a.received_at || a.occurred_at) ? 1
                : b.seq - a.seq;
        });
    }

    function connectLive(onOrders) {
        live = window.io("/live", {transports: ["websocket"], path: "/socket.io",
                                   reconnectionDelay: 500, reconnectionDelayMax: 3000});
        live.on("connect", function () {
            status("实时连接", "is-ok");
            catchUp(S.lastSeq);
            S.onConnect();
        });
        live.on("disconnect", function (reason) {
            status("连接中断 · 重连中", "is-down");
            if (reason === "io server disconnect") { setTimeout(function () { live.connect(); }, 1000); }
        });
        live.on("connect_error", function () { status("连接中断 · 重连中", "is-down"); });
        live.on("incidents", function (items) {
            if (!Array.isArray(items) || !items.length) { return; }
            if (items[0].seq > S.lastSeq + 1) { catchUp(S.lastSeq); }
            enqueue(items);
        });
        if (onOrders) { live.on("orders", onOrders); }
    }

    // ==========================================================================================
    // /command
    // ==========================================================================================
    function startCommand(cfg) {
        reset();
        S = base(cfg, "command");
        S.open = new Map();      // open node id -> incident id
        S.selected = null;
        S.detail = null;
        S.loading = false;
        S.dirty = false;
        S.form = {targets: [], priority: null};
        S.rating = null;
        S.typeIndex = {};
        cfg.types.forEach(function (t, k) { S.typeIndex[t.code] = k; });
        cfg.incidents.forEach(function (inc) { S.recs.set(inc.id, inc); });
        cfg.open_nodes.forEach(function (n) { S.open.set(n.id, n.incident_id); });
        S.onConnect = function () {
            refreshOpen();
            if (S.selected) { loadDetail(); }
        };
        renderList();
        renderEmptyDetail();
        tickClock();
        whenMapExists(400);
        timers.push(setInterval(function () {
            var changed = flushIncidents();
            if (!changed.length) { return; }
            renderList();
            redrawMap();
            if (S.selected && changed.indexOf(S.selected) >= 0) { loadDetail(); }
        }, FLUSH_MS));
        timers.push(setInterval(function () { if (S.detail) { renderTree(); } }, TICK_MS));
        timers.push(setInterval(tickClock, 1000));
        listen();
        connectLive(function (nodes) {
            if (!Array.isArray(nodes)) { return; }
            var touched = false, marks = false;
            nodes.forEach(function (n) {
                var wasOpen = S.open.has(n.id);
                if (OPEN.indexOf(n.state) >= 0) { S.open.set(n.id, n.incident_id); }
                else { S.open.delete(n.id); }
                if (wasOpen !== S.open.has(n.id)) { marks = true; }
                if (n.incident_id === S.selected) { touched = true; }
            });
            if (marks) { renderList(); }
            if (touched) { loadDetail(); }
        });
        // the statistics view below the desk (assets/command_stats.js) shares the socket
        if (window.cmdcenterStats) { window.cmdcenterStats.start(cfg, live); }
    }

    function refreshOpen() {
        api("GET", "/api/v1/orders?open=1").then(function (nodes) {
            S.open = new Map();
            nodes.forEach(function (n) { S.open.set(n.id, n.incident_id); });
            renderList();
        }).catch(function () { /* the next connect tries again */ });
    }

    function openCount(incidentId) {
        var k = 0;
        S.open.forEach(function (inc) { if (inc === incidentId) { k++; } });
        return k;
    }

    function tickClock() {
        var d = new Date(now() + TZ_MS);
        var pad = function (n) { return (n < 10 ? "0" : "") + n; };
        var text = (d.getUTCMonth() + 1) + "月" + d.getUTCDate() + "日 " + pad(d.getUTCHours()) +
            ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
        setProps(S.cfg.ids.command_clock, {children: text});
    }

    function renderList() {
        var all = newestFirst();
        var items = all.slice(0, S.cfg.list_cap).map(function (inc) {
            var orders = openCount(inc.id);
            var t = S.cfg.types[S.typeIndex[inc.type] === undefined ? S.typeIndex.other : S.typeIndex[inc.type]];
            var final = ["closed", "merged", "false_alarm"].indexOf(inc.status) >= 0;
            var props = {key: inc.id, className: "cc-item" + (inc.id === S.selected ? " is-selected" : "") +
                         (final ? " is-final" : ""), role: "option",
                         style: {"--type-color": t.color}};
            props["data-incident-id"] = inc.id;
            props["aria-selected"] = inc.id === S.selected ? "true" : "false";
            return h("Div", props, [
                h("Div", {className: "cc-item-line"}, [
                    sevBadge(inc.severity),
                    h("Span", {className: "cc-type"}, inc.type_label || t.label),
                    h("Span", {className: "cc-item-title"}, inc.title)
                ]),
                h("Div", {className: "cc-item-line cc-item-sub"}, [
                    h("Span", {className: "cc-item-place"}, place(inc)),
                    orders ? h("Span", {className: "cc-orders-mark", title: "有未办结指令"}, "指令 " + orders) : null,
                    h("Span", {className: "cc-status s-" + inc.status}, inc.status_label || S.cfg.state_labels[inc.status]),
                    h("Span", {className: "cc-item-time"}, when(inc.occurred_at))
                ])
            ]);
        });
        if (!items.length) { items = [h("P", {className: "cc-empty"}, "近24小时没有事件。")]; }
        setProps(S.cfg.ids.command_list, {children: items});
        setProps(S.cfg.ids.command_list_count, {children: String(all.length)});
    }

    function hover(inc, label) {
        var esc = function (s) { return String(s == null ? "" : s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); };
        return "<b>" + esc(inc.title) + "</b><br>" + esc(label) + " · " + esc(hhmm(inc.occurred_at)) +
            "<br>" + esc(place(inc));
    }

    function redrawMap() {
        var cfg = S.cfg;
        var traces = cfg.types.map(function () { return {lon: [], lat: [], id: [], text: [], size: []}; });
        Array.from(S.recs.values()).sort(function (a, b) { return a.seq - b.seq; }).forEach(function (inc) {
            if (inc.lon == null || inc.lat == null) { return; }
            var k = S.typeIndex[inc.type] === undefined ? S.typeIndex.other : S.typeIndex[inc.type];
            var tr = traces[k];
            tr.lon.push(Number(inc.lon));
            tr.lat.push(Number(inc.lat));
            tr.id.push(inc.id);
            tr.text.push(hover(inc, inc.type_label || cfg.types[k].label));
            var s = cfg.sizes[String(inc.severity)];
            tr.size.push(s === undefined ? cfg.default_size : s);
        });
        var patch = newPatch();
        traces.forEach(function (tr, k) {
            var T = cfg.trace_offset + k;
            patch.assign(["data", T, "lon"], tr.lon);
            patch.assign(["data", T, "lat"], tr.lat);
            patch.assign(["data", T, "customdata"], tr.id);
            patch.assign(["data", T, "hovertext"], tr.text);
            patch.assign(["data", T, "marker", "size"], tr.size);
        });
        haloInto(patch);
        setProps(cfg.ids.command_map, {figure: patch.build()});
    }

    function haloInto(patch) {
        var T = S.cfg.trace_offset + S.cfg.types.length;
        var inc = S.selected && S.recs.get(S.selected);
        var has = inc && inc.lon != null;
        patch.assign(["data", T, "lon"], has ? [Number(inc.lon)] : []);
        patch.assign(["data", T, "lat"], has ? [Number(inc.lat)] : []);
    }

    // The map uses plotly's offline "white-bg" style; its background layer gets the desk's calm
    // ground colour in MapLibre itself (as assets/wall.js does for the wall).
    function paintGround() {
        return window.cmdcenterPaintGround(S.cfg.ids.command_map, S.cfg.map_background);
    }

    function whenMapExists(tries) {
        if (!S || S.kind !== "command" || paintGround() || tries <= 0) { return; }
        setTimeout(function () { whenMapExists(tries - 1); }, 50);
    }

    function select(id) {
        if (!id || id === S.selected) { return; }
        S.selected = id;
        S.detail = null;
        S.form = {targets: [], priority: null};
        S.rating = null;
        renderList();
        var patch = newPatch();
        haloInto(patch);
        setProps(S.cfg.ids.command_map, {figure: patch.build()});
        var inc = S.recs.get(id);
        if (inc) { renderFacts(inc); }
        loadDetail();
    }

    // Read the selected incident again; a change arriving meanwhile reads it once more.
    function loadDetail() {
        if (!S.selected) { return; }
        if (S.loading) { S.dirty = true; return; }
        S.loading = true;
        S.dirty = false;
        var id = S.selected;
        api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).then(function (detail) {
            S.loading = false;
            if (id !== S.selected) { return loadDetail(); }
            var known = S.recs.get(id);
            if (!known || known.seq <= detail.seq) { S.recs.set(id, Object.assign({}, known || {}, detail)); }
            var first = !S.detail || S.detail.id !== id;
            S.detail = detail;
            renderDetail(first);
            if (S.dirty) { loadDetail(); }
        }).catch(function (err) {
            S.loading = false;
            toast("读取事件详情失败：" + err.message, "error");
            if (S.dirty) { setTimeout(loadDetail, 1000); }
        });
    }

    function renderEmptyDetail() {
        setProps(S.cfg.ids.command_facts, {children: h("Div", {className: "cc-empty-detail"}, [
            h("Div", {className: "cc-empty-mark"}),
            h("P", {className: "cc-empty"}, "请在左侧列表或地图上选择一起事件，查看详情、下达指令。")
        ])});
        ["command_actions", "command_tree", "command_form", "command_timeline"].forEach(function (k) {
            setProps(S.cfg.ids[k], {children: null});
        });
    }

    function renderFacts(inc) {
        var t = S.cfg.types[S.typeIndex[inc.type] === undefined ? S.typeIndex.other : S.typeIndex[inc.type]];
        var facts = [
            h("Div", {className: "cc-facts-top"}, [
                sevBadge(inc.severity),
                h("Span", {className: "cc-type", style: {"--type-color": t.color}}, inc.type_label || t.label),
                h("Span", {className: "cc-status cc-status-big s-" + inc.status, id: "cc-incident-status"},
                  inc.status_label || S.cfg.state_labels[inc.status])
            ]),
            h("H2", {className: "cc-facts-title"}, inc.title),
            h("Dl", {className: "cc-facts-grid"}, [
                h("Dt", {}, "地点"), h("Dd", {}, place(inc)),
                h("Dt", {}, "发生时间"), h("Dd", {}, when(inc.occurred_at)),
                h("Dt", {}, "等级"), h("Dd", {}, (S.cfg.numerals[String(inc.severity || 4)] || "") + "级 " +
                                                   (S.cfg.severity_names[String(inc.severity || 4)] || "")),
                h("Dt", {}, "涉及人数"), h("Dd", {}, inc.people ? inc.people + " 人" : "—")
            ].concat(inc.case_no ? [
                h("Dt", {}, "案号"), h("Dd", {}, inc.case_no),
                h("Dt", {}, "类别 · 渠道"), h("Dd", {}, [inc.category_label || "未分类", inc.channel_label].join(" · "))
            ] : []).concat(inc.approximate ? [
                h("Dt", {}, "位置"), h("Dd", {}, "按网格登记的概略位置")
            ] : []))
        ];
        if (inc.description) { facts.push(h("P", {className: "cc-facts-desc"}, inc.description)); }
        if (inc.reporter_user) {
            facts.push(h("P", {className: "cc-facts-who"}, (inc.channel_label || "网格上报") + " · 上报人 " + inc.reporter_user +
                (inc.position === "gps" && inc.accuracy_m ? " · 手机定位（精度约 " + Math.round(inc.accuracy_m) + " 米）" :
                 inc.position === "map" ? " · 图上点选位置" : "")));
        }
        if ((inc.photos || []).length) {
            facts.push(h("Div", {className: "cc-photos", key: "ph-" + inc.id}, inc.photos.map(function (p, k) {
                return h("A", {className: "cc-photo", href: p.url, target: "_blank", rel: "noopener", key: p.sha256},
                         [h("Img", {src: p.thumb_url, alt: "现场照片 " + (k + 1)})]);
            })));
        }
        // 专报 the first time, 续报 after (the server numbers them): a plain download link
        facts.push(h("Div", {className: "cc-facts-brief"}, [
            h("A", {className: "cc-btn cc-btn-small", key: "zb-" + inc.id,
                    href: "/api/v1/briefs?format=docx&incident=" + encodeURIComponent(inc.id)},
              "专报/续报（Word）")
        ]));
        setProps(S.cfg.ids.command_facts, {children: facts});
    }

    function renderDetail(first) {
        var d = S.detail;
        renderFacts(d);
        renderActions(d, first);
        renderTree();
        renderForm(first);
        renderTimeline(d);
    }

    function renderActions(d) {
        var moves = d.allowed || [];
        var children = [h("H3", {className: "cc-section-title"}, "处置流程")];
        if (!moves.length) {
            children.push(h("P", {className: "cc-hint"}, "当前环节无需您操作。"));
            setProps(S.cfg.ids.command_actions, {children: children});
            return;
        }
        children.push(h("Textarea", {className: "cc-input cc-note", key: "note-" + d.id,
                                     placeholder: "批示或备注（可不填）", rows: 2,
                                     "data-field": "move-note"}));
        var buttons = moves.map(function (to) {
            var p = {className: "cc-btn cc-move m-" + to, key: to};
            p["data-act"] = "move";
            p["data-to"] = to;
            return h("Button", p, MOVE_VERBS[to] || S.cfg.state_labels[to]);
        });
        children.push(h("Div", {className: "cc-move-row"}, buttons));
        if (moves.indexOf("followed_up") >= 0) {
            children.push(h("Div", {className: "cc-rating"}, [h("Span", {}, "回访满意度：")].concat(
                [1, 2, 3, 4, 5].map(function (r) {
                    var p = {className: "cc-chip" + (S.rating === r ? " is-on" : ""), key: "r" + r};
                    p["data-act"] = "rating";
                    p["data-rating"] = String(r);
                    return h("Button", p, r + "分");
                }))));
        }
        if (moves.indexOf("merged") >= 0) {
            var options = [h("Option", {value: ""}, "合并到：请选择事件")].concat(
                newestFirst().filter(function (i) { return i.id !== d.id; }).slice(0, 50).map(function (i) {
                    return h("Option", {value: i.id}, when(i.occurred_at) + " " + i.title);
                }));
            children.push(h("Select", {className: "cc-input cc-merge", key: "merge-" + d.id,
                                       "data-field": "merge-into"}, options));
        }
        setProps(S.cfg.ids.command_actions, {children: children});
    }

    function levelTag(node) {
        return h("Span", {className: "cc-level"}, LEVEL_LABELS[node.target.level] || "");
    }

    function nodeRow(node, depth) {
        var tm = timing(node);
        var bits = [
            h("Div", {className: "cc-node-line"}, [
                h("Span", {className: "cc-node-dot st-" + node.state}),
                h("Span", {className: "cc-node-name"}, node.target.name),
                levelTag(node),
                statePill(node),
                node.acked_by ? h("Span", {className: "cc-node-who"}, "签收：" + node.acked_by) : null
            ]),
            h("Div", {className: "cc-node-time" + (tm.overdue ? " is-overdue" : "")}, tm.text)
        ];
        if (node.result) { bits.push(h("Div", {className: "cc-node-result"}, "结果：" + node.result)); }
        if (node.state === "returned" && node.reason) {
            bits.push(h("Div", {className: "cc-node-reason"}, "退回原因：" + node.reason));
        }
        if (S.cfg.can_issue && node.state === "returned") {
            bits.push(h("Div", {className: "cc-node-acts"}, [
                nodeButton("reissue", node, "重新下达"), nodeButton("cancel", node, "撤销")]));
        }
        var cls = "cc-node st-" + node.state + (tm.overdue ? " is-overdue" : "") + " depth-" + depth;
        var p = {className: cls, key: node.id};
        p["data-node-id"] = node.id;
        p["data-state"] = node.state;
        var kids = (node.children || []).map(function (c) { return nodeRow(c, depth + 1); });
        return h("Div", p, [h("Div", {className: "cc-node-body"}, bits)].concat(
            kids.length ? [h("Div", {className: "cc-node-kids"}, kids)] : []));
    }

    function nodeButton(action, node, label, cls) {
        var p = {className: "cc-btn cc-btn-small " + (cls || ""), key: action};
        p["data-act"] = "node";
        p["data-action"] = action;
        p["data-node"] = node.id;
        return h("Button", p, label);
    }

    function countStates(nodes, acc) {
        nodes.forEach(function (n) {
            acc[n.state] = (acc[n.state] || 0) + 1;
            acc.total++;
            countStates(n.children || [], acc);
        });
        return acc;
    }

    function renderTree() {
        var d = S.detail;
        if (!d) { return; }
        var orders = d.orders || [];
        var children = [h("H3", {className: "cc-section-title"}, "指令执行")];
        if (!orders.length) {
            children.push(h("P", {className: "cc-hint"}, "尚未下达指令。"));
        }
        orders.forEach(function (o) {
            var c = countStates(o.nodes, {total: 0});
            var tops = o.nodes.filter(function (n) { return n.state === "completed" || n.state === "cancelled"; });
            var allDone = o.nodes.length && tops.length === o.nodes.length;
            var summary = "共 " + c.total + " 个单位 · 已办结 " + (c.completed || 0) + " · 处置中 " +
                ((c.acknowledged || 0) + (c.in_progress || 0)) + " · 未签收 " +
                ((c.issued || 0) + (c.delivered || 0)) + (c.returned ? " · 退回 " + c.returned : "");
            var p = {className: "cc-order" + (allDone ? " is-done" : ""), key: o.id};
            p["data-order-id"] = o.id;
            children.push(h("Div", p, [
                h("Div", {className: "cc-order-head"}, [
                    h("Span", {className: "cc-prio p-" + o.priority}, priorityLabel(o.priority)),
                    h("Span", {className: "cc-order-meta"}, hhmm(o.issued_at) + " " + o.issued_by + " 下达"),
                    allDone ? h("Span", {className: "cc-order-done"}, "✓ 全部办结") : null
                ]),
                h("Div", {className: "cc-order-text"}, o.instruction),
                h("Div", {className: "cc-order-sum"}, summary),
                h("Div", {className: "cc-nodes-tree"}, o.nodes.map(function (n) { return nodeRow(n, 0); }))
            ]));
        });
        setProps(S.cfg.ids.command_tree, {children: children});
    }

    function chip(code, name, on, act) {
        var p = {className: "cc-chip" + (on ? " is-on" : ""), key: act + code};
        p["data-act"] = act;
        p["data-code"] = code;
        p["aria-pressed"] = on ? "true" : "false";
        return h("Button", p, name);
    }

    function limitSelect(field, minutes, label) {
        var options = [h("Option", {value: ""}, "按事件等级（" + span(minutes * 60000) + "）")].concat(
            LIMIT_CHOICES.map(function (m) { return h("Option", {value: String(m)}, span(m * 60000)); }));
        return h("Label", {className: "cc-limit"}, [h("Span", {}, label),
            h("Select", {className: "cc-input", "data-field": field, key: field + S.selected}, options)]);
    }

    function renderForm() {
        var d = S.detail;
        if (!d || ["closed", "merged", "false_alarm"].indexOf(d.status) >= 0) {
            setProps(S.cfg.ids.command_form, {children: null});
            return;
        }
        var sev = d.severity || 4;
        var limits = S.cfg.limits[String(sev)] || S.cfg.limits["4"];
        var priority = S.form.priority || (sev <= 2 ? "urgent" : sev === 3 ? "high" : "normal");
        var chosen = S.form.targets;
        var names = {};
        S.cfg.townships.concat(S.cfg.depts).forEach(function (u) { names[u[0]] = u[1]; });
        Object.keys(S.cfg.grids).forEach(function (t) {
            S.cfg.grids[t].forEach(function (g) { names[g[0]] = g[1]; });
        });
        var on = function (code) { return chosen.indexOf(code) >= 0; };
        var groups = [];
        if (d.township) {
            var local = [[d.township.code, d.township.name]].concat(S.cfg.grids[d.township.code] || []);
            groups.push(h("Div", {className: "cc-group"}, [
                h("Div", {className: "cc-group-title"}, "事发地 · " + d.township.name + "及其网格"),
                h("Div", {className: "cc-chips"}, local.map(function (u) {
                    return chip(u[0], u[1], on(u[0]), "target");
                }))
            ]));
        }
        groups.push(h("Div", {className: "cc-group"}, [
            h("Div", {className: "cc-group-title"}, "乡镇（街道）"),
            h("Div", {className: "cc-chips"}, S.cfg.townships.map(function (u) {
                return chip(u[0], u[1], on(u[0]), "target");
            }))
        ]));
        groups.push(h("Div", {className: "cc-group"}, [
            h("Div", {className: "cc-group-title"}, "入驻部门"),
            h("Div", {className: "cc-chips"}, S.cfg.depts.map(function (u) {
                return chip(u[0], u[1], on(u[0]), "target");
            }))
        ]));
        var issue = {className: "cc-btn cc-btn-primary cc-issue", disabled: !S.cfg.can_issue || !chosen.length};
        issue["data-act"] = "issue";
        var children = [
            h("H3", {className: "cc-section-title"}, S.cfg.can_issue ? "下达指令" : "起草指令"),
            h("Div", {className: "cc-form-step"}, "① 选择承办单位（可多选）"),
            h("Div", {className: "cc-groups"}, groups),
            h("Div", {className: "cc-chosen"}, chosen.length ? "已选：" + chosen.map(function (c) {
                return names[c] || c; }).join("、") : "尚未选择承办单位"),
            h("Div", {className: "cc-form-step"}, "② 指令内容"),
            h("Textarea", {className: "cc-input cc-instruction", rows: 3, key: "instr-" + d.id,
                           "data-field": "instruction",
                           placeholder: "不填写则为：请立即核实情况、妥善处置，并及时反馈结果。"}),
            h("Div", {className: "cc-form-step"}, "③ 紧急程度与时限"),
            h("Div", {className: "cc-form-row"}, [
                h("Div", {className: "cc-seg"}, S.cfg.priorities.map(function (p) {
                    var b = {className: "cc-seg-btn p-" + p[0] + (priority === p[0] ? " is-on" : ""), key: p[0]};
                    b["data-act"] = "priority";
                    b["data-priority"] = p[0];
                    return h("Button", b, p[1]);
                })),
                limitSelect("ack-minutes", limits[0], "签收时限"),
                limitSelect("due-minutes", limits[1], "办结时限")
            ]),
            h("Div", {className: "cc-form-foot"}, [
                h("Button", issue, "下达指令"),
                S.cfg.can_issue ? null : h("Span", {className: "cc-hint cc-draft-note"}, "值班员可起草，由指挥长下达")
            ])
        ];
        setProps(S.cfg.ids.command_form, {children: children});
    }

    function renderTimeline(d) {
        var rows = (d.timeline || []).slice().reverse().map(function (e, k) {
            return h("Li", {key: String(k), className: "cc-tl-item"}, [
                h("Span", {className: "cc-tl-time"}, when(e.at)),
                h("Span", {className: "cc-tl-move"}, (e.from ? (S.cfg.state_labels[e.from] || e.from) + " → " : "") +
                  (S.cfg.state_labels[e.to] || e.to)),
                h("Span", {className: "cc-tl-by"}, e.by || "系统"),
                e.note ? h("Div", {className: "cc-tl-note"}, e.note) : null
            ]);
        });
        setProps(S.cfg.ids.command_timeline, {children: [
            h("H3", {className: "cc-section-title"}, "处置记录"),
            rows.length ? h("Ol", {className: "cc-tl"}, rows) : h("P", {className: "cc-hint"}, "暂无记录。")
        ]});
    }

    function onCommandClick(target) {
        var item = target.closest("[data-incident-id]");
        var act = target.closest("[data-act]");
        if (!act && item && item.closest("#" + S.cfg.ids.command_list)) { select(item.getAttribute("data-incident-id")); return; }
        if (!act || act.disabled) { return; }
        var kind = act.getAttribute("data-act");
        if (kind === "target") {
            var code = act.getAttribute("data-code");
            var k = S.form.targets.indexOf(code);
            if (k >= 0) { S.form.targets.splice(k, 1); } else { S.form.targets.push(code); }
            renderForm();
        } else if (kind === "priority") {
            S.form.priority = act.getAttribute("data-priority");
            renderForm();
        } else if (kind === "rating") {
            S.rating = Number(act.getAttribute("data-rating"));
            renderActions(S.detail);
        } else if (kind === "issue") {
            issueOrder(act);
        } else if (kind === "move") {
            move(act.getAttribute("data-to"), act);
        } else if (kind === "node") {
            nodeAction(act.getAttribute("data-node"), act.getAttribute("data-action"), {note: ""}, act);
        }
    }

    function busy(button, on) {
        if (button) { button.classList.toggle("is-busy", on); button.disabled = on; }
    }

    function issueOrder(button) {
        var d = S.detail;
        if (!d || !S.cfg.can_issue) { return; }
        var root = "#" + S.cfg.ids.command_form + " ";
        var body = {
            incident_id: d.id, targets: S.form.targets.slice(),
            instruction: textOf(root + "[data-field=instruction]") || "请立即核实情况、妥善处置，并及时反馈结果。",
            priority: S.form.priority || (d.severity <= 2 ? "urgent" : d.severity === 3 ? "high" : "normal")
        };
        var ack = textOf(root + "[data-field=ack-minutes]"), due = textOf(root + "[data-field=due-minutes]");
        if (ack) { body.ack_minutes = Number(ack); }
        if (due) { body.due_minutes = Number(due); }
        busy(button, true);
        api("POST", "/api/v1/orders", body).then(function (order) {
            toast("指令已下达至 " + order.nodes.map(function (n) { return n.target.name; }).join("、"));
            S.form = {targets: [], priority: null};
            clearText(root + "[data-field=instruction]");
            loadDetail();
        }).catch(function (err) {
            busy(button, false);
            toast("下达失败：" + err.message, "error");
        });
    }

    function move(to, button) {
        var d = S.detail;
        var body = {to: to, note: textOf("#" + S.cfg.ids.command_actions + " [data-field=move-note]")};
        if (to === "followed_up") {
            if (!S.rating) { toast("请先选择回访满意度（1–5分）", "error"); return; }
            body.rating = S.rating;
        }
        if (to === "merged") {
            body.merged_into = textOf("#" + S.cfg.ids.command_actions + " [data-field=merge-into]");
            if (!body.merged_into) { toast("请先选择要合并到的事件", "error"); return; }
        }
        busy(button, true);
        api("POST", "/api/v1/incidents/" + encodeURIComponent(d.id) + "/transition", body).then(function (inc) {
            toast("事件已转为「" + (inc.status_label || S.cfg.state_labels[inc.status]) + "」");
            loadDetail();
        }).catch(function (err) {
            busy(button, false);
            toast("操作未完成：" + err.message, "error");
        });
    }

    function nodeAction(nodeId, action, body, button) {
        busy(button, true);
        return api("POST", "/api/v1/orders/" + encodeURIComponent(nodeId) + "/" + action, body).then(function (node) {
            toast(node.target.name + "：" + node.state_label);
            if (S.kind === "command") { loadDetail(); } else { mergeNodes([node]); }
            return node;
        }).catch(function (err) {
            busy(button, false);
            toast("操作未完成：" + err.message, "error");
        });
    }

    // ==========================================================================================
    // /township
    // ==========================================================================================
    function startTownship(cfg) {
        reset();
        S = base(cfg, "township");
        S.nodes = new Map();    // node id -> node (the newest seq seen)
        S.picks = {};           // node id -> [grid codes] chosen for forwarding
        S.titles = {};          // incident id -> incident (for nodes of incidents out of the list)
        cfg.incidents.forEach(function (inc) { S.recs.set(inc.id, inc); });
        S.onConnect = function () { reloadNodes(); };
        renderIncidents();
        renderNodes();
        timers.push(setInterval(function () {
            if (flushIncidents().length) { renderIncidents(); renderNodes(); }
        }, FLUSH_MS));
        timers.push(setInterval(renderNodes, TICK_MS));
        listen();
        connectLive(function (nodes) { if (Array.isArray(nodes)) { mergeNodes(nodes); } });
        field = window.io("/field", {transports: ["websocket"], path: "/socket.io",
                                     reconnectionDelay: 500, reconnectionDelayMax: 3000});
        field.on("orders", function (nodes) { if (Array.isArray(nodes)) { mergeNodes(nodes); } });
        field.on("connect", function () { reloadNodes(); });
    }

    function reloadNodes() {
        api("GET", "/api/v1/orders").then(mergeNodes).catch(function () { /* next connect */ });
    }

    function mine(node) { return node.target.code === S.cfg.me.unit; }

    function mergeNodes(nodes) {
        var fresh = [];
        nodes.forEach(function (n) {
            var old = S.nodes.get(n.id);
            if (old && old.seq >= n.seq) { return; }
            S.nodes.set(n.id, n);
            if (mine(n) && n.state === "issued") { fresh.push(n.id); }
            if (!S.recs.has(n.incident_id) && !S.titles[n.incident_id]) { fetchIncident(n.incident_id); }
        });
        if (fresh.length) { delivered(fresh); }
        renderNodes();
    }

    // The receipt goes on `/field`; while that is not connected, through REST.
    function delivered(ids) {
        if (field && field.connected) { field.emit("delivered", {ids: ids}); return; }
        ids.forEach(function (id) {
            api("POST", "/api/v1/orders/" + encodeURIComponent(id) + "/deliver", {}).then(function (n) {
                mergeNodes([n]);
            }).catch(function () { /* delivered again on the next connect */ });
        });
    }

    function fetchIncident(id) {
        S.titles[id] = {id: id, title: "…"};
        api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).then(function (inc) {
            S.titles[id] = inc;
            renderNodes();
        }).catch(function () { delete S.titles[id]; });
    }

    function incidentOf(node) { return S.recs.get(node.incident_id) || S.titles[node.incident_id]; }

    function renderNodes() {
        // a matter's route nodes are worked in the matter work list (assets/worklist.js)
        var all = Array.from(S.nodes.values()).filter(function (n) { return !n.role; });
        var own = all.filter(mine);
        var ownIds = {};
        own.forEach(function (n) { ownIds[n.id] = true; });
        var orphans = all.filter(function (n) { return !mine(n) && !ownIds[n.parent_id]; });
        var rank = function (n) { return OPEN.indexOf(n.state) >= 0 && n.state !== "returned" ? 0 : 1; };
        var order = function (a, b) {
            return rank(a) - rank(b) || (b.created_at > a.created_at ? 1 : b.created_at < a.created_at ? -1 : 0);
        };
        own.sort(order);
        orphans.sort(order);
        var openOwn = own.filter(function (n) { return OPEN.indexOf(n.state) >= 0; }).length;
        setProps(S.cfg.ids.township_node_count, {children: String(openOwn)});
        var cards = own.slice(0, 60).map(function (n) {
            var kids = all.filter(function (c) { return c.parent_id === n.id; });
            return nodeCard(n, kids);
        });
        if (orphans.length) {
            cards.push(h("H3", {className: "cc-section-title", key: "orphans"}, "各网格指令"));
            orphans.slice(0, 60).forEach(function (n) { cards.push(nodeCard(n, [])); });
        }
        if (!cards.length) { cards = [h("P", {className: "cc-empty"}, "暂无指令。")]; }
        setProps(S.cfg.ids.township_nodes, {children: cards});
    }

    function nodeCard(n, kids) {
        var tm = timing(n);
        var inc = incidentOf(n);
        var own = mine(n);
        var body = [
            h("Div", {className: "cc-ncard-head"}, [
                h("Span", {className: "cc-prio p-" + n.priority}, priorityLabel(n.priority)),
                statePill(n),
                own ? null : h("Span", {className: "cc-node-name"}, n.target.name),
                h("Span", {className: "cc-ncard-time"}, when(n.created_at) + " 下达")
            ]),
            h("Div", {className: "cc-ncard-text"}, n.instruction),
            inc ? h("Div", {className: "cc-ncard-inc"}, [
                inc.severity ? sevBadge(inc.severity) : null,
                h("Span", {}, "事件：" + inc.title + (inc.township || inc.grid ? " · " + place(inc) : ""))
            ]) : null,
            h("Div", {className: "cc-node-time" + (tm.overdue ? " is-overdue" : "")}, tm.text),
            n.acked_by ? h("Div", {className: "cc-node-who"}, "签收人：" + n.acked_by) : null,
            n.result ? h("Div", {className: "cc-node-result"}, "结果：" + n.result) : null,
            n.state === "returned" && n.reason ? h("Div", {className: "cc-node-reason"}, "退回原因：" + n.reason) : null
        ];
        if (own) { body = body.concat(ownActions(n)); }
        if (kids.length) {
            body.push(h("Div", {className: "cc-kids"}, [h("Div", {className: "cc-group-title"}, "转派网格")].concat(
                kids.map(function (c) {
                    var ct = timing(c);
                    var row = [
                        h("Div", {className: "cc-node-line"}, [
                            h("Span", {className: "cc-node-dot st-" + c.state}),
                            h("Span", {className: "cc-node-name"}, c.target.name), statePill(c),
                            c.acked_by ? h("Span", {className: "cc-node-who"}, "签收：" + c.acked_by) : null
                        ]),
                        h("Div", {className: "cc-node-time" + (ct.overdue ? " is-overdue" : "")}, ct.text),
                        c.result ? h("Div", {className: "cc-node-result"}, "结果：" + c.result) : null
                    ];
                    if (c.state === "returned") {
                        row.push(h("Div", {className: "cc-node-reason"}, "退回原因：" + (c.reason || "")));
                        row.push(h("Div", {className: "cc-node-acts"}, [nodeButton("reissue", c, "重新下达"),
                                                                         nodeButton("cancel", c, "撤销")]));
                    }
                    var p = {className: "cc-kid st-" + c.state, key: c.id};
                    p["data-node-id"] = c.id;
                    p["data-state"] = c.state;
                    return h("Div", p, row);
                }))));
        }
        var p = {className: "cc-ncard st-" + n.state + (tm.overdue ? " is-overdue" : "") +
                 (n.priority === "urgent" ? " is-urgent" : ""), key: n.id};
        p["data-node-id"] = n.id;
        p["data-state"] = n.state;
        return h("Div", p, body);
    }

    function ownActions(n) {
        var out = [];
        var unacked = n.state === "issued" || n.state === "delivered";
        var working = n.state === "acknowledged" || n.state === "in_progress";
        if (!unacked && !working) { return out; }
        var buttons = [];
        if (unacked) { buttons.push(nodeButton("ack", n, "签收", "cc-btn-primary")); }
        out.push(h("Textarea", {className: "cc-input", rows: 2, key: "text-" + n.id, "data-field": "text",
                                "data-node": n.id,
                                placeholder: working ? "填写进展或办理结果；退回时填写原因" : "退回时填写原因"}));
        if (working) {
            buttons.push(nodeButton("progress", n, "报告进展"));
            buttons.push(nodeButton("complete", n, "办结", "cc-btn-ok"));
        }
        buttons.push(nodeButton("return", n, "退回", "cc-btn-warn"));
        out.push(h("Div", {className: "cc-node-acts"}, buttons));
        if (S.cfg.me.role === "township" && S.cfg.grids.length) {
            var picks = S.picks[n.id] || [];
            var fwd = {className: "cc-btn cc-btn-primary cc-btn-small", disabled: !picks.length, key: "fwd"};
            fwd["data-act"] = "forward";
            fwd["data-node"] = n.id;
            out.push(h("Details", {className: "cc-forward", key: "fwd-" + n.id, open: picks.length > 0 || undefined}, [
                h("Summary", {}, "转派到网格"),
                h("Div", {className: "cc-chips"}, S.cfg.grids.map(function (g) {
                    var c = chip(g[0], g[1], picks.indexOf(g[0]) >= 0, "pick");
                    c.props["data-node"] = n.id;
                    return c;
                })),
                h("Div", {className: "cc-node-acts"}, [h("Button", fwd, picks.length ?
                    "转派到所选 " + picks.length + " 个网格" : "请先选择网格")])
            ]));
        }
        return out;
    }

    function onTownshipClick(target) {
        var act = target.closest("[data-act]");
        if (!act || act.disabled) { return; }
        var kind = act.getAttribute("data-act");
        var nodeId = act.getAttribute("data-node");
        if (kind === "pick") {
            var picks = S.picks[nodeId] = S.picks[nodeId] || [];
            var code = act.getAttribute("data-code");
            var k = picks.indexOf(code);
            if (k >= 0) { picks.splice(k, 1); } else { picks.push(code); }
            renderNodes();
        } else if (kind === "forward") {
            busy(act, true);
            var text = textOf("[data-field=text][data-node='" + nodeId + "']");
            api("POST", "/api/v1/orders/" + encodeURIComponent(nodeId) + "/forward",
                {targets: S.picks[nodeId] || [], instruction: text || null}).then(function (kids) {
                toast("已转派至 " + kids.map(function (c) { return c.target.name; }).join("、"));
                delete S.picks[nodeId];
                clearText("[data-field=text][data-node='" + nodeId + "']");
                mergeNodes(kids);
                reloadNodes();
            }).catch(function (err) {
                busy(act, false);
                toast("转派失败：" + err.message, "error");
            });
        } else if (kind === "node") {
            var action = act.getAttribute("data-action");
            var sel = "[data-field=text][data-node='" + nodeId + "']";
            var text2 = textOf(sel);
            var body = {note: text2};
            if (action === "complete") {
                if (!text2) { toast("请先填写办理结果", "error"); return; }
                body.result = text2;
            }
            if (action === "return") {
                if (!text2) { toast("请先填写退回原因", "error"); return; }
                body.reason = text2;
            }
            nodeAction(nodeId, action, body, act).then(function (node) { if (node) { clearText(sel); } });
        }
    }

    function renderIncidents() {
        var items = newestFirst().slice(0, S.cfg.list_cap).map(function (inc) {
            var p = {className: "cc-item", key: inc.id};
            p["data-incident-id"] = inc.id;
            return h("Div", p, [
                h("Div", {className: "cc-item-line"}, [sevBadge(inc.severity),
                    h("Span", {className: "cc-type"}, inc.type_label),
                    h("Span", {className: "cc-item-title"}, inc.title)]),
                h("Div", {className: "cc-item-line cc-item-sub"}, [
                    h("Span", {className: "cc-item-place"}, place(inc)),
                    h("Span", {className: "cc-status s-" + inc.status}, inc.status_label || S.cfg.state_labels[inc.status]),
                    h("Span", {className: "cc-item-time"}, when(inc.occurred_at))])
            ]);
        });
        setProps(S.cfg.ids.township_incidents, {children: items.length ? items
            : [h("P", {className: "cc-empty"}, "近7天本辖区没有事件。")]});
    }

    // ==========================================================================================
    // common start / stop
    // ==========================================================================================
    function base(cfg, kind) {
        return {cfg: cfg, kind: kind, offset: cfg.now - Date.now(), lastSeq: cfg.last_seq,
                queue: [], recs: new Map(), catchFrom: null, catching: false,
                onConnect: function () {}};
    }

    function reset() {
        timers.forEach(clearInterval);
        timers = [];
        [live, field].forEach(function (s) { if (s) { s.removeAllListeners(); s.disconnect(); } });
        live = field = null;
    }

    function listen() {
        if (listening) { return; }
        listening = true;
        document.addEventListener("click", function (ev) {
            if (!S || !(ev.target instanceof Element)) { return; }
            if (S.kind === "command" && document.querySelector(".cc-command")) { onCommandClick(ev.target); }
            if (S.kind === "township" && document.querySelector(".cc-township")) { onTownshipClick(ev.target); }
        });
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenterDesk = {
        startCommand: function (cfg) {
            if (cfg) { startCommand(cfg); }
            return "实时连接（Socket.IO /live）";
        },
        startTownship: function (cfg) {
            if (cfg) { startTownship(cfg); }
            return "实时连接（Socket.IO /field、/live）";
        },
        mapClick: function (click) {
            var p = click && click.points && click.points[0];
            if (S && S.kind === "command" && p && typeof p.customdata === "string" && S.recs.has(p.customdata)) {
                select(p.customdata);
            }
            return window.dash_clientside.no_update;
        }
    };

    window.cmdcenterDesk = {
        connected: function () { return !!(live && live.connected); },
        fieldConnected: function () { return !!(field && field.connected); },
        selected: function () { return S ? S.selected : null; },
        detail: function () { return S ? S.detail : null; },
        nodes: function () { return S && S.nodes ? Array.from(S.nodes.values()) : []; },
        // for the alert ticker (assets/alert_ticker.js): the desk's /live socket, and selecting
        // an alert's incident on /command
        socket: function () {
            return live || (window.cmdcenterWindow && window.cmdcenterWindow.socket());
        },
        select: function (id) { if (S && S.kind === "command") { select(id); } },
        incident: function (id) { return S && S.recs ? S.recs.get(id) || null : null; }
    };
}());
