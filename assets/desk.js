/*
 * The one window `/desk` (command/web/pages/desk.py): registration, earlier matters, the queue.
 *
 * The page's state store hands the opening state to `startWindow` (a clientside callback; nothing
 * runs on other pages). Then:
 *   - the registration form is plain DOM drawn here, every field in Tab order; Ctrl+Enter saves
 *     (POST /api/v1/matters with an Idempotency-Key, so a retried save never registers twice),
 *     then the 受理回执 is printed from a hidden frame (/desk/receipt/<case_no>?print=1);
 *     Alt+P adds a party, Alt+D removes the party holding the focus;
 *   - ID numbers are checked as they are typed (GB 11643: length, birth date, MOD 11-2 check
 *     character) and credit codes (GB 32100 MOD 31) — only to help: the server decides;
 *   - a valid ID number or credit code, or a phone, asks POST /api/v1/matters/search and lists
 *     the person's earlier matters beside the form (a same phone: "possibly the same person");
 *   - the queue (matters registered and not routed or closed, newest first) is kept live from
 *     Socket.IO /live `incidents`, with `since` catch-up on connect and on a seq gap.
 *
 *   - a matter picked from the queue or the to-do list (returned by its lead, near or past its
 *     limit, follow-ups due today: GET /api/v1/matters/worklist) opens beside the form with
 *     its steps: route it (pre-filled from the routing table), close it at the window, record
 *     a session or the outcome, the follow-up (forms of assets/matters_ui.js).
 *
 * Test hooks: window.cmdcenterWindow = {connected(), queue(), lastSaved(), detail(), socket()}.
 */
(function () {
    "use strict";

    var TZ_MS = window.cmdcenter.TZ_MS;
    var ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    var ID_CHECK = "10X98765432";
    var CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    var CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

    var S = null;
    var live = null;
    var listening = false;

    // --- small helpers ------------------------------------------------------------------------
    var C = window.cmdcenter;  // assets/00_common.js
    var api = C.api;
    var pad = C.pad;

    var el = C.make;  // a DOM element from attributes and children

    function byId(id) { return document.getElementById(id); }

    function uuid() {
        if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
        return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
    }

    function localInput(ms) {  // "YYYY-MM-DD HH:MM" in China time (one field, one Tab stop)
        var d = new Date(ms + TZ_MS);
        return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
            " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    }

    function shortTime(iso) {
        var t = Date.parse(iso);
        if (isNaN(t)) { return ""; }
        var d = new Date(t + TZ_MS);
        return pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    }

    function toast(text, kind) {
        var box = byId(S.cfg.ids.desk_message);
        if (!box) { return; }
        box.textContent = text;
        box.className = "cc-toast is-" + (kind || "ok");
        clearTimeout(S.toastTimer);
        S.toastTimer = setTimeout(function () { box.className = "cc-toast"; }, kind === "error" ? 8000 : 4000);
    }

    function status(text, cls) {
        var box = byId(S.cfg.ids.desk_status);
        if (box) { box.textContent = text; box.className = "cc-live " + cls; }
    }

    function options(pairs, selected, blank) {
        var out = blank === undefined ? [] : [el("option", {value: "", text: blank})];
        pairs.forEach(function (p) {
            out.push(el("option", {value: p[0], text: p[1], selected: p[0] === selected}));
        });
        return out;
    }

    // --- identity checks (mirrors command/matters/identity.py; the server has the last word) -----
    function idProblem(value) {
        if (value.length < 18) { return value.length ? "已输入 " + value.length + "/18 位" : ""; }
        if (value.length > 18) { return "身份证号应为18位"; }
        if (!/^\d{17}[\dX]$/.test(value)) { return "前17位应为数字，最后一位为数字或X"; }
        var y = +value.slice(6, 10), m = +value.slice(10, 12), d = +value.slice(12, 14);
        var born = new Date(Date.UTC(y, m - 1, d));
        if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) {
            return "出生日期 " + value.slice(6, 14) + " 不存在";
        }
        if (born.getTime() > Date.now() + TZ_MS || y < 1880) { return "出生日期不可能"; }
        var sum = 0;
        for (var i = 0; i < 17; i++) { sum += (+value[i]) * ID_WEIGHTS[i]; }
        if (value[17] !== ID_CHECK[sum % 11]) { return "校验位错误，请核对"; }
        return null;
    }

    function idSummary(value) {
        return "校验通过 · " + (+value[16] % 2 ? "男" : "女") + " · " + value.slice(6, 10) + "-" +
            value.slice(10, 12) + "-" + value.slice(12, 14) + " 生";
    }

    function creditProblem(value) {
        if (value.length < 18) { return value.length ? "已输入 " + value.length + "/18 位" : ""; }
        if (value.length > 18) { return "统一社会信用代码应为18位"; }
        var sum = 0;
        for (var i = 0; i < 18; i++) {
            if (CREDIT_ALPHABET.indexOf(value[i]) < 0) { return "含不允许的字符 " + value[i] + "（不用 I O S V Z）"; }
            if (i < 17) { sum += CREDIT_ALPHABET.indexOf(value[i]) * CREDIT_WEIGHTS[i]; }
        }
        if (value[17] !== CREDIT_ALPHABET[(31 - sum % 31) % 31]) { return "校验位错误，请核对"; }
        return null;
    }

    // --- the form -----------------------------------------------------------------------------
    function field(label, control, hint) {
        var id = "dk-" + control.getAttribute("data-field").replace(/[^a-z0-9]+/gi, "-");
        control.id = id;
        return el("div", {className: "dk-field"}, [
            el("label", {"for": id, text: label}), control,
            el("div", {className: "dk-hint", "data-hint-for": control.getAttribute("data-field"), text: hint || ""})
        ]);
    }

    function input(name, attrs) {
        return el("input", Object.assign({"data-field": name, name: name, autocomplete: "off"}, attrs || {}));
    }

    function select(name, pairs, selected, blank) {
        return el("select", {"data-field": name, name: name}, options(pairs, selected, blank));
    }

    function textarea(name, rows) {
        return el("textarea", {"data-field": name, name: name, rows: rows || 3});
    }

    function renderForm() {
        var cfg = S.cfg;
        var box = byId(cfg.ids.desk_form);
        box.textContent = "";
        var town = select("township", cfg.townships, cfg.townships.length === 1 ? cfg.townships[0][0] : "", "选择乡镇（街道）");
        var grid = select("grid", [], "", "选择村（社区）网格");
        town.addEventListener("change", function () { fillGrids(town.value); });
        S.form = {
            type: select("type", cfg.types, "dispute"),
            category: select("category", cfg.categories, "", "（未分类）"),
            channel: select("channel", cfg.channels, "visit"),
            title: input("title", {maxlength: 200, placeholder: "一句话说明事项，如：讨要拖欠工资"}),
            occurred_at: input("occurred_at", {maxlength: 16, placeholder: "2026-01-31 09:30", spellcheck: "false"}),
            township: town, grid: grid,
            lon: input("lon", {inputmode: "decimal", placeholder: "可不填"}),
            lat: input("lat", {inputmode: "decimal", placeholder: "可不填"}),
            summary: textarea("summary", 3), request: textarea("request", 2),
            people: input("people", {type: "number", min: 0, step: 1}),
            amount: input("amount", {type: "number", min: 0, step: "0.01"}),
            risk: select("risk", cfg.risks, "", "（未评估）"),
            severity: select("severity", [["4", "Ⅳ级 一般"], ["3", "Ⅲ级 较大"], ["2", "Ⅱ级 重大"], ["1", "Ⅰ级 特别重大"]], "4"),
            closure: select("closure", [["", "进入分流（等待交办）"]].concat(cfg.closures), ""),
            note: textarea("note", 2)
        };
        var f = S.form;
        S.parties = el("div", {className: "dk-parties"});
        var addBtn = el("button", {type: "button", className: "cc-btn cc-btn-small dk-add", text: "＋ 添加当事人（Alt+P）"});
        addBtn.addEventListener("click", function () { addParty(true); });
        var save = el("button", {type: "button", className: "cc-btn cc-btn-primary dk-save", text: "保存并打印回执（Ctrl+Enter）"});
        save.addEventListener("click", submit);
        box.appendChild(el("div", {className: "dk-grid"}, [
            field("事项类型", f.type), field("纠纷类别", f.category), field("来源渠道", f.channel),
            el("div", {className: "dk-wide"}, [field("事项标题 *", f.title)]),
            field("发生时间", f.occurred_at, "默认为登记时间"),
            field("乡镇（街道）", f.township), field("村（社区）网格 *", f.grid, "只知道村名时选网格即可"),
            field("经度", f.lon), field("纬度", f.lat, "有精确位置时填写（WGS-84）"),
            el("div", {className: "dk-wide"}, [field("纠纷简要情况", f.summary)]),
            el("div", {className: "dk-wide"}, [field("申请事项", f.request)]),
            field("涉及人数", f.people), field("涉及金额（元）", f.amount), field("风险等级", f.risk),
            field("事件等级", f.severity)
        ]));
        box.appendChild(el("h3", {className: "dk-sub", text: "当事人"}));
        box.appendChild(S.parties);
        box.appendChild(addBtn);
        box.appendChild(el("div", {className: "dk-grid dk-closure"}, [
            field("办理方式", f.closure, "即接即办：当场解答或调处；不予受理：写明理由和去处"),
            el("div", {className: "dk-wide"}, [field("办理说明", f.note)])
        ]));
        box.appendChild(el("div", {className: "dk-actions"}, [save]));
        box.appendChild(el("iframe", {className: "dk-print", title: "受理回执", "aria-hidden": "true", tabindex: "-1"}));
        box.addEventListener("input", onInput);
        resetForm();
    }

    function fillGrids(township, selected) {
        var grid = S.form.grid;
        grid.textContent = "";
        options(S.cfg.grids[township] || [], selected, "选择村（社区）网格").forEach(function (o) { grid.appendChild(o); });
    }

    function resetForm() {
        var f = S.form;
        ["title", "lon", "lat", "summary", "request", "people", "amount", "note"].forEach(function (k) { f[k].value = ""; });
        f.type.value = "dispute"; f.category.value = ""; f.channel.value = "visit"; f.risk.value = "";
        f.severity.value = "4"; f.closure.value = "";
        f.occurred_at.value = localInput(Date.now() + S.offset);
        f.township.value = S.cfg.townships.length === 1 ? S.cfg.townships[0][0] : "";
        fillGrids(f.township.value);
        S.parties.textContent = "";
        S.partyCount = 0;
        addParty(false);
        addParty(false, "respondent");
        S.idempotencyKey = uuid();
        S.lookups = {};
        renderEarlier();
        clearErrors();
    }

    function addParty(focus, role) {
        var k = S.partyCount++;
        var p = "parties[" + k + "].";
        var kind = select(p + "kind", S.cfg.kinds, "person");
        var number = input(p + "id_number", {maxlength: 20, placeholder: "18位，末位可为X", spellcheck: "false"});
        var numberLabel = el("label", {text: "身份证号"});
        var name = input(p + "name", {maxlength: 100});
        var remove = el("button", {type: "button", className: "cc-btn cc-btn-small dk-remove", text: "删除（Alt+D）"});
        var block = el("fieldset", {className: "dk-party", "data-party": String(k)}, [
            el("legend", {text: "当事人"}),
            el("div", {className: "dk-grid"}, [
                field("角色", select(p + "role", S.cfg.roles, role || "applicant")),
                field("类型", kind),
                field("姓名 / 名称 *", name),
                (function () {
                    var wrap = field("身份证号", number);
                    wrap.replaceChild(numberLabel, wrap.firstChild);
                    numberLabel.setAttribute("for", number.id);
                    return wrap;
                }()),
                field("联系电话", input(p + "phone", {type: "tel", maxlength: 40})),
                el("div", {className: "dk-wide"}, [field("住址 / 单位地址", input(p + "address", {maxlength: 200}))])
            ]),
            remove
        ]);
        kind.addEventListener("change", function () {
            var org = kind.value === "org";
            number.setAttribute("data-field", p + (org ? "credit_code" : "id_number"));
            number.setAttribute("name", p + (org ? "credit_code" : "id_number"));
            number.placeholder = org ? "18位统一社会信用代码" : "18位，末位可为X";
            numberLabel.textContent = org ? "统一社会信用代码" : "身份证号";
            number.value = "";
            hint(number, "");
        });
        remove.addEventListener("click", function () { removeParty(block); });
        S.parties.appendChild(block);
        renumber();
        if (focus) { block.querySelector("select").focus(); }
        return block;
    }

    function removeParty(block) {
        var next = block.nextElementSibling || block.previousElementSibling;
        block.parentNode.removeChild(block);
        renumber();
        var target = next ? next.querySelector("select") : document.querySelector(".dk-add");
        if (target) { target.focus(); }
        lookupAll();
    }

    function renumber() {  // legends say 当事人一、二…; fields keep their own index until saved
        Array.prototype.forEach.call(S.parties.children, function (block, i) {
            block.querySelector("legend").textContent = "当事人 " + (i + 1);
        });
    }

    function hint(control, text, kind) {
        var box = control.parentNode.querySelector(".dk-hint");
        if (box) { box.textContent = text; box.className = "dk-hint" + (kind ? " is-" + kind : ""); }
        if (kind === "error") { control.setAttribute("aria-invalid", "true"); } else { control.removeAttribute("aria-invalid"); }
    }

    function onInput(ev) {
        var t = ev.target;
        var name = t.getAttribute && t.getAttribute("data-field");
        if (!name) { return; }
        if (/\.id_number$/.test(name)) {
            var v = t.value.replace(/\s+/g, "").toUpperCase();
            var problem = idProblem(v);
            hint(t, problem === null ? idSummary(v) : problem, problem === null ? "ok" : (v.length >= 18 ? "error" : ""));
            if (problem === null) { lookup("id_number", v); }
        } else if (/\.credit_code$/.test(name)) {
            var c = t.value.replace(/\s+/g, "").toUpperCase();
            var bad = creditProblem(c);
            hint(t, bad === null ? "校验通过" : bad, bad === null ? "ok" : (c.length >= 18 ? "error" : ""));
            if (bad === null) { lookup("credit_code", c); }
        } else if (/\.phone$/.test(name)) {
            var digits = t.value.replace(/\D/g, "");
            if (digits.length >= 7) { lookup("phone", t.value); }
        } else if (t.getAttribute("aria-invalid")) {
            hint(t, "");
        }
    }

    // --- earlier matters ----------------------------------------------------------------------
    function lookup(kind, value) {
        var key = kind + ":" + value;
        if (S.lookups[key] || !S.cfg.key_available && kind !== "credit_code") { return; }
        S.lookups[key] = {kind: kind, value: value, items: null};
        var q = {};
        q[kind] = value;
        api("POST", "/api/v1/matters/search", q).then(function (answer) {
            if (S.lookups[key]) { S.lookups[key].items = answer.items || []; renderEarlier(); }
        }).catch(function () { delete S.lookups[key]; });
    }

    function lookupAll() {  // keep only lookups whose value is still in the form
        var present = {};
        document.querySelectorAll(".dk-party input").forEach(function (i) {
            var name = i.getAttribute("data-field") || "";
            var kind = /\.id_number$/.test(name) ? "id_number" : /\.credit_code$/.test(name) ? "credit_code" : /\.phone$/.test(name) ? "phone" : null;
            if (kind) {
                var v = kind === "phone" ? i.value : i.value.replace(/\s+/g, "").toUpperCase();
                present[kind + ":" + v] = true;
            }
        });
        Object.keys(S.lookups).forEach(function (k) { if (!present[k]) { delete S.lookups[k]; } });
        renderEarlier();
    }

    function renderEarlier() {
        var box = byId(S.cfg.ids.desk_earlier);
        if (!box) { return; }
        box.textContent = "";
        var seen = {};
        var groups = Object.keys(S.lookups).map(function (k) { return S.lookups[k]; }).filter(function (l) { return l.items; });
        groups.forEach(function (l) {
            var label = l.kind === "phone" ? "可能为同一人（手机号相同）" : "同一当事人（" + (l.kind === "id_number" ? "身份证号" : "统一社会信用代码") + "相同）";
            var items = l.items.filter(function (i) { return !seen[l.kind + i.case_no]; });
            items.forEach(function (i) { seen[l.kind + i.case_no] = true; });
            box.appendChild(el("div", {className: "dk-earlier-group" + (l.kind === "phone" ? " is-possible" : "")}, [
                el("div", {className: "dk-earlier-head", text: label + " · " + l.items.length + " 件"})
            ].concat(items.length ? items.map(function (i) {
                return el("div", {className: "dk-earlier-item"}, [
                    el("span", {className: "dk-case", text: i.case_no}),
                    el("span", {text: (i.category_label || i.type_label) + " · " + i.title}),
                    el("span", {className: "dk-meta", text: shortTime(i.registered_at) + " · " + i.status_label})
                ]);
            }) : [el("div", {className: "cc-empty", text: "没有以往事项"})])));
        });
        if (!groups.length) {
            box.appendChild(el("p", {className: "cc-empty", text: S.cfg.key_available
                ? "输入身份证号、统一社会信用代码或手机号后，这里列出此人以往的事项。"
                : "本服务器没有个人信息密钥：身份证号和手机号暂不能登记和查询。"}));
        }
    }

    // --- saving ---------------------------------------------------------------------------------
    function collect() {
        var f = S.form;
        var body = {type: f.type.value, title: f.title.value.trim(), channel: f.channel.value,
                    severity: +f.severity.value};
        ["category", "summary", "request", "risk", "note"].forEach(function (k) {
            var v = f[k].value.trim();
            if (v) { body[k] = v; }
        });
        if (f.closure.value) { body.closure = f.closure.value; }
        if (f.people.value !== "") { body.people = Number(f.people.value); }
        if (f.amount.value !== "") { body.amount = Number(f.amount.value); }
        var when = f.occurred_at.value.trim();
        if (when) {
            var m = /^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})$/.exec(when);
            body.occurred_at = m ? m[1] + "-" + pad(+m[2]) + "-" + pad(+m[3]) + "T" + pad(+m[4]) + ":" + m[5] + ":00+08:00" : when;
        }
        if (f.lon.value.trim() && f.lat.value.trim()) {
            body.lon = Number(f.lon.value); body.lat = Number(f.lat.value);
        }
        if (f.grid.value) { body.grid = f.grid.value; }
        body.parties = [];
        S.sentParties = [];
        Array.prototype.forEach.call(S.parties.children, function (block) {
            var party = {};
            block.querySelectorAll("[data-field]").forEach(function (c) {
                var key = c.getAttribute("data-field").replace(/^parties\[\d+\]\./, "");
                var v = c.value.trim();
                if (v) { party[key] = v; }
            });
            if (party.name || party.id_number || party.credit_code || party.phone) {
                body.parties.push(party);
                S.sentParties.push(block);
            }
        });
        return body;
    }

    function clearErrors() {
        document.querySelectorAll(".dk-form [aria-invalid]").forEach(function (c) { hint(c, ""); });
    }

    function showError(err) {
        toast(err.message, "error");
        if (!err.field) { return; }
        var control = null;
        var m = /^parties\[(\d+)\]\.?(.*)$/.exec(err.field);
        if (m && S.sentParties && S.sentParties[+m[1]]) {
            control = S.sentParties[+m[1]].querySelector('[data-field$=".' + (m[2] || "name") + '"]');
        } else if (S.form[err.field]) {
            control = S.form[err.field];
        } else if (err.field === "lon" || err.field === "lat") {
            control = S.form.grid;
        }
        if (control) { hint(control, err.message, "error"); control.focus(); }
    }

    function submit() {
        if (S.saving) { return; }
        clearErrors();
        var body = collect();
        if (!body.title) { showError({message: "请填写事项标题", field: "title"}); return; }
        if (!body.grid && body.lon === undefined) { showError({message: "请选择村（社区）网格，或填写经纬度", field: "grid"}); return; }
        S.saving = true;
        api("POST", "/api/v1/matters", body, {"Idempotency-Key": S.idempotencyKey}).then(function (record) {
            S.saving = false;
            S.lastSaved = record;
            toast("已受理，案号 " + record.case_no + (record.closure ? "（" + record.closure_label + "）" : "，等待分流"));
            printReceipt(record.case_no);
            upsert([record]);
            resetForm();
            S.form.type.focus();
        }).catch(function (err) {
            S.saving = false;
            showError(err);  // the same key is kept: saving again cannot register twice
        });
    }

    function printReceipt(caseNo) {
        var frame = document.querySelector(".dk-print");
        if (frame) { frame.src = "/desk/receipt/" + encodeURIComponent(caseNo) + "?print=1"; }
    }

    // --- the queue ------------------------------------------------------------------------------
    function isMatter(inc) { return S.matterTypes[inc.type] === true; }

    function waiting(inc) { return isMatter(inc) && S.cfg.waiting.indexOf(inc.status) >= 0; }

    function upsert(items) {
        var changed = false;
        items.forEach(function (inc) {
            if (inc.seq > S.lastSeq) { S.lastSeq = inc.seq; }
            if (!isMatter(inc)) { return; }
            var old = S.queue.get(inc.id);
            if (old && old.seq >= inc.seq) { return; }
            if (waiting(inc)) { S.queue.set(inc.id, inc); } else { S.queue.delete(inc.id); }
            changed = true;
        });
        if (changed) {
            renderQueue();
            clearTimeout(S.todoTimer);
            S.todoTimer = setTimeout(loadTodo, 500);
        }
    }

    function renderQueue() {
        var box = byId(S.cfg.ids.desk_queue);
        if (!box) { return; }
        var items = Array.from(S.queue.values()).sort(function (a, b) {
            return a.received_at < b.received_at ? 1 : a.received_at > b.received_at ? -1 : b.seq - a.seq;
        });
        var count = byId(S.cfg.ids.desk_queue_count);
        if (count) { count.textContent = String(items.length); }
        box.textContent = "";
        if (!items.length) { box.appendChild(el("p", {className: "cc-empty", text: "没有等待分流的事项。"})); return; }
        items.slice(0, S.cfg.queue_cap).forEach(function (inc) {
            var where = [inc.township && inc.township.name, inc.grid && inc.grid.name].filter(Boolean).join(" · ");
            box.appendChild(el("button", {type: "button", className: "dk-queue-item", "data-case": inc.case_no}, [
                el("span", {className: "dk-case", text: inc.case_no || ""}),
                el("span", {className: "dk-queue-title", text: inc.title}),
                el("span", {className: "dk-meta", text: [(inc.category_label || inc.type_label), inc.channel_label, where, shortTime(inc.received_at)].filter(Boolean).join(" · ")})
            ]));
        });
    }

    function showDetail(caseNo) {
        S.detailCase = caseNo;
        api("GET", "/api/v1/matters/" + encodeURIComponent(caseNo)).then(function (m) {
            S.detail = m;
            renderDetail();
        }).catch(function (err) { toast(err.message, "error"); });
    }

    function renderDetail() {
        var m = S.detail;
        var box = byId(S.cfg.ids.desk_detail);
        if (!box || !m) { return; }
        box.hidden = false;
        box.textContent = "";
        var receipt = el("a", {href: "/desk/receipt/" + encodeURIComponent(m.case_no), target: "_blank", className: "cc-btn cc-btn-small", text: "打印回执"});
        box.appendChild(el("div", {className: "cc-card-head"}, [el("h2", {className: "cc-card-title", text: m.case_no + " · " + m.title}), receipt]));
        box.appendChild(el("div", {className: "dk-meta", text: [m.type_label, m.category_label, m.channel_label, m.status_label,
            m.lead ? "主办：" + m.lead.name : null, m.tier_label].filter(Boolean).join(" · ")}));
        if (m.clock && m.clock.due_at) {
            box.appendChild(el("div", {className: "mx-clock", text: "办理期限：" + window.cmdcenterMatters.clockText(m.clock)}));
        }
        if (m.summary) { box.appendChild(el("p", {text: m.summary})); }
        box.appendChild(el("ul", {className: "dk-parties-list"}, m.parties.map(function (p) {
            return el("li", {text: p.role_label + "：" + p.name + [p.id_number, p.credit_code, p.phone].filter(Boolean).map(function (x) { return " · " + x; }).join("") +
                (p.repeat ? " · 重复来访（12个月内 " + p.matters_12m + " 件）" : "")});
        })));
        if (m.related && m.related.length) {
            box.appendChild(el("div", {className: "dk-related"}, [el("div", {className: "dk-earlier-head", text: "关联事项"})].concat(
                m.related.slice(0, 8).map(function (r) {
                    return el("div", {className: "dk-meta", text: r.case_no + " · " + r.title + " · " +
                        {same_party: "同一当事人", possibly_same_party: "可能为同一人", same_place: "同一地点同类纠纷"}[r.reason]});
                }))));
        }
        box.appendChild(actionsFor(m));
        if (S.detailForm) { box.appendChild(S.detailForm); }
        box.appendChild(el("ol", {className: "dk-timeline"}, m.timeline.map(function (l) {
            return el("li", {text: shortTime(l.at) + " " + l.by + "：" + l.note});
        })));
    }

    function actionsFor(m) {
        var buttons = [];
        var add = function (label, step, primary) {
            buttons.push(el("button", {type: "button", className: "cc-btn cc-btn-small" + (primary ? " cc-btn-primary" : ""),
                                       "data-detail-step": step, text: label}));
        };
        var waiting = S.cfg.waiting.indexOf(m.status) >= 0;
        if (waiting && !m.closure) { add("分流交办", "route", true); add("窗口办结", "close"); }
        if (!m.concluded_at && !m.closure && ["accepted", "dispatched", "in_progress"].indexOf(m.status) >= 0) {
            add("登记调解", "session");
            add("登记结果", "outcome");
        }
        if (m.concluded_at && !(m.followup && m.followup.at) && ["responded", "verified"].indexOf(m.status) >= 0) {
            add("回访", "followup", true);
        }
        if (m.outcome && m.outcome.agreement_url) {
            buttons.push(el("a", {className: "cc-btn cc-btn-small", href: m.outcome.agreement_url, text: "调解协议书（Word）"}));
        }
        return el("div", {className: "mx-actions"}, buttons);
    }

    function routeForm(m) {
        var cfg = S.cfg;
        var township = m.township && m.township.code;
        var units = [["", "选择主办单位"]].concat(
            cfg.depts.map(function (d) { return [d[0], "部门 · " + d[1]]; }),
            cfg.townships.map(function (t) { return [t[0], "乡镇 · " + t[1]]; }),
            (cfg.grids[township] || []).map(function (g) { return [g[0], "网格 · " + g[1]]; }));
        var suggested = m.suggested_route || {};
        var lead = el("select", {name: "lead"}, units.map(function (u) {
            return el("option", {value: u[0], text: u[1], selected: u[0] === suggested.lead});
        }));
        var tier = el("select", {name: "tier"}, cfg.tiers.map(function (t) {
            return el("option", {value: t[0], text: t[1], selected: t[0] === suggested.tier});
        }));
        var owner = el("select", {name: "owner"}, [el("option", {value: "", text: "（包案领导：疑难事项必填）"})].concat(
            cfg.leaders.map(function (n) { return el("option", {value: n, text: n}); })));
        var assist = el("select", {name: "assist", multiple: true, size: 4}, units.slice(1).map(function (u) {
            return el("option", {value: u[0], text: u[1]});
        }));
        var note = el("textarea", {name: "note", rows: 2, placeholder: "交办意见（可不填）"});
        var M = window.cmdcenterMatters;
        return M.form("分流交办（主办、协办、分级）" + (suggested.lead ? " · 已按分流规则预填" : ""), [
            ["主办单位", lead], ["协办单位（可多选）", assist], ["分级", tier], ["包案领导", owner], ["交办意见", note]
        ], "交办", "/api/v1/matters/" + encodeURIComponent(m.case_no) + "/route", function (c) {
            if (!c.lead.value) { throw new Error("请选择主办单位"); }
            return {lead: c.lead.value, tier: c.tier.value, owner: c.owner.value || null,
                    assist: Array.prototype.filter.call(c.assist.options, function (o) { return o.selected; }).map(function (o) { return o.value; }),
                    note: c.note.value.trim() || null};
        }, function (record) {
            toast("已交办 " + record.case_no + " 至 " + (record.lead ? record.lead.name : ""));
            S.detailForm = null;
            S.detail = record;
            upsert([record]);
            renderDetail();
            loadTodo();
        });
    }

    function onDetailStep(step) {
        var m = S.detail;
        if (!m) { return; }
        var M = window.cmdcenterMatters;
        var done = function (record) {
            S.detailForm = null;
            S.detail = record;
            upsert([record]);
            toast("已保存 " + record.case_no);
            renderDetail();
            loadTodo();
        };
        S.detailForm = step === "route" ? routeForm(m) : M.stepForms[step](m, done);
        renderDetail();
    }

    // --- finding a matter ------------------------------------------------------------------------
    function renderFind() {
        var box = byId(S.cfg.ids.desk_find);
        if (!box) { return; }
        var q = el("input", {type: "search", className: "dk-find-input", "aria-label": "查找事项",
                             placeholder: "如 DEMO-2026-000123 或 张三"});
        var results = el("div", {className: "dk-find-results"});
        q.addEventListener("keydown", function (ev) {
            if (ev.key !== "Enter" || !q.value.trim()) { return; }
            ev.preventDefault();
            api("POST", "/api/v1/matters/search", {q: q.value.trim()}).then(function (answer) {
                results.textContent = "";
                if (!answer.items.length) { results.appendChild(el("p", {className: "cc-empty", text: "没有找到。"})); }
                answer.items.forEach(function (m) {
                    results.appendChild(el("button", {type: "button", className: "dk-queue-item dk-found", "data-case": m.case_no}, [
                        el("span", {className: "dk-case", text: m.case_no}),
                        el("span", {className: "dk-queue-title", text: m.title}),
                        el("span", {className: "dk-meta", text: [m.category_label || m.type_label, m.status_label, shortTime(m.registered_at)].filter(Boolean).join(" · ")})
                    ]));
                });
            }).catch(function (err) { toast(err.message, "error"); });
        });
        box.textContent = "";
        box.appendChild(q);
        box.appendChild(results);
    }

    // --- the to-do list: returned, near the limit, follow-ups due ------------------------------
    function loadTodo() {
        api("GET", "/api/v1/matters/worklist").then(function (w) {
            S.todo = w;
            renderTodo();
        }).catch(function () { /* next change or tick tries again */ });
    }

    function renderTodo() {
        var box = byId(S.cfg.ids.desk_todo);
        if (!box || !S.todo) { return; }
        box.textContent = "";
        var groups = [["returned", "退回待重新分流"], ["near", "临期 / 逾期"], ["followups_due", "今日待回访"]];
        var any = false;
        groups.forEach(function (g) {
            var items = S.todo[g[0]] || [];
            if (!items.length) { return; }
            any = true;
            box.appendChild(el("div", {className: "dk-earlier-head", text: g[1] + " · " + items.length + " 件"}));
            items.slice(0, 30).forEach(function (m) {
                box.appendChild(el("button", {type: "button", className: "dk-queue-item dk-todo-" + g[0], "data-case": m.case_no}, [
                    el("span", {className: "dk-case", text: m.case_no}),
                    el("span", {className: "dk-queue-title", text: m.title}),
                    el("span", {className: "dk-meta", text: [m.lead ? "主办：" + m.lead.name : null,
                        window.cmdcenterMatters.clockText(m.clock)].filter(Boolean).join(" · ")})
                ]));
            });
        });
        if (!any) { box.appendChild(el("p", {className: "cc-empty", text: "暂无待办提醒。"})); }
    }

    // --- /live ------------------------------------------------------------------------------------
    function askSince(from) {
        if (!live || !live.connected) { return; }
        live.timeout(10000).emit("since", {seq: from}, function (err, answer) {
            if (err || !answer || !Array.isArray(answer.items)) { setTimeout(function () { askSince(from); }, 2000); return; }
            upsert(answer.items);
            // a shorter page than SINCE_PAGE holds all there was; what follows comes live
            if (answer.items.length >= C.SINCE_PAGE) { askSince(answer.last_seq); } else if (answer.last_seq > S.lastSeq) { S.lastSeq = answer.last_seq; }
        });
    }

    function connectLive() {
        live = window.io("/live", {transports: ["websocket"], path: "/socket.io", reconnectionDelay: 500, reconnectionDelayMax: 3000});
        live.on("connect", function () { status("实时连接", "is-ok"); askSince(S.lastSeq); });
        live.on("disconnect", function (reason) {
            status("连接中断 · 重连中", "is-down");
            if (reason === "io server disconnect") { setTimeout(function () { live.connect(); }, 1000); }
        });
        live.on("connect_error", function () { status("连接中断 · 重连中", "is-down"); });
        live.on("incidents", function (items) {
            if (!Array.isArray(items) || !items.length) { return; }
            var gap = items[0].seq > S.lastSeq + 1;
            var from = S.lastSeq;
            upsert(items);
            if (gap) { askSince(from); }
        });
    }

    // --- keys ---------------------------------------------------------------------------------------
    function onKey(ev) {
        if (!S || !document.querySelector(".cc-desk-page")) { return; }
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
            ev.preventDefault();
            submit();
        } else if (ev.altKey && (ev.key === "p" || ev.key === "P" || ev.code === "KeyP")) {
            ev.preventDefault();
            addParty(true);
        } else if (ev.altKey && (ev.key === "d" || ev.key === "D" || ev.code === "KeyD")) {
            var block = ev.target.closest && ev.target.closest(".dk-party");
            if (block) { ev.preventDefault(); removeParty(block); }
        }
    }

    function onClick(ev) {
        if (!S || !document.querySelector(".cc-desk-page")) { return; }
        var stepBtn = ev.target.closest && ev.target.closest("[data-detail-step]");
        if (stepBtn) { onDetailStep(stepBtn.getAttribute("data-detail-step")); return; }
        var item = ev.target.closest && ev.target.closest(".dk-queue-item");
        if (item) { S.detailForm = null; showDetail(item.getAttribute("data-case")); }
    }

    function startWindow(cfg) {
        if (live) { live.disconnect(); live = null; }
        S = {cfg: cfg, offset: cfg.now - Date.now(), lastSeq: cfg.last_seq, queue: new Map(),
             matterTypes: {}, lookups: {}, partyCount: 0};
        cfg.types.forEach(function (t) { S.matterTypes[t[0]] = true; });
        cfg.queue.forEach(function (inc) { S.queue.set(inc.id, inc); });
        renderForm();
        renderQueue();
        renderFind();
        loadTodo();
        setInterval(loadTodo, 30000);
        connectLive();
        if (!listening) {
            listening = true;
            document.addEventListener("keydown", onKey);
            document.addEventListener("click", onClick);
        }
        S.form.type.focus();
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenterWindow = {
        startWindow: function (cfg) {
            if (cfg) { startWindow(cfg); }
            return "实时连接（Socket.IO /live）";
        }
    };

    window.cmdcenterWindow = {
        connected: function () { return !!(live && live.connected); },
        queue: function () { return S ? Array.from(S.queue.values()) : []; },
        lastSaved: function () { return S ? S.lastSaved || null : null; },
        detail: function () { return S ? S.detail || null : null; },
        socket: function () { return live; }
    };
}());
