/* Marks the wall screen's incidents that have open dispatch orders (指令).
 *
 * Seeds from GET /api/v1/orders?open=1, then follows the `orders` events of the wall's /live
 * socket (window.cmdcenterLive.socket()); re-seeds after every reconnect. The mark is an
 * attribute on each list item (`data-open-orders`), re-applied whenever the list changes.
 * A no-op on pages without #incident-feed.
 */
(function () {
    "use strict";
    var OPEN = {issued: 1, delivered: 1, acknowledged: 1, in_progress: 1, returned: 1};
    var nodes = new Map();   // node id -> {incident, open, seq}
    var hooked = null;
    var observer = null;

    function upsert(items) {
        (items || []).forEach(function (n) {
            var known = nodes.get(n.id);
            if (known && known.seq >= n.seq) { return; }
            nodes.set(n.id, {incident: n.incident_id, open: !!OPEN[n.state], seq: n.seq});
        });
        paint();
    }

    function counts() {
        var out = {};
        nodes.forEach(function (n) { if (n.open) { out[n.incident] = (out[n.incident] || 0) + 1; } });
        return out;
    }

    function paint() {
        var feed = document.getElementById("incident-feed");
        if (!feed) { return; }
        var open = counts();
        feed.querySelectorAll("[data-incident-id]").forEach(function (el) {
            var n = open[el.getAttribute("data-incident-id")];
            if (n) {
                if (el.getAttribute("data-open-orders") !== String(n)) {
                    el.setAttribute("data-open-orders", String(n));
                }
            } else if (el.hasAttribute("data-open-orders")) {
                el.removeAttribute("data-open-orders");
            }
        });
    }

    function seed() {
        window.cmdcenter.api("GET", "/api/v1/orders?open=1")
            .then(function (items) { nodes.clear(); upsert(items); })
            .catch(function () { /* the next reconnect seeds again */ });
    }

    function hook() {
        var feed = document.getElementById("incident-feed");
        var socket = window.cmdcenterLive && window.cmdcenterLive.socket && window.cmdcenterLive.socket();
        if (feed && !observer) {
            observer = new MutationObserver(function (changes) {
                if (changes.some(function (c) { return c.type === "childList"; })) { paint(); }
            });
            observer.observe(feed, {childList: true});
        }
        if (socket && socket !== hooked) {
            hooked = socket;
            socket.on("orders", upsert);
            socket.on("connect", seed);
            seed();
        }
    }

    setInterval(function () { if (document.getElementById("incident-feed")) { hook(); } }, 500);
}());
