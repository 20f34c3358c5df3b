// Replay page glue: loads the recorded frames of a match, hands the playback's
// view to the live game's Renderer on every animation frame, and wires the
// controls (play/pause, speed, scrub bar with score markers, keyboard). What the
// playback does is in replay.js.

import { api } from "./api.js";
import { DEFAULT_FIELD } from "./netcode.js";
import { Renderer, describeReason, gameOverPanel } from "./render.js";
import { Timeline, Playback, ReplayError, SPEEDS, SEEK_SECONDS, formatClock } from "./replay.js";

const FINAL = new Set(["finished", "cancelled", "failed"]);
const RALLY_LEAD_SECONDS = 3; // a marker plays the point from this long before it
const RETRIES = 5;

const root = document.getElementById("replay");
const stage = document.getElementById("stage");
const statusEl = document.getElementById("game-status");
const els = {
  controls: document.getElementById("replay-controls"),
  play: document.getElementById("play-pause"),
  time: document.getElementById("replay-time"),
  scrub: document.getElementById("scrub"),
  markers: document.getElementById("markers"),
  score: document.getElementById("replay-score"),
  speeds: [...document.querySelectorAll("[data-speed]")],
  again: document.getElementById("replay-again"),
  share: document.getElementById("share"),
  error: document.getElementById("replay-error"),
  errorTitle: document.getElementById("replay-error-title"),
  errorDetail: document.getElementById("replay-error-detail"),
  errorWatch: document.getElementById("replay-error-watch"),
};

const page = { phase: "loading", notice: "Loading the replay…", error: null };
let timeline = null;
let playback = null;
let lastState = null;

const clock = () => performance.now() / 1000;

// ---- the view the renderer draws -------------------------------------------

function placeholderView() {
  const h = DEFAULT_FIELD.height;
  return {
    phase: page.phase,
    role: "spectator",
    badge: "REPLAY",
    side: null,
    field: DEFAULT_FIELD,
    players: { left: null, right: null },
    ball: null,
    paddles: { left: h / 2, right: h / 2 },
    score: { left: 0, right: 0 },
    notice: page.notice,
    gameOver: null,
    live: false,
  };
}

function currentView(now) {
  if (!playback) return placeholderView();
  const view = playback.view(now);
  syncControls(view.replay, view.score);
  return view;
}

const renderer = new Renderer(document.getElementById("field"), {
  getView: currentView,
  container: stage,
  gameOver: gameOverPanel(),
});

// ---- controls ----------------------------------------------------------------

// Runs a change of the playback and draws its result at once: the controls and
// the field answer the click or key in the same task, not at the next frame.
function act(change) {
  change(clock());
  renderer.drawFrame();
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// Brings the controls in line with the playback; called once per drawn frame,
// it touches the DOM only where something changed.
function syncControls(state, score) {
  const prev = lastState;
  lastState = state;
  const value = String(Math.round(state.tick));
  if (els.scrub.value !== value && !scrubbing.active) els.scrub.value = value;
  els.scrub.style.setProperty("--progress", `${(state.fraction * 100).toFixed(2)}%`);
  setText(els.time, `${formatClock(state.seconds)} / ${formatClock(state.duration)}`);
  const { left, right } = timeline.players;
  setText(els.score, `${left || "left"} ${score.left} – ${score.right} ${right || "right"}`);
  if (!prev || prev.playing !== state.playing) {
    els.play.textContent = state.playing ? "❚❚" : "▶";
    els.play.setAttribute("aria-label", state.playing ? "Pause" : "Play");
    els.play.dataset.state = state.playing ? "playing" : "paused";
  }
  if (!prev || prev.speed !== state.speed) {
    for (const b of els.speeds) b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === state.speed));
  }
}

function buildMarkers() {
  const markers = timeline.markers();
  els.markers.replaceChildren(
    ...markers.map((m) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `scrub-marker marker-${m.side}`;
      b.style.setProperty("--at", String(m.fraction));
      b.dataset.tick = String(m.tick);
      b.dataset.score = m.label;
      b.title = m.title;
      b.setAttribute("aria-label", m.title);
      b.textContent = m.label;
      b.addEventListener("click", () => {
        // Play the rally that led to the point.
        act((now) => {
          playback.seek(timeline.leadIn(m.tick, RALLY_LEAD_SECONDS), now);
          playback.play(now);
        });
        b.blur();
      });
      return b;
    }),
  );
}

const scrubbing = { active: false, resume: false };

function wireControls() {
  els.scrub.min = String(timeline.startTick);
  els.scrub.max = String(timeline.endTick);
  els.scrub.value = String(timeline.startTick);
  els.play.addEventListener("click", () => act((now) => playback.toggle(now)));
  els.again.addEventListener("click", () => act((now) => playback.play(now)));
  for (const b of els.speeds) {
    b.addEventListener("click", () => act((now) => playback.setSpeed(Number(b.dataset.speed), now)));
  }
  // Dragging pauses the playback (the thumb would run away under the pointer)
  // and resumes it on release.
  els.scrub.addEventListener("pointerdown", () => {
    scrubbing.active = true;
    scrubbing.resume = playback.playing;
    playback.pause(clock());
  });
  const release = () => {
    if (!scrubbing.active) return;
    scrubbing.active = false;
    if (scrubbing.resume) playback.play(clock());
  };
  els.scrub.addEventListener("pointerup", release);
  els.scrub.addEventListener("pointercancel", release);
  els.scrub.addEventListener("change", release);
  els.scrub.addEventListener("input", () => act((now) => playback.seek(Number(els.scrub.value), now)));
  els.share.addEventListener("click", shareMoment);
  buildMarkers();
  els.controls.hidden = false;
}

// The address of the current moment (?t=<seconds>) goes in the address bar, and
// in the clipboard where the browser allows it.
async function shareMoment() {
  const url = new URL(window.location.href);
  url.searchParams.set("t", String(Math.floor(playback.state(clock()).seconds)));
  window.history.replaceState(null, "", url);
  let copied = false;
  try {
    await navigator.clipboard.writeText(url.href);
    copied = true;
  } catch {
    // No clipboard (permission, insecure origin): the address bar has the link.
  }
  els.share.textContent = copied ? "Link copied" : "Link in the address bar";
  setTimeout(() => {
    els.share.textContent = "Share moment";
  }, 2000);
}

// ---- keyboard ------------------------------------------------------------------

function onKey(event) {
  if (!playback || event.ctrlKey || event.metaKey || event.altKey) return;
  const now = clock();
  switch (event.key) {
    case " ":
    case "k":
      if (!event.repeat) playback.toggle(now);
      break;
    case "ArrowLeft":
    case "ArrowRight": {
      const dir = event.key === "ArrowLeft" ? -1 : 1;
      if (event.shiftKey) playback.step(dir, now);
      else playback.seekBy(dir * SEEK_SECONDS, now);
      break;
    }
    case ",":
    case ".":
      playback.step(event.key === "," ? -1 : 1, now);
      break;
    case "ArrowUp":
    case "ArrowDown":
      playback.shiftSpeed(event.key === "ArrowUp" ? 1 : -1, now);
      break;
    case "Home":
      playback.seek(timeline.startTick, now);
      break;
    case "End":
      playback.seek(timeline.endTick, now);
      break;
    default:
      return;
  }
  renderer.drawFrame();
  // The page's keys, not the focused control's (a range input would move by one
  // tick, a focused button would be clicked by the space bar too).
  event.preventDefault();
  event.stopPropagation();
}
window.addEventListener("keydown", onKey, { capture: true });
window.addEventListener(
  "keyup",
  (event) => {
    if (playback && event.key === " ") event.preventDefault();
  },
  { capture: true },
);

// ---- errors ----------------------------------------------------------------------

function showError(title, detail, { live = false } = {}) {
  page.phase = "error";
  page.error = { title, detail, live };
  page.notice = title;
  els.errorTitle.textContent = title;
  els.errorDetail.textContent = detail || "";
  els.errorWatch.hidden = !live;
  els.error.hidden = false;
  els.controls.hidden = true;
  statusEl.textContent = title;
}

// A 404 from the replay API: a live match, a match that never had a replay, or
// no match at all; the match API tells which.
async function explainNotFound(err) {
  let match = null;
  try {
    ({ data: match } = await api("GET", root.dataset.matchUrl));
  } catch {
    // No such match (or the API is unreachable): the replay's own answer says it.
  }
  if (match && !FINAL.has(match.status)) {
    showError("This match has not ended yet", "Its replay is ready once it ends.", { live: true });
  } else if (match) {
    showError("No replay of this match", err.detail);
  } else {
    showError("No such replay", err.detail);
  }
}

// ---- start ---------------------------------------------------------------------

function describeResult() {
  const p = timeline.players;
  const g = timeline.gameOver();
  const vs = `${p.left || "?"} vs ${p.right || "?"}`;
  const score = `${g.score.left}–${g.score.right}`;
  const result = g.winner ? `${g.winner} won ${score}` : `${score}, no winner`;
  const reason = describeReason(g.reason);
  const warning = timeline.verified ? "" : " · ⚠ differs from the match as played";
  return `Replay · ${vs} · ${result}${reason ? ` · ${reason}` : ""}${warning}`;
}

// Where to start: ?t=<seconds> of match time, from a shared link.
function startTick() {
  const t = Number.parseFloat(new URLSearchParams(window.location.search).get("t"));
  return Number.isFinite(t) ? timeline.startTick + t * timeline.tickRate : null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function load() {
  for (let attempt = 0; ; attempt++) {
    try {
      const { data } = await api("GET", root.dataset.framesUrl);
      return data;
    } catch (err) {
      if (err.status === 404) return explainNotFound(err);
      if (err.status === 409) {
        return showError("This replay cannot be played", err.detail || "It was recorded with other rules.");
      }
      if (err.status === 401 || err.status === 403) return showError("You may not watch this replay", err.detail);
      // Retry what may pass (no network, a server restarting), not a broken replay.
      const transient = err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504;
      if (!transient || attempt >= RETRIES) return showError("The replay cannot be loaded", err.detail);
      page.notice = err.status ? `${err.detail} — retrying…` : err.detail;
      await sleep(1000 * (attempt + 1));
    }
  }
}

async function start() {
  renderer.start();
  const data = await load();
  if (!data) return;
  try {
    timeline = new Timeline(data);
  } catch (err) {
    if (err instanceof ReplayError) return showError("This replay cannot be played", err.message);
    throw err;
  }
  const shared = startTick();
  playback = new Playback(timeline, { tick: shared ?? timeline.startTick });
  page.phase = "ready";
  page.notice = null;
  statusEl.textContent = describeResult();
  document.title = `Replay: ${timeline.players.left || "?"} vs ${timeline.players.right || "?"} · Arena`;
  wireControls();
  // A link to the very end shows the result; anything else plays.
  if (!playback.ended) playback.play(clock());
}

// ---- test hook -------------------------------------------------------------------

window.__arena = {
  // What the last animation frame drew (as on the game page), and the playback.
  view: () => renderer.lastDrawn,
  replay: () => (playback ? playback.state(clock()) : null),
  page: () => ({ phase: page.phase, notice: page.notice, error: page.error }),
  markers: () => (timeline ? timeline.markers() : null),
  speeds: SPEEDS,
};

start();
