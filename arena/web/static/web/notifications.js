// The always-connected notification channel: /ws/notifications/ (docs/protocol.md,
// "Notifications"). Connects, hands every event to the callbacks registered for
// its type, and reconnects by itself with capped, jittered exponential backoff.
//
//   import { NotificationChannel } from "./notifications.js";
//   const channel = new NotificationChannel();
//   channel.on("match.ready", (e) => location.assign(`/play/${e.match.id}/`));
//   channel.on("state", (state) => banner.hidden = state !== "reconnecting");
//   channel.start();
//
// States: "idle" (not started), "connecting" (first attempt), "open",
// "reconnecting" (lost; waiting for the next attempt or trying),
// "unauthorized" (closed with 4401: signed out, no retry), "stopped".
//
// Everything that touches the outside world (WebSocket, timers, randomness, the
// window's "online" event) is injectable, so the logic runs under Node's test
// runner with fakes.

export const CLOSE_UNAUTHENTICATED = 4401;
export const HEARTBEAT_CLOSE = 4000; // our own close code when the server stops answering

export const DEFAULT_BACKOFF = Object.freeze({
  initial: 500, // ms before the first retry
  factor: 2,
  max: 30000, // ms, the cap
  jitter: 0.5, // each delay is drawn from [base * (1 - jitter), base]
});

export const DEFAULT_HEARTBEAT = Object.freeze({
  interval: 25000, // ms between pings while open
  timeout: 10000, // ms without any message after a ping: the connection is dead
});

// The wait before retry number `attempt` (0 for the first retry). Exponential,
// capped at `max`, then jittered downwards, so many clients that lost the same
// server do not come back in lockstep and never wait longer than the cap.
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { initial, factor, max, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const steps = Math.max(0, Math.floor(attempt));
  const base = Math.min(max, initial * Math.pow(factor, Math.min(steps, 64)));
  const spread = Math.min(1, Math.max(0, jitter));
  return Math.round(base * (1 - spread * random()));
}

// ws(s)://<this site>/ws/notifications/ for a page location.
export function notificationsUrl(location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/notifications/`;
}

const defaultTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
  now: () => Date.now(),
};

export class NotificationChannel {
  constructor({
    url = null,
    token = null, // an API token for scripts; browsers use the session cookie
    WebSocket: WebSocketImpl = globalThis.WebSocket,
    timers = defaultTimers,
    random = Math.random,
    backoff = {},
    heartbeat = {},
    events = globalThis.window, // where "online" comes from; null for none
  } = {}) {
    const base = url || notificationsUrl();
    this.url = token ? `${base}${base.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : base;
    this.WebSocket = WebSocketImpl;
    this.timers = { ...defaultTimers, ...timers };
    this.random = random;
    this.backoff = { ...DEFAULT_BACKOFF, ...backoff };
    this.heartbeat = { ...DEFAULT_HEARTBEAT, ...heartbeat };
    this.events = events || null;

    this.state = "idle";
    this.attempt = 0; // failed attempts since the last good connection
    this.retryAt = null; // when the next attempt is due (timers.now() clock), or null
    this.user = null; // username from the server's "hello"
    this.socket = null;
    this.handlers = new Map();
    this.watched = new Set();
    this.everOpen = false;
    this._retryTimer = null;
    this._pingTimer = null;
    this._deadTimer = null;
    this._onOnline = () => {
      if (this.state === "reconnecting" && this._retryTimer !== null) this.reconnectNow();
    };
  }

  get reconnecting() {
    return this.state === "reconnecting";
  }

  get connected() {
    return this.state === "open";
  }

  // ms until the next attempt while reconnecting, else null.
  retryIn() {
    return this.retryAt === null ? null : Math.max(0, this.retryAt - this.timers.now());
  }

  // on("match.ready", fn), on("*", fn) for every event, on("state", fn) for state
  // changes; returns a function that removes the callback.
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  start() {
    if (this.state === "idle" || this.state === "stopped" || this.state === "unauthorized") {
      this.attempt = 0;
      this.everOpen = false;
      this.events?.addEventListener?.("online", this._onOnline);
      this._open();
    }
    return this;
  }

  stop() {
    this._clearRetry();
    this._stopHeartbeat();
    this.events?.removeEventListener?.("online", this._onOnline);
    const socket = this._detach();
    if (socket) socket.close(1000);
    this._setState("stopped");
  }

  // Retry at once instead of waiting for the backoff (e.g. the network is back).
  reconnectNow() {
    if (this.state !== "reconnecting") return;
    this._clearRetry();
    if (!this.socket) this._open();
  }

  // Public events of a match (spectators). Remembered across reconnections.
  watch(matchId) {
    this.watched.add(matchId);
    this.send({ action: "watch", match: matchId });
  }

  unwatch(matchId) {
    this.watched.delete(matchId);
    this.send({ action: "unwatch", match: matchId });
  }

  // Send a message now if connected; false if it could not be sent.
  send(message) {
    if (this.state !== "open" || !this.socket) return false;
    try {
      this.socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  // ---- internals -----------------------------------------------------------------

  _open() {
    this._setState(this.everOpen || this.attempt > 0 ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new this.WebSocket(this.url);
    } catch {
      this._lost(1006);
      return;
    }
    this.socket = socket;
    socket.onopen = () => this._opened();
    socket.onmessage = (message) => this._message(message.data);
    socket.onclose = (event) => this._lost(event && typeof event.code === "number" ? event.code : 1006);
    socket.onerror = () => {}; // a close event always follows
  }

  _opened() {
    this.everOpen = true;
    this._setState("open");
    for (const matchId of this.watched) this.send({ action: "watch", match: matchId });
    this._startHeartbeat();
  }

  _message(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!message || typeof message.type !== "string") return;
    this._alive();
    if (message.type === "hello") {
      // Authenticated and served: the backoff starts over next time.
      this.attempt = 0;
      this.user = message.user ?? null;
    }
    this._emit(message.type, message);
    this._emit("*", message);
  }

  _lost(code) {
    this._detach();
    this._stopHeartbeat();
    if (this.state === "stopped") return;
    if (code === CLOSE_UNAUTHENTICATED) {
      this.events?.removeEventListener?.("online", this._onOnline);
      this._setState("unauthorized");
      return;
    }
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.attempt += 1;
    this._clearRetry();
    this.retryAt = this.timers.now() + delay;
    this._retryTimer = this.timers.setTimeout(() => {
      this._retryTimer = null;
      this.retryAt = null;
      this._open();
    }, delay);
    this._setState("reconnecting");
  }

  _detach() {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    }
    return socket;
  }

  _clearRetry() {
    if (this._retryTimer !== null) this.timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this.retryAt = null;
  }

  // While open: a ping every `interval`; if nothing at all comes back within
  // `timeout`, the connection is taken for dead (a sleeping laptop, a dropped
  // network leave no close event for a long time) and replaced.
  _startHeartbeat() {
    this._stopHeartbeat();
    this._pingTimer = this.timers.setTimeout(() => {
      this._pingTimer = null;
      if (!this.send({ action: "ping" })) return;
      this._deadTimer = this.timers.setTimeout(() => {
        this._deadTimer = null;
        const socket = this._detach();
        if (socket) socket.close(HEARTBEAT_CLOSE);
        this._lost(HEARTBEAT_CLOSE);
      }, this.heartbeat.timeout);
    }, this.heartbeat.interval);
  }

  _alive() {
    if (this.state === "open") this._startHeartbeat();
  }

  _stopHeartbeat() {
    if (this._pingTimer !== null) this.timers.clearTimeout(this._pingTimer);
    if (this._deadTimer !== null) this.timers.clearTimeout(this._deadTimer);
    this._pingTimer = this._deadTimer = null;
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this._emit("state", state);
  }

  _emit(type, payload) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(payload, this);
      } catch (error) {
        // One broken callback must not stop the others, nor the channel.
        globalThis.console?.error?.(error);
      }
    }
  }
}
