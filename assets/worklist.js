/*
 * The units' matter work list on `/township` (townships, departments; command/web/pages/township.py):
 * the matters routed to the unit as lead (主办) or assist (协办), with their legal clocks, and the
 * steps the unit takes: sign off (签收) or return (退回), mediation sessions, the outcome, the
 * agreement document, judicial confirmation and the follow-up (回访).
 *
 * The list is GET /api/v1/matters/worklist, fetched again when a matter changes on /live (the
 * page's socket, from assets/command.js) and every 30 s; every step goes through the REST API
 * (assets/matters_ui.js draws the forms).
 *
 * Test hooks: window.cmdcenterWorklist = {items(), reload()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;
    var S = null;
    var listening = false;

    function M() { return window.cmdcenterMatters; }

    function toast(text, kind) {
        var box = document.getElementById(S.cfg.ids.township_message);
        if (!box) { return; }
        box.textContent = text;
        box.className = "cc-toast is-" + (kind || "ok");
        clearTimeout(S.toastTimer);
        S.toastTimer = setTimeout(function () { box.className = "cc-toast"; }, kind === "error" ? 7000 : 3000);
    }

    function reload() {
        if (!S || S.loading) { if (S) { S.again = true; } return; }
        S.loading = true;
        C.api("GET", "/api/v1/matters/worklist").then(function (answer) {
            S.loading = false;
            S.items = answer.items || [];
            render();
            if (S.again) { S.again = false; reload(); }
        }).catch(function () {
            // a change asked for a reload while this one failed: try once more shortly
            S.loading = false;
            if (S.again) { S.again = false; setTimeout(reload, 1000); }
        });
    }

    function soon() {
        clearTimeout(S.reloadTimer);
        S.reloadTimer = setTimeout(reload, 300);
    }

    function render() {
        var box = document.getElementById(S.cfg.ids.township_matters);
        if (!box) { return; }
        var el = C.make;
        var count = document.getElementById(S.cfg.ids.township_matter_count);
        if (count) { count.textContent = String(S.items.length); }
        box.textContent = "";
        if (!S.items.length) { box.appendChild(el("p", {className: "cc-empty", text: "暂无交办事项。"})); return; }
        S.items.forEach(function (m) { box.appendChild(card(m)); });
    }

    function card(m) {
        var el = C.make;
        var lead = m.node && m.node.role === "lead";
        var unsigned = m.node && (m.node.state === "issued" || m.node.state === "delivered");
        var concluded = !!m.result;
        var actions = [];
        var act = function (label, step, primary) {
            actions.push(el("button", {type: "button", className: "cc-btn cc-btn-small" + (primary ? " cc-btn-primary" : ""),
                                       "data-step": step, "data-case": m.case_no, text: label}));
        };
        if (unsigned) { act("签收", "ack", true); act("退回", "ret"); }
        if (!concluded) {
            act("登记调解", "session", !unsigned && lead);
            if (lead) { act("登记结果", "outcome"); }
        } else if (lead) {
            if (m.result === "agreed") {
                actions.push(el("a", {className: "cc-btn cc-btn-small", href: "/api/v1/matters/" + encodeURIComponent(m.case_no) + "/agreement",
                                      text: "调解协议书（Word）"}));
                if (!m.confirmation) { act("司法确认", "confirmation"); }
            }
            if (!m.followed_up_at) { act("回访", "followup", true); }
        }
        var form = S.open && S.open.case_no === m.case_no ? S.open.form : null;
        return el("article", {className: "cc-ncard mx-card " + (M().CLOCK_CLASS[m.clock.state] || ""), "data-case": m.case_no}, [
            el("div", {className: "cc-ncard-head"}, [
                el("span", {className: "mx-role" + (lead ? " is-lead" : ""), text: lead ? "主办" : "协办"}),
                el("span", {className: "dk-case", text: m.case_no}),
                el("span", {className: "cc-status s-" + m.status, text: m.status_label}),
                el("span", {className: "cc-ncard-time", text: m.tier_label || ""})
            ]),
            el("div", {className: "cc-ncard-text", text: m.title}),
            el("div", {className: "mx-meta", text: [m.category_label, m.township && m.township.name,
                                                    lead ? null : (m.lead ? "主办：" + m.lead.name : null)].filter(Boolean).join(" · ")}),
            el("div", {className: "mx-clock", text: "办理期限：" + M().clockText(m.clock)}),
            concluded ? el("div", {className: "cc-node-result", text: "结果：" + m.result_label +
                (m.followup_due_at && !m.followed_up_at ? " · 回访期限 " + m.followup_due_at.slice(0, 10) : "")}) : null,
            el("div", {className: "mx-actions"}, actions),
            form
        ]);
    }

    function onClick(ev) {
        if (!S || !document.querySelector(".cc-township")) { return; }
        var btn = ev.target.closest && ev.target.closest("[data-step][data-case]");
        if (!btn || !btn.closest(".mx-card")) { return; }
        var m = S.items.filter(function (i) { return i.case_no === btn.getAttribute("data-case"); })[0];
        if (!m) { return; }
        var step = btn.getAttribute("data-step");
        if (step === "ack") {
            btn.disabled = true;
            C.api("POST", "/api/v1/orders/" + encodeURIComponent(m.node.id) + "/ack", {}).then(function () {
                toast("已签收 " + m.case_no);
                reload();
            }).catch(function (err) { btn.disabled = false; toast(err.message, "error"); });
            return;
        }
        var done = function () {
            S.open = null;
            toast({session: "已保存调解记录", outcome: "已登记办理结果", confirmation: "已保存司法确认",
                   followup: "已保存回访", ret: "已退回受理窗口"}[step] || "已保存");
            reload();
        };
        S.open = {case_no: m.case_no, form: M().stepForms[step](m, done)};
        render();
    }

    function startUnit(cfg) {
        S = {cfg: cfg, items: [], open: null};
        reload();
        setInterval(function () { if (S && !S.open) { reload(); } }, 30000);
        var hook = function () {
            var socket = window.cmdcenterDesk && window.cmdcenterDesk.socket && window.cmdcenterDesk.socket();
            if (!socket) { setTimeout(hook, 500); return; }
            socket.on("incidents", function (items) {
                if (Array.isArray(items) && items.some(function (i) { return i.case_no; })) { soon(); }
            });
            socket.on("orders", function (nodes) {
                if (Array.isArray(nodes) && nodes.some(function (n) { return n.role; })) { soon(); }
            });
            socket.on("connect", soon);
        };
        hook();
        if (!listening) { listening = true; document.addEventListener("click", onClick); }
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.cmdcenterWorklist = {
        startUnit: function (cfg) {
            if (cfg) { startUnit(cfg); }
            return "";
        }
    };
    window.cmdcenterWorklist = {
        items: function () { return S ? S.items : []; },
        reload: function () { reload(); }
    };
}());
