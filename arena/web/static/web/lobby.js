// Lobby page: live matches and recent results, kept live by the notification
// channel (no polling), and the buttons that start a match (challenge, quick play,
// bot).

import { api } from "./api.js";
import { NotificationChannel } from "./notifications.js";

const REFRESH_DEBOUNCE_MS = 150; // a burst of events costs one GET /api/lobby
const LIVE_FOR_ME = new Set(["waiting", "playing"]);

const root = document.getElementById("lobby");
const els = {
  error: document.getElementById("lobby-error"),
  status: document.getElementById("lobby-status"),
  challengeForm: document.getElementById("challenge-form"),
  challengeName: document.getElementById("challenge-username"),
  challengeButton: document.getElementById("challenge-button"),
  quickplay: document.getElementById("quickplay-button"),
  quickplayHint: document.getElementById("quickplay-hint"),
  bot: document.getElementById("bot-button"),
  points: document.getElementById("points-to-win"),
  liveBody: document.querySelector("#live-matches tbody"),
  liveTable: document.getElementById("live-matches"),
  liveEmpty: document.getElementById("live-empty"),
  liveCount: document.getElementById("live-count"),
  recentBody: document.querySelector("#recent-matches tbody"),
  recentTable: document.getElementById("recent-matches"),
  recentEmpty: document.getElementById("recent-empty"),
};

const state = {
  me: root.dataset.me,
  data: null,
  busy: false,
  leaving: false,
  timer: null,
  channel: null,
};

const playUrl = (id) => `${root.dataset.playUrl}${id}/`;
const watchUrl = (id) => `${root.dataset.watchUrl}${id}/`;
const replayUrl = (id) => `${root.dataset.replayUrl}${id}/`;

// ---- helpers -----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  if (!message) {
    els.error.hidden = true;
    els.error.textContent = "";
    return;
  }
  els.error.textContent = message;
  els.error.hidden = false;
}

function pointsToWin() {
  const n = parseInt(els.points.value, 10);
  return Number.isInteger(n) ? n : undefined;
}

function sideOf(match, side) {
  return (match.players || []).find((p) => p.side === side) || null;
}

function scoreOf(match) {
  const s = match.score || {};
  const left = s.left ?? sideOf(match, "left")?.score ?? 0;
  const right = s.right ?? sideOf(match, "right")?.score ?? 0;
  return `${left} – ${right}`;
}

function isMine(match) {
  return (match.players || []).some((p) => p.username === state.me);
}

function relativeTime(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

function playersCell(match, { winner = null } = {}) {
  const left = sideOf(match, "left");
  const right = sideOf(match, "right");
  const name = (p) =>
    el(
      "span",
      {
        class: ["player", p && p.username === winner ? "winner" : "", p && p.username === state.me ? "me" : ""]
          .filter(Boolean)
          .join(" "),
      },
      p ? p.username : "?",
    );
  return el("td", { class: "players" }, name(left), el("span", { class: "vs", text: "vs" }), name(right));
}

function statusBadge(status) {
  return el("span", { class: `badge badge-${status}`, text: status });
}

function resultText(match) {
  if (match.status === "finished") return match.winner ? `${match.winner} won` : "finished";
  const reason = match.finish_reason ? `: ${match.finish_reason}` : "";
  return `${match.status}${reason}`;
}

// Only a match that was recorded has a replay (not one that never started, nor
// one played with recording off).
function replayLink(match) {
  if (!match.recorded) return null;
  return el("a", { class: "btn btn-small", href: replayUrl(match.id), text: "Watch replay", "data-testid": "replay" });
}

// ---- rendering -----------------------------------------------------------------

function renderLive(matches) {
  const rows = matches.map((m) => {
    const action = isMine(m)
      ? el("a", { class: "btn btn-small btn-primary", href: playUrl(m.id), text: "Rejoin" })
      : el("a", { class: "btn btn-small", href: watchUrl(m.id), text: "Spectate", "data-testid": "spectate" });
    return el(
      "tr",
      { "data-match-id": m.id, "data-status": m.status },
      playersCell(m),
      el("td", { class: "num score", text: scoreOf(m) }),
      el("td", {}, statusBadge(m.status)),
      el("td", { class: "actions-cell" }, action),
    );
  });
  els.liveBody.replaceChildren(...rows);
  els.liveEmpty.hidden = rows.length > 0;
  els.liveTable.hidden = rows.length === 0;
  els.liveCount.textContent = String(rows.length);
}

function renderRecent(matches) {
  const rows = matches.map((m) =>
    el(
      "tr",
      { "data-match-id": m.id, "data-status": m.status },
      playersCell(m, { winner: m.winner }),
      el("td", { class: "num score", text: scoreOf(m) }),
      el("td", { class: `result result-${m.status}`, text: resultText(m) }),
      el("td", { class: "when muted", text: relativeTime(m.finished_at || m.created_at), title: m.finished_at || "" }),
      el("td", { class: "actions-cell" }, replayLink(m)),
    ),
  );
  els.recentBody.replaceChildren(...rows);
  els.recentEmpty.hidden = rows.length > 0;
  els.recentTable.hidden = rows.length === 0;
}

function renderQueue(queued) {
  els.quickplay.textContent = queued ? "Leave queue" : "Quick play";
  els.quickplay.classList.toggle("btn-active", queued);
  els.quickplayHint.textContent = queued
    ? "Waiting for an opponent…"
    : "Matched with the next player who asks.";
}

function render(data) {
  renderLive(Array.isArray(data.live) ? data.live : []);
  renderRecent(Array.isArray(data.recent) ? data.recent : []);
  renderQueue(Boolean(data.queued));
  const mine = data.my_match;
  if (mine && mine.status === "launching") els.status.textContent = "Starting your match…";
  else if (data.queued) els.status.textContent = "In the quick play queue";
  else els.status.textContent = `Signed in as ${data.me || state.me}`;
}

// ---- live updates --------------------------------------------------------------
// GET /api/lobby gives the whole picture once; the notification channel then says
// when something changed (any match's public events, our own match.ready with its
// port), and the page reads the picture again. After a reconnection it reads it
// again too, so nothing missed while offline stays missed.

function goToMatch(match) {
  if (state.leaving) return;
  state.leaving = true;
  if (state.channel) state.channel.stop();
  window.location.assign(playUrl(match.id));
}

async function refresh() {
  clearTimeout(state.timer);
  state.timer = null;
  try {
    const { data } = await api("GET", root.dataset.lobbyUrl);
    state.data = data;
    if (data.me) state.me = data.me;
    render(data);
    if (data.my_match && LIVE_FOR_ME.has(data.my_match.status)) {
      goToMatch(data.my_match);
      return;
    }
    if (els.error.dataset.source === "refresh") {
      showError(null);
      delete els.error.dataset.source;
    }
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      window.location.assign(`/login/?next=${encodeURIComponent(window.location.pathname)}`);
      return;
    }
    showError(err.detail || String(err));
    els.error.dataset.source = "refresh";
  }
}

function refreshSoon() {
  if (state.leaving || state.timer !== null) return;
  state.timer = setTimeout(refresh, REFRESH_DEBOUNCE_MS);
}

function showConnection(channelState, channel) {
  root.dataset.connection = channelState;
  if (channelState === "reconnecting") {
    const seconds = Math.ceil((channel.retryIn() ?? 0) / 1000);
    els.status.textContent = seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
    els.status.classList.add("status-warning");
  } else if (channelState === "unauthorized") {
    window.location.assign(`/login/?next=${encodeURIComponent(window.location.pathname)}`);
  } else {
    els.status.classList.remove("status-warning");
  }
}

function startChannel() {
  const channel = new NotificationChannel();
  state.channel = channel;
  channel.on("state", showConnection);
  channel.on("hello", () => channel.send({ action: "lobby" }));
  channel.on("lobby", refresh); // subscribed: read the whole picture once
  channel.on("match.ready", (event) => {
    const mine = event.token && event.match.players.some((p) => p.username === state.me);
    if (mine && LIVE_FOR_ME.has(event.match.status)) goToMatch(event.match);
    else refreshSoon();
  });
  channel.on("*", (event) => {
    if (event.type.startsWith("match.") && event.type !== "match.ready") refreshSoon();
  });
  channel.start();
}

// ---- actions -------------------------------------------------------------------

async function act(button, fn) {
  if (state.busy) return;
  state.busy = true;
  button.disabled = true;
  showError(null);
  try {
    await fn();
  } catch (err) {
    showError(err.detail || String(err));
  } finally {
    state.busy = false;
    button.disabled = false;
  }
}

function withPoints(body) {
  const points = pointsToWin();
  return points === undefined ? body : { ...body, points_to_win: points };
}

els.challengeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const opponent = els.challengeName.value.trim();
  if (!opponent) {
    showError("Type the username of the player to challenge.");
    return;
  }
  act(els.challengeButton, async () => {
    const { data } = await api("POST", "/api/lobby/challenge", withPoints({ opponent }));
    goToMatch(data);
  });
});

els.quickplay.addEventListener("click", () => {
  act(els.quickplay, async () => {
    if (state.data && state.data.queued) {
      const { data } = await api("DELETE", "/api/lobby/quickplay");
      state.data = { ...state.data, queued: Boolean(data && data.queued) };
      renderQueue(state.data.queued);
      return;
    }
    const { status, data } = await api("POST", "/api/lobby/quickplay", withPoints({}));
    if (status === 201 && data && data.id) {
      goToMatch(data);
    } else {
      // 202: queued; match.ready on the channel takes us to the match.
      state.data = { ...(state.data || {}), queued: true };
      renderQueue(true);
    }
  });
});

els.bot.addEventListener("click", () => {
  act(els.bot, async () => {
    const { data } = await api("POST", "/api/lobby/bot", withPoints({}));
    goToMatch(data);
  });
});

// Test and debugging hook: the last lobby answer and the channel's state.
window.__arenaLobby = { data: () => state.data, connection: () => state.channel?.state };

refresh();
startChannel();
