/*
 * The matter's steps as small plain-DOM forms, shared by the window (/desk, assets/desk.js) and
 * the units' work list (/township, assets/worklist.js): route, sign off / return, session,
 * outcome, judicial confirmation, follow-up, closure at the window. Each form posts to the REST
 * API (POST /api/v1/matters/{case_no}/<step>, or the order node's ack/return) and calls
 * `done(record)`; the server decides what is allowed and answers errors in its shape.
 *
 * window.cmdcenterMatters = {el, form, stepForms, clockText, CLOCK_CLASS}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // assets/00_common.js
    var el = C.make;
    var pad = C.pad;

    function field(label, control) {
        return el("label", {className: "mx-field"}, [el("span", {text: label}), control]);
    }

    function input(name, attrs) { return el("input", Object.assign({name: name, autocomplete: "off"}, attrs || {})); }

    function textarea(name, rows) { return el("textarea", {name: name, rows: rows || 2}); }

    function select(name, pairs, selected) {
        return el("select", {name: name}, pairs.map(function (p) {
            return el("option", {value: p[0], text: p[1], selected: p[0] === selected});
        }));
    }

    function localNow() {
        var d = new Date(Date.now() + C.TZ_MS);
        return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
            pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    }

    function iso(local) {  // "YYYY-MM-DD HH:MM" China time → ISO 8601 with +08:00
        var m = /^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})$/.exec((local || "").trim());
        return m ? m[1] + "-" + pad(+m[2]) + "-" + pad(+m[3]) + "T" + pad(+m[4]) + ":" + m[5] + ":00+08:00" : local;
    }

    function names(text) {
        return (text || "").split(/[，,、\s]+/).map(function (s) { return s.trim(); }).filter(Boolean);
    }

    /*
     * A form: `fields` is a list of [label, control]; `collect(controls)` makes the body; the
     * submit button posts it to `path` and calls done(answer) (or shows the error in the form).
     */
    function form(title, fields, submitLabel, path, collect, done) {
        var controls = {};
        var box = el("form", {className: "mx-form"}, [el("div", {className: "mx-form-title", text: title})]);
        fields.forEach(function (f) {
            controls[f[1].getAttribute("name")] = f[1];
            box.appendChild(field(f[0], f[1]));
        });
        var error = el("div", {className: "mx-error", role: "alert"});
        var submit = el("button", {type: "submit", className: "cc-btn cc-btn-primary cc-btn-small", text: submitLabel});
        box.appendChild(error);
        box.appendChild(el("div", {className: "mx-actions"}, [submit]));
        box.addEventListener("submit", function (ev) {
            ev.preventDefault();
            if (submit.disabled) { return; }
            var body;
            try { body = collect(controls); } catch (e) { error.textContent = e.message; return; }
            submit.disabled = true;
            error.textContent = "";
            C.api("POST", typeof path === "function" ? path(controls) : path, body).then(function (answer) {
                submit.disabled = false;
                done(answer);
            }).catch(function (err) {
                submit.disabled = false;
                error.textContent = err.message;
                var bad = err.field && controls[err.field];
                if (bad) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
            });
        });
        setTimeout(function () {
            var first = box.querySelector("input, select, textarea");
            if (first) { first.focus(); }
        }, 0);
        return box;
    }

    function stepPath(caseNo, step) { return "/api/v1/matters/" + encodeURIComponent(caseNo) + "/" + step; }

    var RESULTS = {
        dispute: [["agreed", "调解成功（达成协议）"], ["not_agreed", "调解不成"], ["withdrawn", "申请人撤回"]],
        petition: [["supported", "支持"], ["partly_supported", "部分支持"], ["not_supported", "不支持"], ["withdrawn", "撤回"]],
        legal: [["served", "已解答/已服务"], ["withdrawn", "撤回"]],
        psych: [["served", "已服务"], ["withdrawn", "撤回"]],
        complaint: [["substantiated", "属实"], ["unsubstantiated", "不属实"], ["withdrawn", "撤回"]],
        other: [["served", "已办理"], ["agreed", "调解成功"], ["not_agreed", "调解不成"], ["withdrawn", "撤回"]]
    };
    var GUIDED = [["litigation", "诉讼"], ["arbitration", "仲裁"], ["petition", "信访"], ["administrative_review", "行政复议"], ["other", "其他"]];

    /* Forms by step: each returns a <form>; `m` is a matter (work list item or record). */
    var stepForms = {
        session: function (m, done) {
            return form("登记调解", [
                ["时间", input("at", {value: localNow()})], ["地点", input("place", {maxlength: 200})],
                ["调解员（多人用逗号分隔）", input("mediators")], ["参加人", input("attendees")],
                ["调解记录", textarea("notes", 3)]
            ], "保存调解记录", stepPath(m.case_no, "sessions"), function (c) {
                return {at: iso(c.at.value), place: c.place.value.trim() || null, mediators: names(c.mediators.value),
                        attendees: names(c.attendees.value), notes: c.notes.value.trim() || null};
            }, done);
        },
        outcome: function (m, done) {
            var result = select("result", RESULTS[m.type] || RESULTS.other);
            var terms = textarea("terms", 3), amount = input("amount", {type: "number", min: 0, step: "0.01"});
            var perform = input("perform_by", {placeholder: "YYYY-MM-DD"}), guided = select("guided_to", GUIDED);
            var box = form("登记办理结果", [["结果", result], ["协议内容", terms], ["涉及金额（元）", amount],
                                        ["履行期限", perform], ["引导途径（调解不成时）", guided], ["说明", textarea("note", 2)]],
            "保存办理结果", stepPath(m.case_no, "outcome"), function (c) {
                var body = {result: c.result.value, note: c.note.value.trim() || null};
                if (c.result.value === "agreed") {
                    body.terms = c.terms.value.trim();
                    if (c.amount.value !== "") { body.amount = Number(c.amount.value); }
                    if (c.perform_by.value.trim()) { body.perform_by = c.perform_by.value.trim(); }
                }
                if (c.result.value === "not_agreed") { body.guided_to = c.guided_to.value; }
                return body;
            }, done);
            var sync = function () {
                var agreed = result.value === "agreed", failed = result.value === "not_agreed";
                [terms, amount, perform].forEach(function (c) { c.parentNode.hidden = !agreed; });
                guided.parentNode.hidden = !failed;
            };
            result.addEventListener("change", sync);
            sync();
            return box;
        },
        confirmation: function (m, done) {
            return form("司法确认", [
                ["状态", select("state", [["requested", "已申请"], ["granted", "确认有效"], ["refused", "驳回"]])],
                ["人民法院", input("court", {maxlength: 100})], ["时间", input("at", {value: localNow()})]
            ], "保存", stepPath(m.case_no, "confirmation"), function (c) {
                return {state: c.state.value, court: c.court.value.trim() || null, at: iso(c.at.value)};
            }, done);
        },
        followup: function (m, done) {
            return form("回访", [
                ["是否履行", select("performed", [["true", "已履行"], ["false", "未履行"]])],
                ["满意度", select("satisfaction", [["satisfied", "满意"], ["basic", "基本满意"], ["unsatisfied", "不满意"]])],
                ["回访记录", textarea("note", 2)]
            ], "保存回访", stepPath(m.case_no, "followup"), function (c) {
                return {performed: c.performed.value === "true", satisfaction: c.satisfaction.value,
                        note: c.note.value.trim() || null};
            }, done);
        },
        ret: function (m, done) {
            return form("退回窗口", [["退回原因", textarea("reason", 2)]], "退回",
                "/api/v1/orders/" + encodeURIComponent(m.node.id) + "/return", function (c) {
                    if (!c.reason.value.trim()) { throw new Error("请写明退回原因"); }
                    return {reason: c.reason.value.trim()};
                }, done);
        },
        close: function (m, done) {
            return form("窗口办结", [
                ["方式", select("closure", [["on_the_spot", "即接即办（当场办结）"], ["not_accepted", "不予受理"]])],
                ["说明（办理情况，或不予受理的理由和去处）", textarea("note", 2)]
            ], "办结", stepPath(m.case_no, "close"), function (c) {
                return {closure: c.closure.value, note: c.note.value.trim()};
            }, done);
        },
        extend: function (m, done) {
            return form("延长办理期限", [["延长天数", input("days", {type: "number", min: 1, max: 365})],
                                     ["理由", textarea("reason", 2)]], "延期", stepPath(m.case_no, "extend"),
            function (c) { return {days: Number(c.days.value), reason: c.reason.value.trim()}; }, done);
        }
    };

    var CLOCK_CLASS = {overdue: "is-overdue", near: "is-near", running: "is-running", concluded: "is-done",
                       waiting: "is-waiting", stopped: "is-done"};

    function clockText(clock) {
        if (!clock) { return ""; }
        var due = clock.due_at ? clock.due_at.slice(0, 16).replace("T", " ") : "";
        if (clock.state === "overdue") { return "已逾期 " + span(-clock.left_seconds) + "（期限 " + due + "）"; }
        if (clock.state === "near" || clock.state === "running") { return "剩余 " + span(clock.left_seconds) + "（期限 " + due + "）"; }
        return clock.state_label + (due ? "（期限 " + due + "）" : "");
    }

    function span(seconds) {
        var h = Math.floor(Math.max(0, seconds) / 3600);
        if (h < 24) { return h ? h + "小时" : "不足1小时"; }
        return Math.floor(h / 24) + "天" + (h % 24 ? h % 24 + "小时" : "");
    }

    window.cmdcenterMatters = {el: el, form: form, stepForms: stepForms, clockText: clockText,
                               CLOCK_CLASS: CLOCK_CLASS, iso: iso, names: names};
}());
