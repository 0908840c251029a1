// Load generator for `make bench-load` (bench/load.py drives it): one Node process holds many
// Socket.IO clients of one kind and writes what it measured to a JSON file when told to stop
// (SIGTERM). Node is used so the generator is not the bottleneck: an event loop per process, no
// interpreter lock, ~100 kB a client. Phones, feeds and orders use socket.io-client (or https);
// screens a minimal client of their own (see screen()).
//
//   node load.js CONFIG.json
//
// CONFIG: {"kind": "screens"|"phones"|"feeds"|"orders", "url", "ca", ...} (see each kind below).
// Every second it prints one line {"connected": n, "ready": n, "sent": n} for the driver.
"use strict";

const fs = require("fs");
const https = require("https");
const { monitorEventLoopDelay } = require("perf_hooks");
const { io } = require("socket.io-client");
const parser = require("socket.io-parser");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const ca = cfg.ca ? fs.readFileSync(cfg.ca) : undefined;
const agent = new https.Agent({ ca, keepAlive: true, maxSockets: 64 });
const transports = cfg.transports || ["websocket"]; // what our own pages use
const now = () => Date.now();
const SINCE_PAGE = 1000; // the most one `since` answer holds (a shorter page: caught up)

// Screens read `incidents` without building the objects: a burst of 500 to 200 screens is
// ~90 MB of JSON, and parsing it all in the generator took a core for a second, competing with
// the servers on the same two CPUs. The seq and source id of each item are read from the text
// (row order: "seq", "feed", "source_id"; a message with items but no match counts as an error).
const INCIDENTS = '2/live,["incidents",'; // a Socket.IO EVENT (the Engine.IO "4" is gone)
const ITEM = /"seq":(\d+),"feed":(?:null|"(?:[^"\\]|\\.)*"),"source_id":"((?:[^"\\]|\\.)*)"/g;
class LightDecoder extends parser.Decoder {
  add(obj) {
    if (typeof obj === "string" && obj.startsWith(INCIDENTS)) {
      this.emitReserved("decoded", { type: parser.PacketType.EVENT, nsp: "/live",
                                     data: ["incidents", { raw: obj }] });
      return;
    }
    super.add(obj);
  }
}
const lightParser = { protocol: parser.protocol, PacketType: parser.PacketType,
                      Encoder: parser.Encoder, Decoder: LightDecoder };

function items(message) {
  if (!message || typeof message.raw !== "string") return message; // parsed already
  const found = [];
  ITEM.lastIndex = 0;
  let m;
  while ((m = ITEM.exec(message.raw)) !== null) found.push({ seq: Number(m[1]), source_id: m[2] });
  if (!found.length && message.raw.includes('"seq":')) error("unreadable incidents message");
  return found;
}

function connect(namespace, auth) {
  return io(cfg.url + namespace, {
    transports, auth, ca, agent: false, forceNew: true, rejectUnauthorized: true,
    parser: namespace === "/live" && cfg.light !== false ? lightParser : undefined,
    reconnectionDelay: 500, reconnectionDelayMax: 5000, randomizationFactor: 0.5,
    timeout: 60000,
  });
}

const latencies = []; // ms, every measured delivery of this process
const burstLatencies = []; // ms, deliveries of the burst's reports (ids "B…")
const streamLatencies = []; // ms, deliveries of the steady stream's
// how long this process's own event loop kept a message waiting (the generator as a bottleneck)
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let connected = 0;
let ready = 0; // connected and caught up (screens) / connected (others)
let sent = 0;
const out = { kind: cfg.kind, latencies, burst_latencies: burstLatencies,
              stream_latencies: streamLatencies, clients: [], errors: 0,
              error_reasons: {}, reconnects: 0, acks: [] };
function error(reason) {
  out.errors += 1;
  out.error_reasons[reason] = (out.error_reasons[reason] || 0) + 1;
}

// --- screens: /live, every incident kept by seq; after a reconnect, `since` from the last seq
// seen before it, page by page (what the wall does) ----------------------------------------------
//
// A screen is a minimal Socket.IO client of its own (Engine.IO 4 over a websocket, the protocol
// socket.io-client speaks with transports ["websocket"]; `ws` underneath, as in socket.io-client):
// it answers pings, connects to /live with its token, reads each `incidents` message's seq and
// source ids from its bytes, emits `since` with an ack id after a reconnect, and reconnects as
// socket.io-client does (0.5 s doubling to 5 s, ±50 %). socket.io-client on 50 screens per process
// took ~0.25 s of CPU per burst and process (UTF-8 checks and decoding, its emitters, JSON of
// every other event): on two shared cores the generator, not the servers, set the burst's tail.
// `cfg.client === "socket.io"` runs the screens on socket.io-client instead.
const WebSocket = require("ws");
const FEED = Buffer.from(',"feed":');
const SOURCE_ID = Buffer.from(',"source_id":"');
const LIVE_EVENT = "42/live,[";
const LIVE_INCIDENTS = '42/live,["incidents",';

// Whether `data` holds the bytes of `pattern` at `k`.
function same(data, k, pattern) {
  for (let i = 0; i < pattern.length; i++) if (data[k + i] !== pattern[i]) return false;
  return true;
}

// The index of the quote that ends a JSON string starting at `k` (data.length if none).
function stringEnd(data, k) {
  while (k < data.length && data[k] !== 0x22) k += data[k] === 0x5c ? 2 : 1;
  return k;
}

// The time a bench report was sent, from its id between bytes `from` and `to` ("b3-17-<ms>" for
// the stream, "B0-…" for the burst), else 0.
function benchSentAt(data, from, to) {
  if (data[from] !== 0x62 && data[from] !== 0x42) return 0;
  let dashes = 0;
  let sent = 0;
  for (let k = from + 1; k < to; k++) {
    const c = data[k];
    if (c === 0x2d) { dashes += 1; sent = 0; }
    else if (c >= 0x30 && c <= 0x39) sent = sent * 10 + c - 0x30;
    else return 0;
  }
  return dashes === 2 ? sent : 0;
}

function screen(spec) {
  if (cfg.client === "socket.io") return ioScreen(spec);
  // state: where the screen is (the table counts them when screens did not all catch up)
  const me = { unit: spec.unit, scope: spec.scope, seqs: [], last: 0, connects: 0, upAt: 0,
               state: "connecting", pages: 0 };
  out.clients.push(me);
  const url = cfg.url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
  let ws = null;
  let up = false; // connected to /live
  let caughtUp = false; // counted in `ready`
  let generation = 0; // connections so far: a page of an earlier one stops
  let attempts = 0;
  let nextAck = 0;
  const acks = new Map();
  const send = (text) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(text); };
  const emit = (event, data, callback) => {
    const id = nextAck++;
    const timer = setTimeout(() => { acks.delete(id); callback(new Error("timeout")); }, 30000);
    acks.set(id, (err, answer) => { clearTimeout(timer); callback(err, answer); });
    send(`42/live,${id}${JSON.stringify([event, data])}`);
  };
  const onIncidents = (data) => {
    const t = now();
    let found = 0;
    // each item's keys begin "seq", "feed", "source_id"; a "q" is rare in our JSON (non-ASCII is
    // escaped), so the next one is found by a byte search (memchr), ~8x faster than searching
    // for '"seq":' whose first byte is in every key
    for (let q = data.indexOf(0x71, LIVE_INCIDENTS.length); q >= 0; q = data.indexOf(0x71, q + 1)) {
      if (data[q - 3] !== 0x22 || data[q - 2] !== 0x73 || data[q - 1] !== 0x65 ||
          data[q + 1] !== 0x22 || data[q + 2] !== 0x3a) continue; // not "seq":
      let k = q + 3;
      let seq = 0;
      while (data[k] >= 0x30 && data[k] <= 0x39) seq = seq * 10 + data[k++] - 0x30;
      if (k === q + 3 || !same(data, k, FEED)) continue; // a "seq" of something else
      k += FEED.length;
      if (data[k] === 0x22) k = stringEnd(data, k + 1) + 1; // the feed's name
      else if (data[k] === 0x6e) k += 4; // null
      else continue;
      if (!same(data, k, SOURCE_ID)) continue;
      const from = k + SOURCE_ID.length;
      const to = stringEnd(data, from);
      if (to >= data.length) break;
      found += 1;
      me.seqs.push(seq);
      if (seq > me.last) me.last = seq;
      const sent = benchSentAt(data, from, to);
      if (sent > 0) {
        latencies.push(t - sent);
        (data[from] === 0x42 /* "B…" */ ? burstLatencies : streamLatencies).push(t - sent);
      }
      q = to;
    }
    if (!found) error("unreadable incidents message");
  };
  const onConnect = () => {
    attempts = 0;
    me.connects += 1;
    connected += 1;
    up = true;
    const mine = ++generation;
    const caught = () => { caughtUp = true; ready += 1; me.upAt = now(); me.state = "caught up"; };
    if (me.connects === 1) { caught(); return; }
    out.reconnects += 1;
    me.state = "paging since";
    const page = (seq) => emit("since", { seq }, (err, answer) => {
      me.pages += 1;
      if (mine !== generation || !up) return; // this connection is gone; the next one pages
      if (err || !answer || !answer.items) {
        error(err ? "since: " + err.message : "since: no items");
        setTimeout(() => page(seq), 1000);
        return;
      }
      for (const it of answer.items) {
        me.seqs.push(it.seq);
        if (it.seq > me.last) me.last = it.seq;
      }
      if (answer.items.length >= SINCE_PAGE) page(answer.last_seq); // else the rest is live
      else caught();
    });
    page(me.last);
  };
  const dropped = (reason) => {
    me.state = "connecting";
    if (up) { connected -= 1; up = false; }
    if (caughtUp) { ready -= 1; caughtUp = false; }
    out.disconnects = out.disconnects || {};
    out.disconnects[reason] = (out.disconnects[reason] || 0) + 1;
    for (const callback of acks.values()) callback(new Error("disconnected"));
    acks.clear();
  };
  const open = () => {
    const sock = ws = new WebSocket(url, { ca, rejectUnauthorized: true, perMessageDeflate: false,
                                         skipUTF8Validation: true, maxPayload: 256 * 1024 * 1024 });
    let closed = false;
    const retry = (reason) => {
      if (closed) return;
      closed = true;
      me.state = "connecting";
      if (up || reason !== "connect") dropped(reason === "connect" ? "transport error" : reason);
      sock.terminate();
      const delay = Math.min(500 * 2 ** attempts, 5000) * (0.5 + Math.random());
      attempts += 1;
      setTimeout(open, delay);
    };
    sock.on("message", (data) => {
      // one Engine.IO packet per websocket message; `incidents` are read from the bytes (the
      // server's JSON is ASCII, non-ASCII escaped), other packets as latin1 text
      const kind = data[0];
      if (kind === 0x34 /* 4: message */) {
        if (data.latin1Slice(0, LIVE_INCIDENTS.length) === LIVE_INCIDENTS) {
          onIncidents(data);
          return;
        }
        if (data.latin1Slice(0, LIVE_EVENT.length) === LIVE_EVENT) return; // alerts, orders
        const text = data.toString("latin1");
        if (text.startsWith("40/live,")) onConnect();
        else if (text.startsWith("43/live,")) {
          const m = /^43\/live,(\d+)/.exec(text);
          const callback = m && acks.get(Number(m[1]));
          if (callback) {
            acks.delete(Number(m[1]));
            callback(null, JSON.parse(text.slice(m[0].length))[0]);
          }
        } else if (text.startsWith("44/live,")) {
          error("connect: " + text.slice(8, 200));
          retry("connect");
        }
        else if (text.startsWith("41/live")) retry("io server disconnect");
      } else if (kind === 0x32 /* 2: ping */) send("3");
      else if (kind === 0x30 /* 0: open */) {
        me.state = "joining /live";
        send(`40/live,${JSON.stringify({ token: spec.token })}`);
      }
      else if (kind === 0x31 /* 1: close */) retry("transport close");
    });
    sock.on("close", () => retry("transport close"));
    sock.on("error", (err) => {
      if (!up) error("connect: " + err.message);
      retry(up ? "transport error" : "connect");
    });
  };
  open();
}

function ioScreen(spec) {
  const me = { unit: spec.unit, scope: spec.scope, seqs: new Set(), last: 0, connects: 0,
               upAt: 0 };
  out.clients.push(me);
  const sock = connect("/live", { token: spec.token });
  let up = false;
  sock.on("incidents", (message) => {
    const t = now();
    for (const it of items(message)) {
      me.seqs.add(it.seq);
      if (it.seq > me.last) me.last = it.seq;
      const m = /^([bB])\d+-\d+-(\d+)$/.exec(it.source_id || "");
      if (m) {
        latencies.push(t - Number(m[2]));
        (m[1] === "B" ? burstLatencies : streamLatencies).push(t - Number(m[2]));
      }
    }
  });
  sock.on("connect", () => {
    me.connects += 1;
    connected += 1;
    up = true;
    if (me.connects === 1) { ready += 1; me.upAt = now(); return; }
    out.reconnects += 1;
    const start = me.last;
    const page = (seq) => sock.timeout(30000).emit("since", { seq }, (err, answer) => {
      if (err || !answer || !answer.items) { error(err ? "since: " + err.message : "since: no items"); setTimeout(() => page(seq), 1000); return; }
      for (const it of answer.items) { me.seqs.add(it.seq); if (it.seq > me.last) me.last = it.seq; }
      if (answer.items.length >= SINCE_PAGE) page(answer.last_seq); // else the rest is live
      else { ready += 1; me.upAt = now(); }
    });
    page(start);
  });
  sock.on("disconnect", (reason) => {
    if (up) { connected -= 1; ready -= 1; up = false; }
    out.disconnects = out.disconnects || {};
    out.disconnects[reason] = (out.disconnects[reason] || 0) + 1;
  });
  sock.on("connect_error", (err) => { error("connect: " + err.message); });
}

// --- phones: /field, an order's instruction carries the time it was sent -------------------------
function phone(spec) {
  const sock = connect("/field", { token: spec.token });
  let up = false;
  let since = 0;
  let connects = 0;
  sock.on("connect", () => {
    connects += 1;
    if (connects > 1) out.reconnects += 1;
    connected += 1; ready += 1; up = true; since = now();
  });
  sock.on("disconnect", (reason) => {
    if (up) { connected -= 1; ready -= 1; up = false; }
    out.disconnects = out.disconnects || {};
    out.disconnects[reason] = (out.disconnects[reason] || 0) + 1;
  });
  sock.on("connect_error", (err) => { error("connect: " + err.message); });
  sock.on("orders", (nodes) => {
    const t = now();
    for (const n of nodes) {
      const m = /bench:(\d+)/.exec(n.instruction || "");
      // a node sent again on connect, or changed later, is not a new delivery
      if (m && n.state === "issued" && Number(m[1]) >= since) latencies.push(t - Number(m[1]));
    }
  });
}

// --- feeds: /feed, reports at a rate in small batches, with a burst; every ack kept -------------
function feeds() {
  const socks = cfg.tokens.map((token) => {
    const s = connect("/feed", { token });
    s.on("connect", () => { connected += 1; ready += 1; });
    s.on("disconnect", () => { connected -= 1; ready -= 1; });
    s.on("connect_error", (err) => { error("connect: " + err.message); });
    return s;
  });
  let n = 0;
  const place = () => cfg.places[Math.floor(Math.random() * cfg.places.length)];
  function send(i, count, prefix = "b") {
    const sock = socks[i % socks.length];
    if (!sock.connected) { error("feed not connected"); return; }
    const t = now();
    const batch = [];
    for (let k = 0; k < count; k++) {
      const [lon, lat] = place();
      n += 1;
      batch.push({ id: `${prefix}${i % socks.length}-${n}-${t}`, type: "complaint", occurred_at: new Date(t).toISOString(),
                   lon, lat, title: `压测 ${n}`, severity: 4 });
    }
    sent += count;
    sock.timeout(60000).emit("report", batch, (err, acks) => {
      if (err) { error("report: " + err.message); return; }
      // a list refused as a whole (e.g. `unavailable` while a process shuts down) is one object
      if (!Array.isArray(acks)) { error("report refused: " + JSON.stringify(acks.error || acks)); return; }
      if (prefix === "B") out.burst_acked_ms = now() - t;
      for (const a of acks) {
        if (a.ok) out.acks.push([a.incident.seq, a.incident.township ? a.incident.township.code : null, t]);
        else error("report: " + (a.error ? a.error.code : "not ok"));
      }
    });
  }
  // `rate` reports/s spread over the feeds, one report per emit (each feed ~ rate/feeds per s)
  let tick = 0;
  const every = 1000 / cfg.rate;
  let started = 0;
  const timer = () => {
    if (!started) started = now();
    const due = Math.floor((now() - started) / every);
    while (tick < due) { send(tick, 1); tick += 1; }
  };
  // the stream starts once every feed is connected (at most 30 s after launch)
  const launched = now();
  const waitFeeds = setInterval(() => {
    if (connected < socks.length && now() - launched < 30000) return;
    clearInterval(waitFeeds);
    setTimeout(() => setInterval(timer, 10), cfg.delay_ms || 0);
    if (cfg.burst) setTimeout(() => { out.burst_at = now(); send(0, cfg.burst, "B"); }, cfg.burst_at_ms);
  }, 20);
}

// --- orders: the leader issues one order a second to a random grid (REST, through nginx) ---------
function orders() {
  connected = ready = 1;
  const post = () => {
    const grid = cfg.grids[Math.floor(Math.random() * cfg.grids.length)];
    const incident = cfg.incidents[sent % cfg.incidents.length];
    const t = now();
    const body = JSON.stringify({ incident_id: incident, targets: [grid],
                                  instruction: `压测指令 bench:${t}` });
    const req = https.request(cfg.url + "/api/v1/orders", {
      method: "POST", agent, headers: { "Content-Type": "application/json",
        Authorization: `Bearer ${cfg.token}`, "Content-Length": Buffer.byteLength(body) },
    }, (res) => { res.resume(); if (res.statusCode >= 300) error(`order: HTTP ${res.statusCode}`); });
    req.on("error", (err) => { error("order: " + err.message); });
    req.end(body);
    sent += 1;
  };
  setTimeout(() => setInterval(post, 1000), cfg.delay_ms || 0);
}

if (cfg.kind === "screens") cfg.clients.forEach((spec, i) => setTimeout(() => screen(spec), i * (cfg.spread_ms || 0)));
else if (cfg.kind === "phones") cfg.clients.forEach((spec, i) => setTimeout(() => phone(spec), i * (cfg.spread_ms || 0)));
else if (cfg.kind === "feeds") feeds();
else if (cfg.kind === "orders") orders();
else throw new Error(`unknown kind ${cfg.kind}`);

const status = setInterval(() => {
  process.stdout.write(JSON.stringify({ connected, ready, sent, errors: out.errors }) + "\n");
}, 1000);

process.on("SIGUSR2", () => { out.marked = latencies.length; });

process.on("SIGTERM", () => {
  clearInterval(status);
  out.states = {};
  for (const c of out.clients) {
    c.seqs = Array.from(c.seqs);
    if (c.state) out.states[c.state] = (out.states[c.state] || 0) + 1;
  }
  out.sent = sent;
  out.loop_delay_max_ms = loopDelay.max / 1e6;
  out.loop_delay_p99_ms = loopDelay.percentile(99) / 1e6;
  fs.writeFileSync(cfg.out, JSON.stringify(out));
  process.exit(0);
});
