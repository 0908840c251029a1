/* Open alerts (督办 and, later, risk warnings) over the wall screen's map.
 *
 * Seeds from GET /api/v1/alerts?status=open, then follows the `alerts` events of the wall's
 * /live socket (window.cmdcenterLive.socket()). Re-seeds after every reconnect, so nothing is
 * missed while disconnected. Text is set with textContent: never interpreted as HTML.
 * A no-op on pages without #alert-strip.
 */
(function () {
    "use strict";
    var LEVELS = {red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色"};
    var ORDER = {red: 0, orange: 1, yellow: 2, blue: 3};
    var RULES = {overdue: "督办", escalated: "督办升级"};
    var SHOWN = 4;
    var alerts = new Map();
    var hooked = null;

    function live(a) { return a.status === "open" || a.status === "acknowledged"; }

    function upsert(items) {
        (items || []).forEach(function (a) {
            var known = alerts.get(a.id);
            if (known && known.seq >= a.seq) { return; }
            if (live(a)) { alerts.set(a.id, a); } else { alerts.delete(a.id); }
        });
        render();
    }

    function render() {
        var strip = document.getElementById("alert-strip");
        if (!strip) { return; }
        var list = Array.from(alerts.values()).sort(function (a, b) {
            return (ORDER[a.level] - ORDER[b.level]) || (b.seq - a.seq);
        });
        strip.textContent = "";
        list.slice(0, SHOWN).forEach(function (a) {
            var card = document.createElement("div");
            card.className = "alert-card level-" + a.level;
            card.setAttribute("data-alert-id", a.id);
            var head = document.createElement("div");
            head.className = "alert-head";
            head.textContent = (RULES[a.rule] || a.rule) + " · " + (LEVELS[a.level] || a.level) + "预警" +
                (a.status === "acknowledged" ? " · 已确认" : "");
            var text = document.createElement("div");
            text.className = "alert-text";
            text.textContent = a.message;
            card.appendChild(head);
            card.appendChild(text);
            strip.appendChild(card);
        });
        if (list.length > SHOWN) {
            var more = document.createElement("div");
            more.className = "alert-more";
            more.textContent = "另有 " + (list.length - SHOWN) + " 条预警";
            strip.appendChild(more);
        }
        strip.classList.toggle("has-alerts", list.length > 0);
    }

    function seed() {
        fetch("/api/v1/alerts?status=open", {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : []; })
            .then(function (items) { alerts.clear(); upsert(items); })
            .catch(function () { /* the next reconnect seeds again */ });
    }

    function hook() {
        var socket = window.cmdcenterLive && window.cmdcenterLive.socket && window.cmdcenterLive.socket();
        if (socket && socket !== hooked) {
            hooked = socket;
            socket.on("alerts", upsert);
            socket.on("connect", seed);
            seed();
        }
    }

    setInterval(function () { if (document.getElementById("alert-strip")) { hook(); } }, 500);
}());
