/*
 * Helpers every page script shares: window.cmdcenter = {csrf, api, h, setProps, newPatch, el,
 * make, esc, pad, hhmm, TZ_MS, SINCE_PAGE}.
 *
 * Dash loads the files of assets/ in alphabetical order, so this one (00_…) comes first and the
 * others may read window.cmdcenter when they load.
 *
 * - api(method, path, body, headers): fetch with the session cookie; a POST (anything but GET)
 *   sends the body as JSON with X-CSRFToken from the `_csrf_token` cookie; `headers` adds more
 *   (an Idempotency-Key). Resolves with the JSON answer; rejects with an Error whose message is
 *   the server's error message (or 请求失败（status）), whose `status` is the HTTP status and
 *   whose `code` and `field` are the error's.
 * - h(type, props, children): a dash_html_components element for dash_clientside.set_props.
 * - el(tag, className, text): a plain DOM element; text goes through textContent only.
 * - make(tag, attrs, children): a DOM element from attributes ({text, className, value, any
 *   other attribute; null/false left out}) and children (nodes or strings; null skipped).
 * - esc(text): text made safe inside HTML (plotly hover text).
 * - hhmm(iso): the clock time of an instant in China (Asia/Shanghai, no daylight saving).
 * - SINCE_PAGE: the most changes one `since` answer on /live holds. A full page means ask on
 *   from its last_seq; a shorter one holds everything up to the moment it was answered, and what
 *   follows comes live on the connection: caught up (waiting for an empty page may never end
 *   while reports stream in faster than a page's round trip).
 */
(function () {
    "use strict";

    var TZ_MS = 8 * 3600 * 1000;  // Asia/Shanghai
    var SINCE_PAGE = 1000;  // command/web/sockets.py LIVE_CATCHUP_MAX

    function csrf() {
        var m = document.cookie.match(/(?:^|;\s*)_csrf_token=([^;]*)/);
        return m ? decodeURIComponent(m[1]) : "";
    }

    function api(method, path, body, headers) {
        var init = {method: method, credentials: "same-origin",
                    headers: Object.assign({"Accept": "application/json"}, headers || {})};
        if (method !== "GET") {
            init.headers["Content-Type"] = "application/json";
            init.headers["X-CSRFToken"] = csrf();
            init.body = JSON.stringify(body || {});
        }
        return fetch(path, init).then(function (r) {
            return r.json().catch(function () { return {}; }).then(function (data) {
                if (!r.ok) {
                    var err = new Error((data && data.error && data.error.message) ||
                                        ("请求失败（" + r.status + "）"));
                    err.status = r.status;
                    err.code = data && data.error && data.error.code;
                    err.field = data && data.error && data.error.field;
                    throw err;
                }
                return data;
            });
        });
    }

    function h(type, props, children) {
        var p = Object.assign({}, props || {});
        if (Array.isArray(children)) {
            children = children.filter(function (c) { return c !== null && c !== undefined; });
        }
        if (children !== undefined) { p.children = children; }
        return {type: type, namespace: "dash_html_components", props: p};
    }

    function setProps(id, props) { window.dash_clientside.set_props(id, props); }

    function newPatch() { return new window.dash_clientside.Patch(); }

    function el(tag, className, text) {
        var node = document.createElement(tag);
        if (className) { node.className = className; }
        if (text !== undefined && text !== null) { node.textContent = String(text); }
        return node;
    }

    // a DOM element from attributes (text via textContent; false/null attributes are left out)
    // and children (nodes or strings; null skipped): the plain-DOM pages' builder
    function make(tag, attrs, children) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (k) {
            var v = attrs[k];
            if (v === null || v === undefined || v === false) { return; }
            if (k === "text") { node.textContent = v; } else if (k === "className") { node.className = v; }
            else if (k === "value") { node.value = v; } else { node.setAttribute(k, v === true ? "" : v); }
        });
        (children || []).forEach(function (c) {
            if (c !== null && c !== undefined) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); }
        });
        return node;
    }

    function esc(text) {
        return String(text == null ? "" : text)
            .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    }

    function pad(n) { return (n < 10 ? "0" : "") + n; }

    function hhmm(iso) {
        var t = Date.parse(iso);
        if (isNaN(t)) { return ""; }
        var d = new Date(t + TZ_MS);
        return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    }

    window.cmdcenter = {csrf: csrf, api: api, h: h, setProps: setProps, newPatch: newPatch,
                        el: el, make: make, esc: esc, pad: pad, hhmm: hhmm, TZ_MS: TZ_MS,
                        SINCE_PAGE: SINCE_PAGE};
})();
