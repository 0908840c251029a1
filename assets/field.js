/*
 * The grid worker's phone page `/grid` (command/web/pages/grid.py).
 *
 * A clientside callback hands the page's state to `start` (nothing runs on other pages). Then:
 *   - Socket.IO `/field` sends the worker's open nodes on connect and every new or changed node;
 *     on every (re)connect GET /api/v1/orders is merged too (by seq), so a node that changed
 *     while the phone was offline is never shown stale;
 *   - nodes still `issued` are acknowledged as received with a `delivered` receipt;
 *   - a node the page has not seen before is announced at once: a banner, a vibration where the
 *     phone has one, and a short beep made with WebAudio once the worker has tapped the page
 *     (browsers allow sound only after a gesture);
 *   - 签收 / 报告进展 / 完成 / 退回 are REST calls with the X-CSRFToken header.
 *
 * Test hooks: window.cmdcenterField = {connected(), nodes(), beeps()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var h = C.h, setProps = C.setProps, api = C.api, hhmm = C.hhmm;

    var TICK_MS = 15000;
    var OPEN = ["issued", "delivered", "acknowledged", "in_progress", "returned"];
    var DONE_SHOWN = 5;

    var S = null;
    var socket = null;  // /field
    var live = null;    // /live
    var timers = [];
    var listening = false;
    var audio = null;
    var beeps = 0;

    function now() { return Date.now() + S.offset; }

    function span(ms) {
        var m = Math.max(0, Math.round(ms / 60000));
        if (m < 60) { return m + "分钟"; }
        if (m < 1440) { return Math.floor(m / 60) + "小时" + (m % 60 ? (m % 60) + "分" : ""); }
        return Math.floor(m / 1440) + "天";
    }

    function timing(node) {
        var unacked = node.state === "issued" || node.state === "delivered";
        var limit = unacked ? node.ack_by : node.due_by;
        var left = Date.parse(limit) - now();
        return {text: (unacked ? "请于 " : "办结时限 ") + hhmm(limit) + (unacked ? " 前签收" : "") +
                (left >= 0 ? "（剩余 " + span(left) + "）" : "（已超时 " + span(-left) + "）"),
                overdue: left < 0};
    }

    function toast(text, kind) {
        setProps(S.cfg.ids.grid_message, {children: text, className: "cc-toast is-" + (kind || "ok")});
        clearTimeout(S.toastTimer);
        S.toastTimer = setTimeout(function () {
            setProps(S.cfg.ids.grid_message, {className: "cc-toast"});
        }, kind === "error" ? 7000 : 3000);
    }

    function priorityLabel(code) {
        var found = S.cfg.priorities.filter(function (p) { return p[0] === code; })[0];
        return found ? found[1] : code;
    }

    // --- the announcement ---------------------------------------------------------------------
    function unlockAudio() {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) { return; }
        if (!audio) { audio = new Ctx(); }
        if (audio.state === "suspended") { audio.resume(); }
    }

    function beep() {
        if (!audio || audio.state !== "running") { return; }
        [0, 0.22].forEach(function (at) {
            var osc = audio.createOscillator(), gain = audio.createGain();
            osc.type = "sine";
            osc.frequency.value = 880;
            var t = audio.currentTime + at;
            gain.gain.setValueAtTime(0.0001, t);
            gain.gain.exponentialRampToValueAtTime(0.35, t + 0.02);
            gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.16);
            osc.connect(gain).connect(audio.destination);
            osc.start(t);
            osc.stop(t + 0.18);
        });
        beeps++;
    }

    function announce(nodes) {
        var first = nodes[0];
        var text = nodes.length === 1 ? "新指令：" + first.instruction : "收到 " + nodes.length + " 条新指令";
        setProps(S.cfg.ids.grid_banner, {className: "cc-banner is-on", children: [
            h("Span", {className: "cc-banner-mark"}, "!"),
            h("Span", {className: "cc-banner-text"}, text),
            h("Span", {className: "cc-banner-hint"}, "点击关闭")
        ]});
        beep();
        if (navigator.vibrate && audio) { try { navigator.vibrate([200, 100, 200]); } catch (e) { /* no */ } }
    }

    function hideBanner() {
        setProps(S.cfg.ids.grid_banner, {className: "cc-banner", children: null});
    }

    // --- nodes ---------------------------------------------------------------------------------
    function mine(n) { return n.target.code === S.cfg.me.unit; }

    function merge(nodes, quiet) {
        var fresh = [], deliver = [];
        nodes.forEach(function (n) {
            if (!mine(n)) { return; }
            var old = S.nodes.get(n.id);
            if (old && old.seq >= n.seq) { return; }
            S.nodes.set(n.id, n);
            if (n.state === "issued") { deliver.push(n.id); }
            var waiting = n.state === "issued" || n.state === "delivered";
            if (waiting && (!old || old.state === "returned")) { fresh.push(n); }
            if (!S.incidents[n.incident_id]) { fetchIncident(n.incident_id); }
        });
        if (deliver.length) { delivered(deliver); }
        if (fresh.length && !quiet) { announce(fresh); }
        render();
    }

    // The receipt goes on `/field`; while that is not connected, through REST.
    function delivered(ids) {
        if (socket && socket.connected) { socket.emit("delivered", {ids: ids}); return; }
        ids.forEach(function (id) {
            api("POST", "/api/v1/orders/" + encodeURIComponent(id) + "/deliver", {}).then(function (n) {
                merge([n], true);
            }).catch(function () { /* delivered again on the next connect */ });
        });
    }

    function fetchIncident(id) {
        S.incidents[id] = {title: ""};
        api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).then(function (inc) {
            S.incidents[id] = inc;
            render();
        }).catch(function () { delete S.incidents[id]; });
    }

    function button(action, node, label, cls) {
        var p = {className: "cc-btn cc-big " + (cls || ""), key: action};
        p["data-act"] = action;
        p["data-node"] = node.id;
        return h("Button", p, label);
    }

    function textarea(node, field, placeholder) {
        return h("Textarea", {className: "cc-input", rows: 3, key: field + node.id, placeholder: placeholder,
                              "data-field": field, "data-node": node.id});
    }

    function card(n) {
        var inc = S.incidents[n.incident_id] || {};
        var unacked = n.state === "issued" || n.state === "delivered";
        var working = n.state === "acknowledged" || n.state === "in_progress";
        var tm = timing(n);
        var place = [inc.township && inc.township.name, inc.grid && inc.grid.name].filter(Boolean).join(" / ");
        var body = [
            h("Div", {className: "cc-gcard-head"}, [
                h("Span", {className: "cc-prio p-" + n.priority}, priorityLabel(n.priority)),
                h("Span", {className: "cc-state st-" + n.state}, n.state_label),
                h("Span", {className: "cc-ncard-time"}, hhmm(n.created_at) + " 下达")
            ]),
            h("Div", {className: "cc-gcard-text"}, n.instruction),
            inc.title ? h("Div", {className: "cc-gcard-inc"}, "事件：" + inc.title + (place ? " · " + place : "")) : null
        ];
        if (unacked || working) {
            body.push(h("Div", {className: "cc-node-time" + (tm.overdue ? " is-overdue" : "")}, tm.text));
        }
        if (n.state === "returned") {
            body.push(h("Div", {className: "cc-node-reason"}, "已退回：" + (n.reason || "") + "。等待上级处理。"));
        }
        if (n.state === "completed") {
            body.push(h("Div", {className: "cc-node-result"}, "已办结：" + (n.result || "")));
        }
        if (unacked) {
            body.push(button("ack", n, "签收", "cc-btn-primary"));
            body.push(h("Details", {className: "cc-more", key: "more-" + n.id}, [
                h("Summary", {}, "无法办理？退回"),
                textarea(n, "reason", "请填写退回原因"),
                button("return", n, "退回", "cc-btn-warn")
            ]));
        }
        if (working) {
            body.push(h("Div", {className: "cc-node-who"}, "已由 " + (n.acked_by || "") + " 签收"));
            body.push(textarea(n, "result", "填写办理结果（完成时必填）"));
            body.push(button("complete", n, "完成", "cc-btn-ok"));
            body.push(h("Details", {className: "cc-more", key: "more-" + n.id}, [
                h("Summary", {}, "报告进展 / 退回"),
                textarea(n, "note", "进展情况，或退回原因"),
                h("Div", {className: "cc-gcard-row"}, [button("progress", n, "报告进展"),
                                                      button("return", n, "退回", "cc-btn-warn")])
            ]));
        }
        var p = {className: "cc-gcard st-" + n.state + (tm.overdue && (unacked || working) ? " is-overdue" : "") +
                 (n.priority === "urgent" ? " is-urgent" : ""), key: n.id};
        p["data-node-id"] = n.id;
        p["data-state"] = n.state;
        return h("Article", p, body);
    }

    function render() {
        var all = Array.from(S.nodes.values()).sort(function (a, b) {
            return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
        });
        var open = all.filter(function (n) { return OPEN.indexOf(n.state) >= 0; });
        var done = all.filter(function (n) { return n.state === "completed"; }).slice(0, DONE_SHOWN);
        var children = [];
        children.push(h("Div", {className: "cc-gsum", key: "sum"}, open.length ? "待办指令 " + open.length + " 条"
            : "暂无待办指令。新指令到达时会立即提醒。"));
        open.forEach(function (n) { children.push(card(n)); });
        if (done.length) {
            children.push(h("Div", {className: "cc-gsum cc-gsum-done", key: "done"}, "最近办结"));
            done.forEach(function (n) { children.push(card(n)); });
        }
        setProps(S.cfg.ids.grid_cards, {children: children});
    }

    function value(field, nodeId) {
        var el = document.querySelector("[data-field=" + field + "][data-node='" + nodeId + "']");
        return el ? el.value.trim() : "";
    }

    function act(el) {
        var action = el.getAttribute("data-act");
        var nodeId = el.getAttribute("data-node");
        var body = {};
        if (action === "complete") {
            body.result = value("result", nodeId);
            if (!body.result) { toast("请先填写办理结果", "error"); return; }
        } else if (action === "return") {
            body.reason = value("reason", nodeId) || value("note", nodeId);
            if (!body.reason) { toast("请先填写退回原因", "error"); return; }
        } else if (action === "progress") {
            body.note = value("note", nodeId);
            if (!body.note) { toast("请先填写进展情况", "error"); return; }
        }
        el.disabled = true;
        el.classList.add("is-busy");
        api("POST", "/api/v1/orders/" + encodeURIComponent(nodeId) + "/" + action, body).then(function (node) {
            hideBanner();
            toast({ack: "已签收", progress: "进展已报告", complete: "已完成，结果已上报", return: "已退回"}[action] || node.state_label);
            merge([node], true);
        }).catch(function (err) {
            el.disabled = false;
            el.classList.remove("is-busy");
            toast("操作未完成：" + err.message, "error");
        });
    }

    function start(cfg) {
        timers.forEach(clearInterval);
        timers = [];
        [socket, live].forEach(function (s) { if (s) { s.removeAllListeners(); s.disconnect(); } });
        S = {cfg: cfg, offset: cfg.now - Date.now(), nodes: new Map(), incidents: {}, loaded: false};
        render();
        timers.push(setInterval(render, TICK_MS));
        if (!listening) {
            listening = true;
            var gesture = function () { if (document.querySelector(".cc-grid")) { unlockAudio(); } };
            document.addEventListener("pointerdown", gesture, true);
            document.addEventListener("keydown", gesture, true);
            document.addEventListener("click", function (ev) {
                if (!S || !document.querySelector(".cc-grid") || !(ev.target instanceof Element)) { return; }
                var el = ev.target.closest("[data-act]");
                if (el && !el.disabled) { act(el); return; }
                if (ev.target.closest("#" + S.cfg.ids.grid_banner)) { hideBanner(); }
            });
        }
        // Order nodes come on `/field` (with the `delivered` receipts) and, for the same rooms,
        // on `/live`: either connection alone keeps the page complete (merged by seq).
        var opts = {transports: ["websocket"], path: "/socket.io",
                    reconnectionDelay: 500, reconnectionDelayMax: 3000};
        socket = window.io("/field", opts);
        live = window.io("/live", opts);
        var status = function () {
            var on = socket.connected || live.connected;
            setProps(cfg.ids.grid_status, {children: on ? "在线" : "离线 · 重连中",
                                           className: "cc-live " + (on ? "is-ok" : "is-down")});
        };
        var reload = function () {
            status();
            api("GET", "/api/v1/orders").then(function (nodes) {
                merge(nodes, !S.loaded);
                S.loaded = true;
            }).catch(function () { /* the pushed nodes still arrive */ });
        };
        [socket, live].forEach(function (s) {
            s.on("connect", reload);
            s.on("disconnect", function (reason) {
                status();
                if (reason === "io server disconnect") { setTimeout(function () { s.connect(); }, 1000); }
            });
            s.on("connect_error", status);
            s.on("orders", function (nodes) {
                if (!Array.isArray(nodes)) { return; }
                merge(nodes, false);
                S.loaded = true;
            });
        });
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenterField = {
        start: function (cfg) {
            if (cfg) { start(cfg); }
            return "实时指令（Socket.IO /field）";
        }
    };

    window.cmdcenterField = {
        connected: function () { return !!((socket && socket.connected) || (live && live.connected)); },
        fieldConnected: function () { return !!(socket && socket.connected); },
        nodes: function () { return S ? Array.from(S.nodes.values()) : []; },
        beeps: function () { return beeps; }
    };
}());
