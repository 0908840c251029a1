/*
 * The grid worker's phone: the service worker (served as /grid-sw.js, scope /grid).
 *
 * It keeps the app shell — the page, its script and style, the Socket.IO client, the alert
 * ticker, the icons and the manifest — so /grid opens with no network at all after one online
 * visit. The page itself goes to the network first (a new version arrives at once) and falls back
 * to the kept copy; the versioned files come from the cache. Data (orders, reports, the outbox)
 * lives in IndexedDB, kept by the page; API calls pass straight through.
 */
"use strict";

var VERSION = "__VERSION__";
var CACHE = "cmdcenter-grid-" + VERSION;
var SHELL = ["/grid", "/grid/manifest.webmanifest", "/grid/static/icon-192.png",
             "/grid/static/icon-512.png"].concat(
    ["phone.js", "phone.css", "socket.io.min.js", "00_common.js", "alert_ticker.js", "alert_ticker.css"]
        .map(function (name) { return "/grid/static/" + name + "?v=" + VERSION; }));

self.addEventListener("install", function (event) {
    event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); })
        .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
    event.waitUntil(caches.keys().then(function (keys) {
        return Promise.all(keys.filter(function (k) { return k.indexOf("cmdcenter-grid-") === 0 && k !== CACHE; })
            .map(function (k) { return caches.delete(k); }));
    }).then(function () { return self.clients.claim(); }));
});

function networkFirst(request, key) {
    return fetch(request).then(function (response) {
        if (response.ok) {
            var copy = response.clone();
            caches.open(CACHE).then(function (cache) { cache.put(key, copy); });
        }
        return response;
    }, function () {
        return caches.open(CACHE).then(function (cache) { return cache.match(key); }).then(function (kept) {
            return kept || new Response("离线：请先联网打开一次网格工作台。", {status: 503,
                headers: {"Content-Type": "text/plain; charset=utf-8"}});
        });
    });
}

self.addEventListener("fetch", function (event) {
    var request = event.request;
    if (request.method !== "GET") { return; }
    var url = new URL(request.url);
    if (url.origin !== self.location.origin) { return; }
    if (url.pathname === "/grid" || url.pathname === "/grid/") {
        event.respondWith(networkFirst(request, "/grid"));
    } else if (url.pathname === "/grid/config") {
        event.respondWith(fetch(request));  // the page keeps the last answer itself
    } else if (url.pathname.indexOf("/grid/static/") === 0 || url.pathname === "/grid/manifest.webmanifest") {
        event.respondWith(caches.open(CACHE).then(function (cache) {
            return cache.match(request).then(function (kept) {
                return kept || fetch(request).then(function (response) {
                    if (response.ok) { cache.put(request, response.clone()); }
                    return response;
                });
            });
        }));
    }
});
