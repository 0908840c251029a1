/*
 * The grid worker's phone `/grid` (command/web/phone.py): orders, reporting from the field,
 * "my reports" — and nothing lost when the signal comes and goes.
 *
 * - Every report gets its id (a UUID) here when it is made, and is written with its photos
 *   (resized to ≤ 1600 px JPEG, hashed once) to an outbox in IndexedDB BEFORE any network call.
 *   It leaves the outbox only when the server's answers say the report and each photo are stored.
 * - One sender at a time, in creation order, for the signed-in user only: when the network comes
 *   back (`online`, `visibilitychange`), after something is queued, and on a timer with backoff.
 *   Network errors, 5xx and 429 are retried; 401 keeps the outbox and asks for sign-in; any other
 *   4xx is 被拒绝 with the reason, fixable and sent again (the same id after a 422, a new one after
 *   a conflict). Photos go up in 256 kB pieces that resume where the server's `Range` says.
 * - Order actions (签收, progress, 完成, 退回) are queued the same way, with the phone's
 *   `action_id` and the moment they were taken (`acted_at`).
 * - The page opens with no network after one online visit (the service worker /grid-sw.js keeps
 *   the shell; the last orders, config and reports are kept in IndexedDB).
 *
 * Test hooks: window.cmdcenterField = {ready(), connected(), nodes(), beeps(), outbox(), sending(), kick(),
 *   idle(), uploadResumable(reportId, blob)}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;
    var DB_NAME = "cmdcenter-phone";
    var CHUNK = 256 * 1024;
    var MAX_PX = 1600;
    var TICK_MS = 15000;
    var BACKOFF_MIN = 2000;
    var BACKOFF_MAX = 60000;
    var OPEN = ["issued", "delivered", "acknowledged", "in_progress", "returned"];
    var STATE_TEXT = {pending: "待发送", sending: "发送中", delivered: "已送达", rejected: "被拒绝"};

    var S = {cfg: null, nodes: new Map(), incidents: {}, mine: [], sending: false, timer: null,
             backoff: BACKOFF_MIN, form: {photos: [], position: null, point: null}, ready: false,
             idle: true, beeps: 0, signedOut: false};
    var db = null;
    var socket = null, live = null;
    var audio = null;

    // --- small helpers ------------------------------------------------------------------------
    function $(id) { return document.getElementById(id); }

    function el(tag, attrs, children) {
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

    function uuid() {
        if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
        var b = crypto.getRandomValues(new Uint8Array(16));
        b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
        var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
        return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
    }

    function isoNow() {  // when the worker did it, in China time
        var d = new Date(Date.now() + C.TZ_MS);
        return d.toISOString().slice(0, 19) + "+08:00";
    }

    function toast(text, kind) {
        var box = $("grid-message");
        box.textContent = text;
        box.className = "cc-toast is-" + (kind || "ok");
        clearTimeout(S.toastTimer);
        S.toastTimer = setTimeout(function () { box.className = "cc-toast"; }, kind === "error" ? 7000 : 3000);
    }

    function notice(text) {
        var box = $("grid-notice");
        box.textContent = text || "";
        box.hidden = !text;
    }

    function status(text, cls) {
        var box = $("grid-status");
        box.textContent = text;
        box.className = "cc-live " + cls;
    }

    // --- IndexedDB: the outbox, the photos' bytes, and the last state seen --------------------
    function openDb() {
        return new Promise(function (resolve, reject) {
            var req = indexedDB.open(DB_NAME, 1);
            req.onupgradeneeded = function () {
                var d = req.result;
                var out = d.createObjectStore("outbox", {keyPath: "id"});
                out.createIndex("user", "user");
                d.createObjectStore("blobs", {keyPath: "sha"});
                d.createObjectStore("kv", {keyPath: "key"});
            };
            req.onsuccess = function () { resolve(req.result); };
            req.onerror = function () { reject(req.error); };
        });
    }

    function store(name, mode, work) {
        return new Promise(function (resolve, reject) {
            var t = db.transaction(name, mode);
            var result;
            t.oncomplete = function () { resolve(result); };
            t.onerror = function () { reject(t.error); };
            t.onabort = function () { reject(t.error || new Error("aborted")); };
            var req = work(t.objectStore(name));
            if (req) { req.onsuccess = function () { result = req.result; }; }
        });
    }

    function put(name, value) { return store(name, "readwrite", function (s) { return s.put(value); }).catch(storageError); }
    function get(name, key) { return store(name, "readonly", function (s) { return s.get(key); }); }
    function del(name, key) { return store(name, "readwrite", function (s) { return s.delete(key); }); }

    function outboxOf(user) {
        return store("outbox", "readonly", function (s) { return s.index("user").getAll(user); }).then(function (all) {
            return (all || []).sort(function (a, b) { return a.created - b.created || (a.id < b.id ? -1 : 1); });
        });
    }

    // an attempt cut short when the page closed (the battery ran out mid-send) is waiting
    // again: nothing is being sent before this page starts sending, so none says 发送中
    function unstick(user) {
        return outboxOf(user).then(function (entries) {
            var stuck = entries.filter(function (e) { return e.state === "sending"; });
            return Promise.all(stuck.map(function (e) {
                e.state = "pending";
                return put("outbox", e);
            }));
        });
    }

    function storageError(err) {
        notice("手机存储出错：" + (err && err.name === "QuotaExceededError" ? "存储空间已满，请清理手机空间" : (err && err.message) || err) +
               "。未保存的内容请勿关闭页面。");
        throw err;
    }

    // --- the network, told apart: gone, refused, or answered ------------------------------------
    function call(method, path, body, headers) {
        var init = {method: method, credentials: "same-origin", headers: Object.assign({"Accept": "application/json"}, headers || {})};
        if (body !== undefined) {
            if (body instanceof Blob) { init.body = body; } else {
                init.headers["Content-Type"] = "application/json";
                init.body = JSON.stringify(body);
            }
        }
        if (method !== "GET" && method !== "HEAD") { init.headers["X-CSRFToken"] = C.csrf(); }
        return fetch(path, init).then(function (r) {
            var finish = function (data) { return {status: r.status, ok: r.ok, data: data, headers: r.headers}; };
            if (method === "HEAD" || r.status === 201 || r.status === 308) { return finish(null); }
            return r.json().then(finish, function () { return finish(null); });
        }, function () { return {status: 0, ok: false, data: null, headers: null}; });
    }

    function transient(answer) { return answer.status === 0 || answer.status >= 500 || answer.status === 429; }

    function reason(answer) {
        var e = answer.data && answer.data.error;
        return e ? e.message + (e.field ? "（" + e.field + "）" : "") : "服务器拒绝（" + answer.status + "）";
    }

    // --- sending, one at a time, oldest first --------------------------------------------------
    function kick() {
        clearTimeout(S.timer);
        S.timer = null;
        if (!S.cfg || S.signedOut) { return; }
        // an action or report saved while a pass is sending was not in that pass's queue:
        // the pass ends by starting another, or it would wait for the next reconnect
        if (S.sending) { S.again = true; return; }
        S.sending = true;
        S.again = false;
        S.idle = false;
        drain().then(function (next) {
            S.sending = false;
            S.idle = next === "done" && !S.again;
            if (next === "retry") {
                S.timer = setTimeout(kick, S.backoff);
                S.backoff = Math.min(S.backoff * 2, BACKOFF_MAX);
            } else if (next === "done") {
                S.backoff = BACKOFF_MIN;
            }
            renderMine();
            if (next === "done" && S.again) { kick(); }
        }, function (err) {
            S.sending = false;
            S.timer = setTimeout(kick, S.backoff);
            notice("发送出错：" + ((err && err.message) || err));
        });
    }

    function drain() {
        return outboxOf(S.cfg.me.name).then(function (entries) {
            var queue = entries.filter(function (e) {
                return e.state === "pending" || e.state === "sending" ||
                    (e.kind === "report" && e.state === "delivered" && e.photos.some(function (p) { return p.state !== "done"; }));
            });
            var step = function (k) {
                if (k >= queue.length) { return Promise.resolve("done"); }
                return sendOne(queue[k]).then(function (next) {
                    return next === "next" ? step(k + 1) : next;
                });
            };
            return step(0);
        });
    }

    function sendOne(entry) {
        entry.state = "sending";
        return put("outbox", entry).then(function () {
            renderMine();
            return entry.kind === "action" ? sendAction(entry) : sendReport(entry);
        });
    }

    function settle(entry, answer) {  // what an answer means for the queue
        if (answer.status === 401) {
            entry.state = "pending";
            return put("outbox", entry).then(function () {
                status("请重新登录", "is-down");
                notice("登录已失效：上报和操作都已保存在手机上，重新登录后会自动发送。");
                return "auth";
            });
        }
        if (transient(answer)) {
            entry.state = "pending";
            entry.attempts = (entry.attempts || 0) + 1;
            return put("outbox", entry).then(function () { return "retry"; });
        }
        entry.state = "rejected";
        entry.error = {status: answer.status, code: answer.data && answer.data.error && answer.data.error.code,
                       message: reason(answer)};
        return put("outbox", entry).then(function () { return "next"; });
    }

    function sendReport(entry) {
        var sent = entry.incident ? Promise.resolve(null) :
            call("POST", "/api/v1/field/reports", entry.body);
        return sent.then(function (answer) {
            if (answer) {
                if (!(answer.ok && answer.data && answer.data.ok)) { return settle(entry, answer); }
                var inc = answer.data.incident;
                entry.incident = {id: inc.id, case_no: inc.case_no, seq: inc.seq, status_label: inc.status_label};
                return put("outbox", entry).then(function () { return sendPhotos(entry); });
            }
            return sendPhotos(entry);
        });
    }

    function sendPhotos(entry) {
        var pending = entry.photos.filter(function (p) { return p.state !== "done"; });
        var step = function (k) {
            if (k >= pending.length) {
                entry.state = "delivered";
                entry.delivered_at = Date.now();
                return put("outbox", entry).then(function () { loadMine(); return "next"; });
            }
            var p = pending[k];
            return get("blobs", p.sha).then(function (held) {
                if (!held) {  // lost from the phone's storage: nothing more can be sent
                    p.state = "done";
                    p.lost = true;
                    return put("outbox", entry).then(function () { return step(k + 1); });
                }
                return upload("/api/v1/field/reports/" + encodeURIComponent(entry.body.id) + "/photos/" + p.sha,
                              held.blob).then(function (answer) {
                    if (answer.status !== 201) { return settle(entry, answer); }
                    p.state = "done";
                    return put("outbox", entry).then(function () {
                        return forget(p.sha);
                    }).then(function () { return step(k + 1); });
                });
            });
        };
        return step(0);
    }

    // A photo's bytes leave the phone once no waiting report of anyone on it still needs them.
    function forget(sha) {
        return store("outbox", "readonly", function (s) { return s.getAll(); }).then(function (all) {
            var needed = (all || []).some(function (e) {
                return e.kind === "report" && (e.photos || []).some(function (p) { return p.sha === sha && p.state !== "done"; });
            });
            return needed ? null : del("blobs", sha);
        });
    }

    // Delivered reports stay a week on the phone (我的上报 shows them offline), then only the
    // server's list keeps them.
    function prune() {
        var cutoff = Date.now() - 7 * 24 * 3600 * 1000;
        return outboxOf(S.cfg.me.name).then(function (all) {
            return Promise.all(all.filter(function (e) { return e.state === "delivered" && (e.delivered_at || 0) < cutoff; })
                .map(function (e) { return del("outbox", e.id); }));
        }).then(function () {  // photos taken for a report that was never saved
            return Promise.all([store("outbox", "readonly", function (s) { return s.getAll(); }),
                                store("blobs", "readonly", function (s) { return s.getAllKeys(); })]);
        }).then(function (both) {
            var keep = {};
            both[0].forEach(function (e) { (e.photos || []).forEach(function (p) { if (p.state !== "done") { keep[p.sha] = true; } }); });
            S.form.photos.forEach(function (p) { keep[p.sha] = true; });
            return Promise.all(both[1].filter(function (sha) { return !keep[sha]; }).map(function (sha) { return del("blobs", sha); }));
        }).catch(function () {});
    }

    // One photo, resumable: ask what the server holds, then send the rest in pieces.
    function upload(path, blob) {
        return call("HEAD", path).then(function (head) {
            if (head.status === 201 || transient(head) || head.status === 401) { return head; }
            if (head.status !== 308) { return head; }
            var offset = held(head);
            var next = function () {
                var end = Math.min(offset + CHUNK, blob.size);
                return call("PUT", path, blob.slice(offset, end), {
                    "Content-Range": "bytes " + offset + "-" + (end - 1) + "/" + blob.size
                }).then(function (answer) {
                    if (answer.status !== 308) { return answer; }
                    offset = held(answer);
                    return next();
                });
            };
            return next();
        });
    }

    function held(answer) {
        var range = answer.headers && answer.headers.get("Range");
        var m = range && /bytes=0-(\d+)/.exec(range);
        return m ? Number(m[1]) + 1 : 0;
    }

    function sendAction(entry) {
        return call("POST", "/api/v1/orders/" + encodeURIComponent(entry.node_id) + "/" + entry.action, entry.body)
            .then(function (answer) {
                if (answer.ok) {
                    merge([answer.data], true);
                    return del("outbox", entry.id).then(function () { return "next"; });
                }
                if (answer.status === 409 && answer.data && answer.data.node) {
                    merge([answer.data.node], true);  // the card shows how things stand now
                }
                return settle(entry, answer);
            });
    }

    // --- photos: resized once, hashed once, kept until stored ----------------------------------
    function resize(file) {
        return createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bitmap) {
            var scale = Math.min(1, MAX_PX / Math.max(bitmap.width, bitmap.height));
            var w = Math.round(bitmap.width * scale), h = Math.round(bitmap.height * scale);
            var canvas = document.createElement("canvas");
            canvas.width = w; canvas.height = h;
            canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
            return new Promise(function (resolve, reject) {
                canvas.toBlob(function (blob) { if (blob) { resolve(blob); } else { reject(new Error("照片无法处理")); } },
                              "image/jpeg", 0.85);
            });
        });
    }

    function sha256(blob) {
        return blob.arrayBuffer().then(function (buf) { return crypto.subtle.digest("SHA-256", buf); }).then(function (d) {
            return Array.prototype.map.call(new Uint8Array(d), function (x) { return (x + 256).toString(16).slice(1); }).join("");
        });
    }

    function addPhoto(file) {
        return resize(file).then(function (blob) {
            return sha256(blob).then(function (sha) {
                return put("blobs", {sha: sha, blob: blob, user: S.cfg.me.name}).then(function () {
                    return {sha: sha, size: blob.size, url: URL.createObjectURL(blob)};
                });
            });
        });
    }

    // --- the report form ------------------------------------------------------------------------
    function typeOptions() {
        var out = [];
        S.cfg.types.forEach(function (t) {
            if (S.cfg.matter_types.indexOf(t[0]) >= 0 && t[0] === "dispute") {
                S.cfg.categories.forEach(function (c) { out.push(["dispute|" + c[0], t[1] + " · " + c[1]]); });
            } else {
                out.push([t[0] + "|", t[1]]);
            }
        });
        return out;
    }

    function field(label, control) { return el("label", {className: "ph-field"}, [el("span", {text: label}), control]); }

    function renderForm() {
        var form = $("grid-report");
        form.textContent = "";
        var f = S.form;
        f.type = el("select", {name: "type"}, typeOptions().map(function (o) { return el("option", {value: o[0], text: o[1]}); }));
        f.title = el("input", {name: "title", maxlength: 200, placeholder: "一句话说明看到了什么"});
        f.description = el("textarea", {name: "description", rows: 3, placeholder: "详细情况（可不填）"});
        f.severity = el("select", {name: "severity"}, [["4", "Ⅳ级 一般"], ["3", "Ⅲ级 较大"], ["2", "Ⅱ级 重大"], ["1", "Ⅰ级 特别重大"]].map(function (o) {
            return el("option", {value: o[0], text: o[1]});
        }));
        f.people = el("input", {name: "people", type: "number", min: 0, inputmode: "numeric", placeholder: "人数"});
        f.file = el("input", {type: "file", accept: "image/*", capture: "environment", multiple: true});
        f.photosBox = el("div", {className: "ph-photos"});
        f.where = el("div", {className: "ph-where"});
        f.map = drawing();
        f.grid = el("select", {name: "grid"}, S.cfg.grids.map(function (g) { return el("option", {value: g[0], text: g[1]}); }));
        f.spot = el("input", {type: "checkbox", name: "closure"});
        f.note = el("textarea", {name: "note", rows: 2, placeholder: "当场如何化解（勾选“当场化解”时必填）"});
        f.error = el("div", {className: "ph-error", role: "alert"});
        var choice = el("div", {className: "ph-choice", role: "radiogroup"}, [
            el("label", {}, [el("input", {type: "radio", name: "position", value: "gps"}), "手机定位"]),
            el("label", {}, [el("input", {type: "radio", name: "position", value: "map"}), "在图上点选"]),
            el("label", {}, [el("input", {type: "radio", name: "position", value: "grid", checked: true}), "按所在网格"])
        ]);
        var spotRow = el("div", {className: "ph-spot"}, [el("label", {className: "ph-check"}, [f.spot, "当场化解（即接即办）"]), f.note]);
        form.append(
            field("类型", f.type), field("标题", f.title), field("描述", f.description),
            el("div", {className: "ph-row"}, [field("等级", f.severity), field("涉及人数", f.people)]),
            el("div", {className: "ph-field"}, [el("span", {text: "照片（最多" + S.cfg.max_photos + "张）"}),
                el("label", {className: "ph-file"}, ["拍照 / 从相册选择", f.file]), f.photosBox]),
            el("div", {className: "ph-field"}, [el("span", {text: "位置"}), choice, f.where, f.map,
                S.cfg.grids.length > 1 ? field("网格", f.grid) : null]),
            spotRow, f.error,
            el("button", {type: "submit", className: "cc-btn cc-btn-primary cc-big", text: "保存并上报"})
        );
        f.type.addEventListener("change", syncType);
        choice.addEventListener("change", function (ev) { setPosition(ev.target.value); });
        f.file.addEventListener("change", function () {
            var files = Array.prototype.slice.call(f.file.files || []);
            f.file.value = "";
            files.forEach(function (file) {
                if (f.photos.length >= S.cfg.max_photos) { toast("最多" + S.cfg.max_photos + "张照片", "error"); return; }
                addPhoto(file).then(function (p) { f.photos.push(p); renderPhotos(); },
                                    function (err) { toast("照片未能保存：" + err.message, "error"); });
            });
        });
        form.onsubmit = function (ev) { ev.preventDefault(); submit(); };
        f.editing = null;
        setPosition("grid");
        syncType();
        renderPhotos();
    }

    function syncType() {
        var f = S.form;
        var code = f.type.value.split("|")[0];
        f.spot.closest(".ph-spot").hidden = S.cfg.matter_types.indexOf(code) < 0;
    }

    function renderPhotos() {
        var f = S.form;
        f.photosBox.textContent = "";
        f.photos.forEach(function (p, k) {
            var remove = el("button", {type: "button", "aria-label": "删除这张照片", text: "×"});
            remove.onclick = function () { f.photos.splice(k, 1); renderPhotos(); };
            f.photosBox.appendChild(el("div", {className: "ph-photo"}, [el("img", {src: p.url || "", alt: "照片"}), remove]));
        });
    }

    function setPosition(mode) {
        var f = S.form;
        f.position = mode;
        if (mode === "map") { f.map.removeAttribute("hidden"); } else { f.map.setAttribute("hidden", ""); }
        if (mode === "gps") {
            f.point = null;
            f.where.textContent = "正在获取手机位置…";
            if (!navigator.geolocation) { f.where.textContent = "此手机不能定位，请在图上点选或按网格上报"; return; }
            navigator.geolocation.getCurrentPosition(function (pos) {
                f.point = {lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy};
                f.where.textContent = "已定位（精度约 " + Math.round(pos.coords.accuracy) + " 米）";
            }, function (err) {
                f.where.textContent = "定位失败（" + err.message + "），请在图上点选或按网格上报";
            }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
        } else if (mode === "map") {
            f.point = null;
            f.where.textContent = "在下图中点出位置";
        } else {
            f.point = null;
            f.where.textContent = "按所在网格上报（位置为网格的概略位置）";
        }
    }

    // The worker's own grid as a small drawing (no map tiles, no plotly): tap to place.
    function drawing() {
        var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("class", "ph-map");
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", "网格示意图：点选位置");
        var rings = [];
        var g = S.cfg.outline;
        if (g) {
            var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
            polys.forEach(function (p) { rings.push(p[0]); });
        }
        var xs = [], ys = [];
        rings.forEach(function (r) { r.forEach(function (c) { xs.push(c[0]); ys.push(c[1]); }); });
        if (!xs.length) { svg.setAttribute("hidden", ""); return svg; }
        var minX = Math.min.apply(null, xs), maxX = Math.max.apply(null, xs);
        var minY = Math.min.apply(null, ys), maxY = Math.max.apply(null, ys);
        var k = Math.cos((minY + maxY) / 2 * Math.PI / 180);  // metres east per degree, relatively
        var w = (maxX - minX) * k || 1e-6, h = (maxY - minY) || 1e-6;
        var pad = Math.max(w, h) * 0.06;
        svg.setAttribute("viewBox", [-pad, -pad, w + 2 * pad, h + 2 * pad].join(" "));
        svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
        var toXY = function (c) { return [(c[0] - minX) * k, maxY - c[1]]; };
        rings.forEach(function (r) {
            var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
            path.setAttribute("d", r.map(function (c, i) { var p = toXY(c); return (i ? "L" : "M") + p[0] + " " + p[1]; }).join(" ") + "Z");
            svg.appendChild(path);
        });
        var dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
        dot.setAttribute("r", Math.max(w, h) / 40);
        dot.style.display = "none";
        svg.appendChild(dot);
        svg.addEventListener("click", function (ev) {
            var pt = svg.createSVGPoint();
            pt.x = ev.clientX; pt.y = ev.clientY;
            var p = pt.matrixTransform(svg.getScreenCTM().inverse());
            dot.setAttribute("cx", p.x); dot.setAttribute("cy", p.y);
            dot.style.display = "";
            S.form.point = {lon: minX + p.x / k, lat: maxY - p.y, accuracy: null};
            S.form.where.textContent = "已在图上点选位置";
        });
        return svg;
    }

    function submit() {
        var f = S.form;
        var split = f.type.value.split("|");
        var body = {id: f.editing ? f.editing.id : uuid(), type: split[0], title: f.title.value.trim(),
                    occurred_at: f.editing ? f.editing.body.occurred_at : isoNow(),
                    severity: Number(f.severity.value), position: f.position};
        if (split[1]) { body.category = split[1]; }
        if (f.description.value.trim()) { body.description = f.description.value.trim(); }
        if (f.people.value !== "") { body.people = Number(f.people.value); }
        if (f.position === "grid") {
            body.grid = f.grid.value || S.cfg.me.unit;
        } else {
            if (!f.point) { f.error.textContent = f.position === "gps" ? "还没有定位到，请稍候或改为按网格" : "请在图上点出位置"; return; }
            body.lon = f.point.lon; body.lat = f.point.lat;
            if (f.point.accuracy != null) { body.accuracy_m = Math.round(f.point.accuracy * 10) / 10; }
        }
        if (!f.spot.closest(".ph-spot").hidden && f.spot.checked) {
            body.closure = "on_the_spot";
            body.note = f.note.value.trim();
            if (!body.note) { f.error.textContent = "当场化解请写明如何化解"; return; }
        }
        if (!body.title) { f.error.textContent = "请填写标题"; return; }
        f.error.textContent = "";
        var entry = f.editing || {id: body.id, user: S.cfg.me.name, kind: "report", created: Date.now()};
        entry.id = body.id;
        entry.body = body;
        entry.state = "pending";
        entry.error = null;
        entry.photos = f.photos.map(function (p) { return {sha: p.sha, size: p.size, state: "pending"}; });
        var replaced = f.editing && f.editing.oldId && f.editing.oldId !== entry.id ? del("outbox", f.editing.oldId) : Promise.resolve();
        replaced.then(function () { return put("outbox", entry); }).then(function () {
            toast(navigator.onLine ? "已保存，正在上报" : "已保存在手机上，联网后自动上报");
            f.photos = [];
            renderForm();
            showTab("mine");
            kick();
        }, function () { f.error.textContent = "未能保存到手机，请重试"; });
    }

    function edit(entry) {  // a rejected report, fixed and sent again
        renderForm();
        var f = S.form;
        var b = entry.body;
        f.type.value = b.type + "|" + (b.category || "");
        f.title.value = b.title || "";
        f.description.value = b.description || "";
        f.severity.value = String(b.severity || 4);
        f.people.value = b.people == null ? "" : b.people;
        f.photos = entry.photos.map(function (p) { return {sha: p.sha, size: p.size, url: ""}; });
        Promise.all(f.photos.map(function (p) {
            return get("blobs", p.sha).then(function (held) { if (held) { p.url = URL.createObjectURL(held.blob); } });
        })).then(renderPhotos);
        var conflict = entry.error && entry.error.code === "conflict";
        f.editing = {id: conflict ? uuid() : entry.id, oldId: entry.id, user: entry.user, kind: "report",
                     created: entry.created, body: b};
        showTab("report");
        f.error.textContent = "上次被拒绝：" + (entry.error ? entry.error.message : "") +
            (conflict ? "（将以新编号重新上报）" : "");
        syncType();
    }

    // --- orders ----------------------------------------------------------------------------------
    function mine(n) { return n.target.code === S.cfg.me.unit; }

    function merge(nodes, quiet) {
        var fresh = [], deliver = [];
        nodes.forEach(function (n) {
            if (!n || !n.target || !mine(n)) { return; }
            var old = S.nodes.get(n.id);
            if (old && old.seq > n.seq) { return; }
            S.nodes.set(n.id, n);
            if (n.state === "issued") { deliver.push(n.id); }
            var waiting = n.state === "issued" || n.state === "delivered";
            if (waiting && (!old || old.state === "returned")) { fresh.push(n); }
            if (!S.incidents[n.incident_id]) { fetchIncident(n.incident_id); }
        });
        if (deliver.length && socket && socket.connected) { socket.emit("delivered", {ids: deliver}); }
        if (fresh.length && !quiet && S.loaded) { announce(fresh); }
        saveNodes();
        renderOrders();
    }

    function saveNodes() {
        clearTimeout(S.saveTimer);
        S.saveTimer = setTimeout(function () {
            put("kv", {key: "nodes:" + S.cfg.me.name, value: Array.from(S.nodes.values()), incidents: S.incidents}).catch(function () {});
        }, 300);
    }

    function fetchIncident(id) {
        S.incidents[id] = S.incidents[id] || {title: ""};
        C.api("GET", "/api/v1/incidents/" + encodeURIComponent(id)).then(function (inc) {
            S.incidents[id] = {title: inc.title, township: inc.township, grid: inc.grid, case_no: inc.case_no};
            renderOrders();
            saveNodes();
        }).catch(function () { /* offline: the title comes with the next visit */ });
    }

    function queuedFor(nodeId) {
        return (S.queued || []).filter(function (e) { return e.kind === "action" && e.node_id === nodeId && e.state !== "rejected"; });
    }

    function card(n) {
        var inc = S.incidents[n.incident_id] || {};
        var queued = queuedFor(n.id);
        var unacked = (n.state === "issued" || n.state === "delivered") && !queued.some(function (e) { return e.action === "ack" || e.action === "return"; });
        var working = (n.state === "acknowledged" || n.state === "in_progress" ||
                       queued.some(function (e) { return e.action === "ack"; })) &&
                      !queued.some(function (e) { return e.action === "complete" || e.action === "return"; });
        var tm = timing(n);
        var place = [inc.township && inc.township.name, inc.grid && inc.grid.name].filter(Boolean).join(" / ");
        var label = function (code) { return (S.cfg.priorities.filter(function (p) { return p[0] === code; })[0] || [code, code])[1]; };
        var body = [
            el("div", {className: "cc-gcard-head"}, [
                el("span", {className: "cc-prio p-" + n.priority, text: label(n.priority)}),
                el("span", {className: "cc-state st-" + n.state, text: n.state_label}),
                n.role ? el("span", {className: "ph-chip", text: n.role === "lead" ? "事项主办" : "事项协办"}) : null,
                el("span", {className: "cc-ncard-time", text: C.hhmm(n.created_at) + " 下达"})
            ]),
            el("div", {className: "cc-gcard-text", text: n.instruction}),
            inc.title ? el("div", {className: "cc-gcard-inc", text: "事件：" + inc.title + (place ? " · " + place : "") +
                                                              (inc.case_no ? " · " + inc.case_no : "")}) : null
        ];
        queued.forEach(function (e) {
            body.push(el("div", {className: "cc-node-who", text: "待发送：" + ({ack: "签收", progress: "进展", complete: "完成", return: "退回"}[e.action]) +
                                                            "（" + C.hhmm(e.body.acted_at) + " 已办，联网后自动报送）"}));
        });
        (S.refused || []).filter(function (e) { return e.node_id === n.id; }).forEach(function (e) {
            body.push(el("div", {className: "cc-node-reason", text: "操作未被接受：" + (e.error ? e.error.message : "")}));
        });
        if ((unacked || working) && !queued.length) {
            body.push(el("div", {className: "cc-node-time" + (tm.overdue ? " is-overdue" : ""), text: tm.text}));
        }
        if (n.state === "returned") { body.push(el("div", {className: "cc-node-reason", text: "已退回：" + (n.reason || "") + "。等待上级处理。"})); }
        if (n.state === "completed") { body.push(el("div", {className: "cc-node-result", text: "已办结：" + (n.result || "")})); }
        if (n.state === "cancelled") { body.push(el("div", {className: "cc-node-reason", text: "已撤销"})); }
        if (unacked) {
            body.push(button("ack", n, "签收", "cc-btn-primary"));
            body.push(el("details", {className: "cc-more"}, [el("summary", {text: "无法办理？退回"}),
                textarea(n, "reason", "请填写退回原因"), button("return", n, "退回", "cc-btn-warn")]));
        }
        if (working && n.role !== "lead") {
            body.push(textarea(n, "result", "填写办理结果（完成时必填）"));
            body.push(button("complete", n, "完成", "cc-btn-ok"));
            body.push(el("details", {className: "cc-more"}, [el("summary", {text: "报告进展 / 退回"}),
                textarea(n, "note", "进展情况，或退回原因"),
                el("div", {className: "cc-gcard-row"}, [button("progress", n, "报告进展"), button("return", n, "退回", "cc-btn-warn")])]));
        }
        if (working && n.role === "lead") {
            body.push(el("div", {className: "cc-node-who", text: "调处结果请在联网时由“事项办理”登记（乡镇工作台或受理窗口）。"}));
        }
        var cls = "cc-gcard st-" + n.state + (tm.overdue && (unacked || working) ? " is-overdue" : "") + (n.priority === "urgent" ? " is-urgent" : "");
        return el("article", {className: cls, "data-node-id": n.id, "data-state": n.state}, body);
    }

    function button(action, node, text, cls) {
        return el("button", {type: "button", className: "cc-btn cc-big " + (cls || ""), "data-act": action, "data-node": node.id, text: text});
    }

    function textarea(node, name, placeholder) {
        return el("textarea", {className: "cc-input", rows: 3, placeholder: placeholder, "data-field": name, "data-node": node.id});
    }

    function timing(node) {
        var unacked = node.state === "issued" || node.state === "delivered";
        var limit = unacked ? node.ack_by : node.due_by;
        var left = Date.parse(limit) - (Date.now() + (S.offset || 0));
        var span = function (ms) {
            var m = Math.max(0, Math.round(ms / 60000));
            if (m < 60) { return m + "分钟"; }
            if (m < 1440) { return Math.floor(m / 60) + "小时" + (m % 60 ? (m % 60) + "分" : ""); }
            return Math.floor(m / 1440) + "天";
        };
        return {text: (unacked ? "请于 " : "办结时限 ") + C.hhmm(limit) + (unacked ? " 前签收" : "") +
                (left >= 0 ? "（剩余 " + span(left) + "）" : "（已超时 " + span(-left) + "）"), overdue: left < 0};
    }

    function renderOrders() {
        var box = $("grid-cards");
        if (!box) { return; }
        var all = Array.from(S.nodes.values()).sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; });
        var open = all.filter(function (n) { return OPEN.indexOf(n.state) >= 0; });
        var done = all.filter(function (n) { return n.state === "completed"; }).slice(0, 5);
        // what the worker is typing and which folds are open survive a redraw (an answer, a
        // receipt or the clock's tick redraws the cards while a result is being written)
        var typed = {}, opened = {}, focused = null;
        box.querySelectorAll("[data-field][data-node]").forEach(function (f) {
            var key = f.getAttribute("data-node") + "|" + f.getAttribute("data-field");
            if (f.value) { typed[key] = f.value; }
            if (f === document.activeElement) { focused = {key: key, start: f.selectionStart, end: f.selectionEnd}; }
        });
        box.querySelectorAll("[data-node-id] details[open]").forEach(function (d) {
            opened[d.closest("[data-node-id]").getAttribute("data-node-id") + "|" + d.querySelector("summary").textContent] = true;
        });
        box.textContent = "";
        box.appendChild(el("div", {className: "cc-gsum", text: open.length ? "待办指令 " + open.length + " 条" : "暂无待办指令。新指令到达时会立即提醒。"}));
        open.forEach(function (n) { box.appendChild(card(n)); });
        if (done.length) {
            box.appendChild(el("div", {className: "cc-gsum", text: "最近办结"}));
            done.forEach(function (n) { box.appendChild(card(n)); });
        }
        $("tab-orders-count").textContent = open.filter(function (n) { return n.state === "issued" || n.state === "delivered"; }).length || "";
        box.querySelectorAll("[data-field][data-node]").forEach(function (f) {
            var key = f.getAttribute("data-node") + "|" + f.getAttribute("data-field");
            if (typed[key] !== undefined) { f.value = typed[key]; }
            if (focused && focused.key === key) {
                f.focus();
                try { f.setSelectionRange(focused.start, focused.end); } catch (e) { /* not a text field */ }
            }
        });
        box.querySelectorAll("[data-node-id] details").forEach(function (d) {
            if (opened[d.closest("[data-node-id]").getAttribute("data-node-id") + "|" + d.querySelector("summary").textContent]) { d.open = true; }
        });
    }

    function act(button) {
        var action = button.getAttribute("data-act");
        var nodeId = button.getAttribute("data-node");
        var value = function (name) {
            var f = document.querySelector("[data-field=" + name + "][data-node='" + nodeId + "']");
            return f ? f.value.trim() : "";
        };
        var body = {action_id: uuid(), acted_at: isoNow()};
        if (action === "complete") {
            body.result = value("result");
            if (!body.result) { toast("请先填写办理结果", "error"); return; }
        } else if (action === "return") {
            body.reason = value("reason") || value("note");
            if (!body.reason) { toast("请先填写退回原因", "error"); return; }
        } else if (action === "progress") {
            body.note = value("note");
            if (!body.note) { toast("请先填写进展情况", "error"); return; }
        }
        var entry = {id: body.action_id, user: S.cfg.me.name, kind: "action", created: Date.now(), node_id: nodeId,
                     action: action, body: body, state: "pending"};
        put("outbox", entry).then(function () {
            document.querySelectorAll("[data-field][data-node='" + nodeId + "']").forEach(function (f) { f.value = ""; });
            hideBanner();
            toast({ack: "签收", progress: "进展", complete: "完成", return: "退回"}[action] +
                  (navigator.onLine ? "已保存，正在报送中心" : "已保存在手机上，联网后自动报送"));
            refreshQueued().then(function () { renderOrders(); kick(); });
        });
    }

    // --- my reports --------------------------------------------------------------------------------
    function refreshQueued() {
        return outboxOf(S.cfg.me.name).then(function (all) {
            S.queued = all.filter(function (e) { return e.state !== "delivered" && e.state !== "rejected"; });
            S.refused = all.filter(function (e) { return e.kind === "action" && e.state === "rejected"; });
            S.outbox = all;
            return all;
        });
    }

    function loadMine() {
        C.api("GET", "/api/v1/field/reports?limit=100").then(function (answer) {
            S.mine = answer.items || [];
            put("kv", {key: "mine:" + S.cfg.me.name, value: S.mine}).catch(function () {});
            renderMine();
        }).catch(function () { /* offline: the kept list is shown */ });
    }

    function renderMine() {
        refreshQueued().then(function (all) {
            var box = $("grid-mine");
            if (!box) { return; }
            var reports = all.filter(function (e) { return e.kind === "report"; });
            var waiting = all.filter(function (e) { return e.state === "pending" || e.state === "sending"; });
            $("tab-outbox-count").textContent = waiting.length || "";
            box.textContent = "";
            box.appendChild(el("div", {className: "ph-summary", text: waiting.length ? "待发送 (" + waiting.length + ")" : "没有待发送的内容"}));
            var byServer = {};
            (S.mine || []).forEach(function (i) { byServer[i.source_id] = i; });
            var shown = {};
            reports.slice().reverse().forEach(function (e) {
                shown[e.id] = true;
                box.appendChild(item(e.body.title, e, byServer[e.id]));
            });
            (S.mine || []).forEach(function (i) {
                if (!shown[i.source_id]) { box.appendChild(item(i.title, null, i)); }
            });
            renderOrders();
        }).catch(function () {});
    }

    function item(title, entry, server) {
        var state = entry ? entry.state : "delivered";
        if (entry && state === "delivered" && entry.photos.some(function (p) { return p.state !== "done"; })) { state = "sending"; }
        var number = (server && (server.case_no || server.id.slice(0, 8))) ||
                     (entry && entry.incident && (entry.incident.case_no || entry.incident.id.slice(0, 8)));
        var chip = STATE_TEXT[state] + (state === "delivered" && number ? " · " + number : "");
        var parts = [
            el("div", {className: "ph-item-head"}, [el("span", {className: "ph-chip s-" + state, text: chip}),
                                                    el("span", {className: "ph-item-title", text: title})])
        ];
        if (entry && entry.photos.length) {
            var left = entry.photos.filter(function (p) { return p.state !== "done"; }).length;
            parts.push(el("div", {className: "ph-item-meta", text: "照片 " + entry.photos.length + " 张" + (left ? "，" + left + " 张待发送" : "，已全部送达")}));
        }
        if (state === "rejected") {
            var fix = el("button", {type: "button", className: "cc-btn", text: "修改后重新上报"});
            fix.onclick = function () { edit(entry); };
            parts.push(el("div", {className: "ph-error", text: "被拒绝：" + (entry.error ? entry.error.message : "")}), fix);
        }
        if (server) {
            parts.push(el("div", {className: "ph-item-meta", text: "中心办理：" + server.status_label +
                (server.case_no ? " · 案号 " + server.case_no : "")}));
            if (server.progress && server.progress.length) {
                parts.push(el("ol", {className: "ph-progress"}, server.progress.slice(-3).map(function (p) {
                    return el("li", {text: C.hhmm(p.at) + " " + p.to_label + (p.note ? "：" + p.note : "")});
                })));
            }
        }
        return el("article", {className: "ph-item", "data-report-id": entry ? entry.id : server.source_id,
                              "data-state": state}, parts);
    }

    // --- the announcement (a new order) ---------------------------------------------------------
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
            osc.frequency.value = 880;
            var t = audio.currentTime + at;
            gain.gain.setValueAtTime(0.0001, t);
            gain.gain.exponentialRampToValueAtTime(0.35, t + 0.02);
            gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.18);
            osc.connect(gain).connect(audio.destination);
            osc.start(t);
            osc.stop(t + 0.2);
        });
        S.beeps += 1;
    }

    function announce(nodes) {
        var n = nodes[0];
        var box = $("grid-banner");
        box.textContent = "";
        box.append(el("span", {className: "cc-banner-mark", text: "!"}),
                   el("span", {className: "cc-banner-text", text: "新指令：" + n.instruction}),
                   el("span", {className: "cc-banner-hint", text: "点击关闭"}));
        box.className = "cc-banner is-on";
        if (navigator.vibrate) { navigator.vibrate([200, 100, 200]); }
        beep();
        showTab("orders");
    }

    function hideBanner() { $("grid-banner").className = "cc-banner"; }

    // --- tabs, sockets, start ---------------------------------------------------------------------
    function showTab(name) {
        document.querySelectorAll(".ph-tabs [data-tab]").forEach(function (b) {
            b.classList.toggle("is-on", b.getAttribute("data-tab") === name);
        });
        document.querySelectorAll(".ph-panel").forEach(function (p) { p.hidden = p.getAttribute("data-panel") !== name; });
        if (name === "mine") { renderMine(); loadMine(); }
    }

    function connect() {
        var opts = {transports: ["websocket"], path: "/socket.io", reconnectionDelay: 1000, reconnectionDelayMax: 10000};
        socket = window.io("/field", opts);
        live = window.io("/live", opts);
        var show = function () {
            var on = socket.connected || live.connected;
            status(on ? "在线" : "离线 · 内容保存在手机上", on ? "is-ok" : "is-down");
        };
        var reload = function () {
            show();
            C.api("GET", "/api/v1/orders").then(function (nodes) {
                merge(nodes, !S.loaded);
                S.loaded = true;
            }).catch(function () {});
            kick();
        };
        [socket, live].forEach(function (s) {
            s.on("connect", reload);
            s.on("disconnect", function (why) {
                show();
                if (why === "io server disconnect") { setTimeout(function () { s.connect(); }, 1000); }
            });
            s.on("connect_error", show);
            s.on("orders", function (nodes) { if (Array.isArray(nodes)) { merge(nodes, false); S.loaded = true; } });
        });
        live.on("incidents", function (items) {
            if (Array.isArray(items) && items.some(function (i) { return i.reporter_user === S.cfg.me.name; })) { loadMine(); }
        });
    }

    function mountTicker() {
        var slot = $("grid-ticker-slot");
        if (!slot || slot.firstChild) { return; }
        slot.appendChild(el("div", {id: "alert-ticker", className: "at-ticker at-phone", role: "region", "aria-label": "预警",
                                    "data-alert-ticker": "phone", "data-role": S.cfg.me.role, "data-unit": S.cfg.me.unit || "",
                                    "data-alert-seq": String(S.cfg.alert_seq || 0)}));
    }

    function begin(cfg, online) {
        S.cfg = cfg;
        S.offset = cfg.now ? cfg.now - Date.now() : 0;
        $("grid-who").textContent = (cfg.me.unit_name ? cfg.me.unit_name + " · " : "") + cfg.me.name;
        var csrf = $("grid-csrf");
        if (csrf) { csrf.value = C.csrf(); }
        renderForm();
        return Promise.all([get("kv", "nodes:" + cfg.me.name), get("kv", "mine:" + cfg.me.name),
                            unstick(cfg.me.name)]).then(function (kept) {
            if (kept[0]) {
                S.incidents = kept[0].incidents || {};
                merge(kept[0].value || [], true);
            }
            if (kept[1]) { S.mine = kept[1].value || []; }
            renderOrders();
            renderMine();
            prune();
            S.ready = true;
            if (online) {
                mountTicker();
                connect();
                loadMine();
            } else {
                status("离线 · 内容保存在手机上", "is-down");
            }
            kick();
        });
    }

    function start() {
        if (!window.indexedDB || !window.crypto || !crypto.subtle) {
            notice("此浏览器不能保存离线内容（需要 HTTPS 和较新的浏览器）：请保持联网使用。");
        }
        if ("serviceWorker" in navigator) {
            navigator.serviceWorker.register("/grid-sw.js", {scope: "/grid"}).catch(function (err) {
                notice("离线功能未能启用：" + err.message);
            });
        } else {
            notice("此浏览器不支持离线使用：页面可以联网使用，断网时无法打开。");
        }
        if (navigator.storage && navigator.storage.persist) {
            navigator.storage.persist().then(function (granted) { S.persisted = granted; }).catch(function () {});
        }
        openDb().then(function (d) {
            db = d;
            return fetch("/grid/config", {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
                if (r.status === 401) {
                    location.href = "/login?next=/grid";
                    return null;
                }
                if (!r.ok) { throw new Error("config " + r.status); }
                return r.json().then(function (cfg) {
                    return put("kv", {key: "config", value: cfg}).then(function () { return begin(cfg, true); });
                });
            }, function () {
                return get("kv", "config").then(function (kept) {
                    if (!kept) { notice("首次使用请在联网时登录。"); status("离线", "is-down"); return null; }
                    return begin(kept.value, false);
                });
            });
        }).catch(function (err) { notice("手机存储不可用：" + ((err && err.message) || err)); });
    }

    // --- events ------------------------------------------------------------------------------------
    window.addEventListener("online", function () { S.backoff = BACKOFF_MIN; kick(); });
    document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") { kick(); } });
    setInterval(function () { if (S.ready) { renderOrders(); } }, TICK_MS);
    document.addEventListener("pointerdown", unlockAudio, true);
    document.addEventListener("click", function (ev) {
        var t = ev.target;
        if (!(t instanceof Element)) { return; }
        var tab = t.closest("[data-tab]");
        if (tab) { showTab(tab.getAttribute("data-tab")); return; }
        var b = t.closest("[data-act]");
        if (b && !b.disabled && S.ready) { act(b); return; }
        if (t.closest("#grid-banner")) { hideBanner(); }
    });
    document.addEventListener("submit", function (ev) {
        if (ev.target.id !== "grid-logout") { return; }
        var waiting = (S.outbox || []).filter(function (e) { return e.state !== "delivered"; }).length;
        if (waiting && !window.confirm("还有 " + waiting + " 条内容没有送达中心。退出后它们仍保存在这部手机上，" +
                                       "下次用本账号登录时会继续发送。确定退出吗？")) {
            ev.preventDefault();
            return;
        }
        S.signedOut = true;
    }, true);

    window.cmdcenterField = {
        ready: function () { return S.ready; },
        connected: function () { return !!((socket && socket.connected) || (live && live.connected)); },
        nodes: function () { return Array.from(S.nodes.values()); },
        beeps: function () { return S.beeps; },
        outbox: function () { return db && S.cfg ? outboxOf(S.cfg.me.name) : Promise.resolve([]); },
        idle: function () { return S.idle && !S.sending; },
        sending: function () { return S.sending; },
        kick: kick,
        uploadResumable: function (reportId, blob) {
            return sha256(blob).then(function (sha) {
                var path = "/api/v1/field/reports/" + encodeURIComponent(reportId) + "/photos/" + sha;
                var attempt = function () {
                    return upload(path, blob).then(function (answer) {
                        if (answer.status === 201) { return sha; }
                        if (transient(answer)) { return new Promise(function (r) { setTimeout(r, 500); }).then(attempt); }
                        throw new Error("refused " + answer.status);
                    });
                };
                return attempt();
            });
        }
    };

    start();
}());
