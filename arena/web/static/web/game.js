// Game page glue: reads the match, gets a game token, connects to the match's
// game server, feeds keyboard and touch intents to the netcode, and draws.

import { io } from "socket.io-client";
import { api } from "./api.js";
import { Netcode, DEFAULT_FIELD } from "./netcode.js";
import { Renderer, gameOverPanel } from "./render.js";

const FINAL = new Set(["finished", "cancelled", "failed"]);
const PING_INTERVAL_MS = 1000;
const UP_KEYS = new Set(["ArrowUp", "w", "W"]);
const DOWN_KEYS = new Set(["ArrowDown", "s", "S"]);

const root = document.getElementById("game");
const stage = document.getElementById("stage");
const canvas = document.getElementById("field");
const statusEl = document.getElementById("game-status");
const debugEl = document.getElementById("debug");
const replayLink = document.getElementById("watch-replay");

const page = {
  matchId: root.dataset.matchId,
  mode: root.dataset.mode, // "play" or "watch"
  me: root.dataset.me,
  apiUrl: root.dataset.apiUrl,
  phase: "loading",
  notice: null,
  match: null,
  final: null, // game over read from the API when there is no live connection
  over: false,
  replaced: false,
};

let netcode = null;
let socket = null;
let pingTimer = null;

// ---- the view the renderer draws -------------------------------------------

function playersFromMatch(match) {
  const players = { left: null, right: null };
  for (const p of (match && match.players) || []) players[p.side] = p.username;
  return players;
}

function currentView(now) {
  let view;
  if (netcode && netcode.role) {
    view = netcode.view(now);
  } else {
    const h = DEFAULT_FIELD.height;
    const seat = page.match && (page.match.players || []).find((p) => p.username === page.me);
    view = {
      phase: page.phase,
      role: page.mode === "watch" ? "spectator" : seat ? "player" : page.match ? "spectator" : null,
      side: page.mode !== "watch" && seat ? seat.side : null,
      field: DEFAULT_FIELD,
      players: { left: null, right: null },
      ball: null,
      paddles: { left: h / 2, right: h / 2 },
      score: (page.match && page.match.score) || { left: 0, right: 0 },
      countdown: null,
      connected: [],
      missing: [],
      gameOver: null,
    };
  }
  if (page.final) {
    view.phase = "over";
    view.gameOver = page.final;
    view.ball = null;
    view.score = { ...(page.final.score || view.score) };
  }
  const fromMatch = playersFromMatch(page.match);
  view.players = { left: view.players.left || fromMatch.left, right: view.players.right || fromMatch.right };
  view.live = Boolean(netcode && netcode.role); // welcomed by the game server
  view.notice = view.phase === "over" ? null : page.notice;
  view.me = page.me;
  return view;
}

const renderer = new Renderer(canvas, {
  getView: currentView,
  container: stage,
  gameOver: gameOverPanel(),
});

// ---- status line -------------------------------------------------------------

function setStatus(text) {
  statusEl.textContent = text;
}

function describeMatch(match) {
  const p = playersFromMatch(match);
  return `${p.left || "?"} vs ${p.right || "?"} · first to ${match.points_to_win}`;
}

function refreshStatus() {
  if (!page.match) return;
  const base = describeMatch(page.match);
  const role = netcode && netcode.role === "spectator" ? " · spectating" : "";
  setStatus(base + role);
}

// ---- the end of a match --------------------------------------------------------

// A recorded match: the game-over panel links to its replay.
function offerReplay(match) {
  if (replayLink && match && match.recorded) replayLink.hidden = false;
}

function finishFromMatch(match) {
  page.match = match;
  offerReplay(match);
  page.final = {
    winner: match.winner || null,
    score: match.score || { left: 0, right: 0 },
    reason: match.finish_reason || match.status,
  };
  endConnection();
}

function endConnection() {
  page.over = true;
  clearInterval(pingTimer);
  pingTimer = null;
  if (socket) {
    socket.io.reconnection(false);
    // The server disconnects everyone after game_over; close our side too in case.
    setTimeout(() => socket && socket.disconnect(), 1000);
  }
}

// While the connection is lost, the API tells whether the match is over.
let checking = false;
async function checkMatchOver() {
  if (checking || page.over) return;
  checking = true;
  try {
    const { data } = await api("GET", page.apiUrl);
    if (FINAL.has(data.status)) finishFromMatch(data);
  } catch {
    // Keep waiting; the socket may come back.
  } finally {
    checking = false;
  }
}

// The game server said the match is over: the API has (or soon has) the result.
async function waitForResult(tries = 10) {
  for (let i = 0; i < tries && !page.over; i++) {
    await checkMatchOver();
    if (!page.over) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- connection --------------------------------------------------------------

function connect(match, token) {
  // A page served over HTTPS may only open TLS connections (see README, "Running it for real").
  const scheme = window.location.protocol === "https:" ? "https" : "http";
  const url = `${scheme}://${match.host}:${match.port}`;
  socket = io(url, {
    auth: token ? { token } : {},
    transports: ["websocket", "polling"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  });
  netcode = new Netcode({ socket });

  socket.on("connect", () => {
    page.notice = null;
    netcode.ping().catch(() => {});
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      if (socket.connected) netcode.ping().catch(() => {});
    }, PING_INTERVAL_MS);
  });
  socket.on("connect_error", (err) => {
    if (page.over) return;
    const refusal = err && err.data && typeof err.data === "object" ? err.data : null;
    if (refusal && refusal.code === "spectators_full") {
      page.notice = refusal.detail || "This match has as many spectators as it can take.";
      return; // a refusal is final: socket.io does not retry it
    }
    if (refusal && refusal.code === "match_over") {
      page.notice = "The match is over.";
      waitForResult();
      return;
    }
    page.notice = "Cannot reach the game server — retrying…";
    checkMatchOver();
  });
  socket.on("disconnect", (reason) => {
    clearInterval(pingTimer);
    if (page.over || page.replaced || netcode.phase === "over") return;
    page.notice = "Connection lost — reconnecting…";
    if (reason === "io server disconnect") {
      // The server closed this connection on purpose (no automatic reconnection
      // then): ask the API whether the match is over, else connect again.
      checkMatchOver().then(() => {
        if (!page.over && !page.replaced) setTimeout(() => socket.connect(), 1000);
      });
    }
  });
  netcode.on("welcome", () => {
    page.notice = null;
    refreshStatus();
  });
  netcode.on("game_over", () => {
    endConnection();
    // The result is saved before game_over: the API has the final record.
    api("GET", page.apiUrl)
      .then(({ data }) => {
        page.match = data;
        offerReplay(data);
      })
      .catch(() => {});
  });
  netcode.on("error", (err) => {
    if (err && err.code === "replaced") {
      page.replaced = true;
      page.notice = "This match was opened in another window.";
      socket.io.reconnection(false);
    }
  });
}

// ---- input -------------------------------------------------------------------

const keys = { up: false, down: false };
const touches = { up: false, down: false };

function pushIntent() {
  if (!netcode) return;
  const up = keys.up || touches.up;
  const down = keys.down || touches.down;
  netcode.setMove((down ? 1 : 0) - (up ? 1 : 0));
}

function keyDirection(event) {
  if (UP_KEYS.has(event.key) || event.code === "KeyW") return "up";
  if (DOWN_KEYS.has(event.key) || event.code === "KeyS") return "down";
  return null;
}

window.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const dir = keyDirection(event);
  if (dir) {
    event.preventDefault();
    if (!keys[dir]) {
      keys[dir] = true;
      pushIntent();
    }
    return;
  }
  if ((event.key === "d" || event.key === "D") && !event.repeat) toggleDebug();
});

window.addEventListener("keyup", (event) => {
  const dir = keyDirection(event);
  if (dir && keys[dir]) {
    keys[dir] = false;
    pushIntent();
  }
});

function releaseAll() {
  keys.up = keys.down = touches.up = touches.down = false;
  pushIntent();
}
window.addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) releaseAll();
});

function onTouch(event) {
  if (!netcode || netcode.role !== "player") return;
  event.preventDefault();
  const rect = stage.getBoundingClientRect();
  const middle = rect.top + rect.height / 2;
  touches.up = touches.down = false;
  for (const t of event.touches) {
    if (t.clientY < middle) touches.up = true;
    else touches.down = true;
  }
  pushIntent();
}
for (const type of ["touchstart", "touchmove", "touchend", "touchcancel"]) {
  stage.addEventListener(type, onTouch, { passive: false });
}

// ---- debug overlay -----------------------------------------------------------

let debugTimer = null;
let fps = { frames: 0, at: performance.now(), value: 0 };

function fmt(value, unit, digits = 0) {
  return value === null || value === undefined ? "—" : `${value.toFixed(digits)} ${unit}`;
}

function updateDebug() {
  const now = performance.now();
  const elapsed = (now - fps.at) / 1000;
  if (elapsed >= 0.5) {
    fps = { frames: renderer.frames, at: now, value: (renderer.frames - fps.frames) / elapsed };
  }
  if (!netcode) {
    debugEl.textContent = "not connected";
    return;
  }
  const s = netcode.stats();
  const rows = [
    ["RTT", `${fmt(s.rttMs, "ms")} (avg ${fmt(s.rttAvgMs, "ms")})`],
    ["Snapshots", `${s.snapshotRate}/s (server ${s.expectedSnapshotRate}/s)`],
    ["Interp. delay", `${fmt(s.interpDelayMs, "ms")}${s.extrapolating ? " · extrapolating" : ""}`],
    ["Buffered", fmt(s.bufferMs, "ms")],
    ["Corrections", `${s.corrections} (last ${fmt(s.lastCorrectionPx, "px", 1)})`],
    ["Pending inputs", String(s.pendingInputs)],
    ["Frames", `${fps.value.toFixed(0)}/s`],
  ];
  debugEl.replaceChildren(
    ...rows.map(([k, v]) => {
      const row = document.createElement("div");
      const key = document.createElement("span");
      key.className = "debug-key";
      key.textContent = k;
      const val = document.createElement("span");
      val.className = "debug-value";
      val.textContent = v;
      row.append(key, val);
      return row;
    }),
  );
}

function toggleDebug(show = debugEl.hidden) {
  debugEl.hidden = !show;
  clearInterval(debugTimer);
  debugTimer = null;
  if (show) {
    updateDebug();
    debugTimer = setInterval(updateDebug, 250);
  }
  return show;
}

// ---- test hook -----------------------------------------------------------------

window.__arena = {
  // What the last animation frame drew: paddles, ball, score, phase, banner…
  view: () => renderer.lastDrawn,
  stats: () => (netcode ? netcode.stats() : null),
  netcode: () => netcode,
  page: () => ({ phase: page.phase, notice: page.notice, over: page.over, mode: page.mode }),
  toggleDebug,
};

// ---- start ---------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function start() {
  renderer.start();
  let match;
  for (;;) {
    try {
      ({ data: match } = await api("GET", page.apiUrl));
    } catch (err) {
      if (err.status === 404 || err.status === 401 || err.status === 403) {
        page.phase = "error";
        page.notice = err.detail;
        setStatus(err.detail);
        return;
      }
      page.notice = err.detail;
      await sleep(1000);
      continue;
    }
    page.match = match;
    refreshStatus();
    if (FINAL.has(match.status)) {
      finishFromMatch(match);
      return;
    }
    if (match.status !== "launching" && match.port) break;
    page.notice = "Starting the game server…";
    await sleep(500);
  }

  let token = null;
  if (page.mode === "play") {
    try {
      ({ data: { token } } = await api("GET", `${page.apiUrl}/token`));
    } catch (err) {
      if (err.status === 403) {
        // Not a player of this match: watch it instead.
        page.mode = "watch";
      } else {
        page.notice = err.detail;
      }
    }
  }
  page.phase = "connecting";
  page.notice = null;
  connect(match, token);
}

start();
