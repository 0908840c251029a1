// The Stress scenario's screens: COUNT socket.io-client connections to /live in one Node process.
//
//   node screens.js URL TOKEN COUNT PREFIX
//
// Each report's id ends in the wall-clock millisecond its feed emitted it ("PREFIX-n-MS"), so a
// screen times it on arrival with the same clock. Prints "ready N" once N screens are connected;
// on the line "report PATH" (a file of acked ids, one a line) it prints one JSON line with the
// latency histogram (ms -> count), the acked ids each screen missed, and its own CPU seconds.
"use strict";
const fs = require("fs");
const readline = require("readline");
const { io } = require("socket.io-client");

const [url, token, countText, prefix] = process.argv.slice(2);
const count = Number(countText);
const now = () => performance.timeOrigin + performance.now();
const histogram = new Map();
const screens = [];
let connected = 0;
let connects = 0;
let disconnects = 0;
let connectErrors = 0;

function open(i) {
  const socket = io(url + "/live", {
    transports: ["websocket"], auth: { token }, forceNew: true, reconnectionDelayMax: 2000,
  });
  const seen = new Set();
  socket.on("connect", () => {
    connects += 1;
    connected += 1;
    if (connects === count) process.stdout.write(`ready ${connected}\n`);
  });
  socket.on("disconnect", () => { connected -= 1; disconnects += 1; });
  socket.on("connect_error", () => { connectErrors += 1; });
  socket.on("incidents", (items) => {
    const at = now();
    for (const item of items) {
      const id = item.source_id;
      if (typeof id !== "string" || !id.startsWith(prefix) || seen.has(id)) continue;
      seen.add(id);
      const ms = Math.max(0, Math.round(at - Number(id.slice(id.lastIndexOf("-") + 1))));
      histogram.set(ms, (histogram.get(ms) || 0) + 1);
    }
  });
  screens.push({ socket, seen });
}

// open 50 connections every 100 ms, as a county's screens come up over a minute or so
for (let i = 0; i < count; i++) setTimeout(() => open(i), Math.floor(i / 50) * 100);

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.startsWith("status")) {
    process.stdout.write(`status ${connected}\n`);
    return;
  }
  if (!line.startsWith("report ")) return;
  const acked = fs.readFileSync(line.slice(7), "utf8").split("\n").filter(Boolean);
  let lost = 0;
  for (const { seen } of screens) for (const id of acked) if (!seen.has(id)) lost += 1;
  const usage = process.cpuUsage();
  process.stdout.write(JSON.stringify({
    screens: screens.length, connected, connects, disconnects, connect_errors: connectErrors,
    lost, histogram: Object.fromEntries(histogram),
    cpu_seconds: (usage.user + usage.system) / 1e6,
  }) + "\n");
  for (const { socket } of screens) socket.close();
  setTimeout(() => process.exit(0), 200);
});
