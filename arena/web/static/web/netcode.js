// Arena netcode: the Socket.IO protocol of a game server (docs/protocol.md),
// without any drawing or DOM access, so that it runs and is tested in Node.
//
// A Netcode object is given a socket-like object (`on(event, fn)` and
// `emit(event, ...args)`) and a clock returning seconds.  It keeps:
//
// * the match description, the phase, who is connected, the countdown;
// * a buffer of `state` snapshots, rendered `renderDelay` seconds in the past so
//   that the ball and the other paddle are interpolated between two snapshots,
//   with a short, bounded extrapolation when snapshots are late;
// * client-side prediction of the own paddle: inputs carry increasing `seq`, and
//   every `state` resets the paddle to the server's value, drops the inputs the
//   server acknowledged and replays the others;
// * round-trip time measured with `ping`, and statistics for a debug overlay.

export const DEFAULT_FIELD = Object.freeze({
  width: 1000,
  height: 600,
  paddle_width: 12,
  paddle_height: 100,
  paddle_inset: 30,
  ball_radius: 8,
  paddle_speed: 500,
  ball_speed: 350,
});

const SIDES = ["left", "right"];

export function otherSide(side) {
  return side === "left" ? "right" : side === "right" ? "left" : null;
}

export function clamp(value, lo, hi) {
  return value < lo ? lo : value > hi ? hi : value;
}

export function lerp(a, b, alpha) {
  return a + (b - a) * alpha;
}

// Position of a point moving freely between two walls at `lo` and `hi`, starting
// at `pos` with velocity `vel`, after `dt` seconds (elastic bounces).
export function reflect(pos, vel, dt, lo, hi) {
  const span = hi - lo;
  if (span <= 0) return lo;
  let p = pos + vel * dt - lo;
  const period = 2 * span;
  p = ((p % period) + period) % period;
  return lo + (p <= span ? p : period - p);
}

// Whether the ball went from `a` to `b` (two snapshots' balls, `dt` seconds
// apart) by a serve or a reset rather than by flying: then it must not be drawn
// sweeping across the field in between.
export function teleported(a, b, dt) {
  const speed = Math.max(Math.hypot(a.vx, a.vy), Math.hypot(b.vx, b.vy));
  const moved = Math.hypot(b.x - a.x, b.y - a.y);
  return moved > speed * dt * 2 + 30;
}

// Limits of a paddle's centre on the field.
export function paddleLimits(field) {
  const half = field.paddle_height / 2;
  return [half, field.height - half];
}

// Integrates the own paddle from `y` (its position at client time `from`) up to
// client time `to`: `baseMove` holds until the first input, then each input's
// `move` holds from its `t` to the next input's `t` (or `to`).  Every segment is
// clamped to the field, as the server clamps each tick.
export function integrateInputs(y, from, to, baseMove, inputs, field) {
  const [lo, hi] = paddleLimits(field);
  const speed = field.paddle_speed;
  let pos = clamp(y, lo, hi);
  let move = baseMove;
  let t = from;
  for (const input of inputs) {
    const start = Math.min(Math.max(input.t, from), to);
    if (start > t) {
      pos = clamp(pos + move * speed * (start - t), lo, hi);
      t = start;
    }
    move = input.move;
  }
  if (to > t) pos = clamp(pos + move * speed * (to - t), lo, hi);
  return pos;
}

// Minimal event emitter for the page glue.
class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, []);
    this._handlers.get(event).push(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) {
    const list = this._handlers.get(event);
    if (list) this._handlers.set(event, list.filter((h) => h !== fn));
  }
  _fire(event, payload) {
    for (const fn of this._handlers.get(event) || []) {
      try {
        fn(payload);
      } catch (err) {
        // A broken UI handler must not break the protocol handling.
        if (typeof console !== "undefined") console.error(err);
      }
    }
  }
}

export class Netcode extends Emitter {
  /**
   * @param {object} options
   * @param {{on: Function, emit: Function}} options.socket
   * @param {() => number} [options.clock] seconds, monotonic
   * @param {number} [options.delaySnapshots] render delay in snapshot intervals
   * @param {number} [options.maxExtrapolation] seconds of extrapolation at most
   * @param {number} [options.correctionSmoothing] seconds over which a prediction
   *   correction is blended into the displayed paddle (0: snap)
   * @param {number} [options.correctionThreshold] pixels below which a
   *   disagreement is not counted as a correction
   */
  constructor({
    socket,
    clock = defaultClock,
    delaySnapshots = 2,
    maxExtrapolation = 0.2,
    correctionSmoothing = 0.06,
    correctionThreshold = 2,
  } = {}) {
    super();
    if (!socket || typeof socket.on !== "function" || typeof socket.emit !== "function") {
      throw new TypeError("Netcode needs a socket with on() and emit()");
    }
    this.socket = socket;
    this.clock = clock;
    this.delaySnapshots = delaySnapshots;
    this.maxExtrapolation = maxExtrapolation;
    this.correctionSmoothing = correctionSmoothing;
    this.correctionThreshold = correctionThreshold;

    this.role = null;
    this.side = null;
    this.match = null;
    this.field = { ...DEFAULT_FIELD };
    this.tickRate = 60;
    this.snapshotRate = 30;
    this.phase = "connecting";
    this.connected = [];
    this.missing = [];
    this.countdown = null; // {seconds, at}
    this.gameOver = null;
    this.lastError = null;
    this.paused = null; // {grace, at}
    this.score = { left: 0, right: 0 };

    // Snapshot buffer: {st (server seconds), tick, ball, paddles, score, acks, at}.
    this.snapshots = [];
    this._arrivals = [];
    this._offset = null; // client time - server time, smoothed
    this._renderTime = -Infinity;
    this._extrapolating = false;
    this._lastBuffer = 0;

    // Prediction of the own paddle.
    this.seq = 0;
    this.intent = 0;
    this.pending = []; // {seq, move, t}
    this._ackedMove = 0;
    this._ack = 0;
    this._serverY = null;
    this._anchor = 0; // client time the server's paddle value stands for
    this._smooth = { value: 0, at: 0 };
    this.corrections = { count: 0, last: 0 };

    // Round-trip time.
    this.rtt = null;
    this.rttAvg = null;
    this._pingsInFlight = 0;

    this._bind();
  }

  get renderDelay() {
    return this.delaySnapshots / this.snapshotRate;
  }

  _bind() {
    const s = this.socket;
    s.on("welcome", (msg) => this.handleWelcome(msg));
    s.on("presence", (msg) => this.handlePresence(msg));
    s.on("countdown", (msg) => this.handleCountdown(msg));
    s.on("state", (msg) => this.handleState(msg));
    s.on("score", (msg) => this.handleScore(msg));
    s.on("paused", (msg) => this.handlePaused(msg));
    s.on("game_over", (msg) => this.handleGameOver(msg));
    s.on("error", (msg) => this.handleError(msg));
    s.on("disconnect", (reason) => this.handleDisconnect(reason));
  }

  // ---- server events -------------------------------------------------------

  handleWelcome(msg) {
    if (!msg || typeof msg !== "object") return;
    this.role = msg.role === "player" ? "player" : "spectator";
    this.side = this.role === "player" && SIDES.includes(msg.side) ? msg.side : null;
    this.match = msg.match || null;
    this.field = { ...DEFAULT_FIELD, ...(msg.field || {}) };
    if (msg.tick_rate > 0) this.tickRate = msg.tick_rate;
    if (msg.snapshot_rate > 0) this.snapshotRate = msg.snapshot_rate;
    this.phase = msg.phase || "waiting";
    this.gameOver = null;
    this.paused = null;
    this.setConnected(Array.isArray(msg.connected) ? msg.connected : []);
    if (Array.isArray(msg.missing)) this.missing = msg.missing.slice();
    // A (re)connection starts a new stream of snapshots and a new input queue.
    this.snapshots = [];
    this._arrivals = [];
    this._offset = null;
    this._renderTime = -Infinity;
    this.pending = [];
    this._serverY = null;
    this._smooth = { value: 0, at: 0 };
    // The server remembers the last seq it applied for this side, across
    // connections: continue above it, or the first inputs would count as acked.
    const acked = this.side && msg.state && msg.state.acks ? Number(msg.state.acks[this.side]) : 0;
    if (Number.isFinite(acked) && acked > this.seq) this.seq = acked;
    if (msg.state) this.handleState(msg.state, { fromWelcome: true });
    this._fire("welcome", msg);
    // An intent held while (re)connecting is sent as soon as we are a player.
    if (this.role === "player" && this.intent !== 0) {
      const held = this.intent;
      this.intent = 0;
      this.setMove(held);
    }
  }

  setConnected(connected) {
    this.connected = connected.slice();
    const names = this.playerNames();
    this.missing = names.filter((n) => !this.connected.includes(n));
  }

  handlePresence(msg) {
    if (!msg || typeof msg !== "object") return;
    this.connected = Array.isArray(msg.connected) ? msg.connected.slice() : [];
    this.missing = Array.isArray(msg.missing) ? msg.missing.slice() : [];
    this._fire("presence", msg);
  }

  handleCountdown(msg) {
    const seconds = msg && Number(msg.seconds);
    this.countdown = { seconds: Number.isFinite(seconds) ? seconds : 3, at: this.clock() };
    if (this.phase !== "over") this.phase = "countdown";
    this._fire("countdown", msg);
  }

  handleState(msg, { fromWelcome = false } = {}) {
    if (!msg || typeof msg !== "object" || !msg.ball || !msg.paddles) return;
    const now = this.clock();
    const st = Number(msg.tick) / this.tickRate;
    if (!Number.isFinite(st)) return;
    const newest = this.snapshots[this.snapshots.length - 1];
    if (newest && st <= newest.st) return; // duplicate or out of order: useless
    // Ticks only advance while the game runs: a newer tick after a countdown or a
    // pause means play has (re)started.
    const starting = !fromWelcome && this.phase !== "over" && this.phase !== "playing" &&
      (newest !== undefined || this.phase === "connecting");

    this._syncClock(now, st);
    const snap = {
      st,
      tick: msg.tick,
      ball: { x: msg.ball.x, y: msg.ball.y, vx: msg.ball.vx || 0, vy: msg.ball.vy || 0 },
      paddles: { left: msg.paddles.left, right: msg.paddles.right },
      score: msg.score ? { left: msg.score.left, right: msg.score.right } : this.score,
      acks: msg.acks || {},
      at: now,
    };
    this.snapshots.push(snap);
    // Keep about a second of history; interpolation needs the last few only.
    const keepFrom = st - Math.max(1, this.renderDelay * 4);
    while (this.snapshots.length > 2 && this.snapshots[0].st < keepFrom) this.snapshots.shift();
    if (!fromWelcome) this._arrivals.push(now);
    this.score = snap.score;
    if (starting) {
      this.phase = "playing";
      this.countdown = null;
      this.paused = null;
      this._startPlay();
    }
    if (this.side) this._reconcile(snap, now);
    this._fire("state", snap);
  }

  // A player left during the game: play stops until they are back (then a new
  // countdown) or until `grace` seconds have passed.
  handlePaused(msg) {
    if (this.phase === "over") return;
    this.phase = "paused";
    const grace = msg && Number(msg.grace);
    this.paused = { grace: Number.isFinite(grace) ? grace : null, at: this.clock() };
    if (msg && Array.isArray(msg.missing)) this.missing = msg.missing.slice();
    this._fire("paused", msg);
  }

  handleScore(msg) {
    if (msg && msg.score) this.score = { left: msg.score.left, right: msg.score.right };
    this._fire("score", msg);
  }

  handleGameOver(msg) {
    this.phase = "over";
    this.gameOver = {
      winner: msg && msg.winner !== undefined ? msg.winner : null,
      score: (msg && msg.score) || this.score,
      reason: (msg && msg.reason) || null,
    };
    if (msg && msg.score) this.score = { left: msg.score.left, right: msg.score.right };
    this._fire("game_over", this.gameOver);
  }

  handleError(msg) {
    this.lastError = msg || null;
    this._fire("error", msg);
  }

  handleDisconnect(reason) {
    this._pingsInFlight = 0;
    this._fire("disconnect", reason);
  }

  // ---- time base and interpolation ----------------------------------------

  // Keeps `_offset` (client time minus server time) close to the latest arrivals
  // while moving it by small steps only, so the rendered time never jumps.
  _syncClock(now, st) {
    const sample = now - st;
    const resync = Math.max(0.25, 4 * this.renderDelay);
    if (this._offset === null || Math.abs(sample - this._offset) > resync) {
      // First snapshot, or a stall (a pause, a server hiccup): start afresh
      // rather than slewing for seconds while the view stays frozen.
      this._offset = sample;
      this._renderTime = -Infinity;
      return;
    }
    const step = (sample - this._offset) * 0.1;
    const maxStep = 0.005;
    this._offset += clamp(step, -maxStep, maxStep);
  }

  // Server time shown at client time `now`; never goes backwards.
  renderTimeAt(now) {
    if (this._offset === null) return null;
    const t = now - this._offset - this.renderDelay;
    if (t > this._renderTime) this._renderTime = t;
    return this._renderTime;
  }

  // Ball and paddles as seen at client time `now`, from the snapshot buffer.
  interpolate(now) {
    const snaps = this.snapshots;
    if (snaps.length === 0) return null;
    const rt = this.renderTimeAt(now);
    const newest = snaps[snaps.length - 1];
    this._lastBuffer = newest.st - rt;
    if (rt <= snaps[0].st) {
      this._extrapolating = false;
      return this._fromSnapshot(snaps[0]);
    }
    if (rt >= newest.st) {
      // Late or lost snapshots: carry the ball on along its velocity for a short,
      // bounded while; the paddles stay where they were last seen.
      this._extrapolating = rt > newest.st;
      const dt = Math.min(rt - newest.st, this.maxExtrapolation);
      const r = this.field.ball_radius;
      const ball = {
        x: newest.ball.x + newest.ball.vx * dt,
        y: reflect(newest.ball.y, newest.ball.vy, dt, r, this.field.height - r),
        vx: newest.ball.vx,
        vy: newest.ball.vy,
      };
      return { ball, paddles: { ...newest.paddles }, score: newest.score, st: rt };
    }
    this._extrapolating = false;
    let i = snaps.length - 1;
    while (i > 0 && snaps[i - 1].st > rt) i--;
    const a = snaps[i - 1];
    const b = snaps[i];
    const alpha = (rt - a.st) / (b.st - a.st);
    const ball = this._teleported(a, b)
      ? { ...a.ball } // a serve or a reset: do not sweep the ball across the field
      : {
          x: lerp(a.ball.x, b.ball.x, alpha),
          y: lerp(a.ball.y, b.ball.y, alpha),
          vx: b.ball.vx,
          vy: b.ball.vy,
        };
    return {
      ball,
      paddles: {
        left: lerp(a.paddles.left, b.paddles.left, alpha),
        right: lerp(a.paddles.right, b.paddles.right, alpha),
      },
      score: a.score,
      st: rt,
    };
  }

  _fromSnapshot(s) {
    return { ball: { ...s.ball }, paddles: { ...s.paddles }, score: s.score, st: s.st };
  }

  _teleported(a, b) {
    return teleported(a.ball, b.ball, b.st - a.st);
  }

  // ---- prediction ------------------------------------------------------------

  // Sets the own paddle's intent (-1 up, 0 stop, 1 down).  Sends an `input` only
  // when the intent changes; returns true when something was sent.
  setMove(move) {
    const m = move < 0 ? -1 : move > 0 ? 1 : 0;
    if (m === this.intent) return false;
    this.intent = m;
    if (this.role !== "player" || this.phase === "over") return false;
    this._sendInput(m);
    return true;
  }

  _sendInput(move) {
    this.seq += 1;
    this.pending.push({ seq: this.seq, move, t: this.clock() });
    if (this.pending.length > 512) this.pending.splice(0, this.pending.length - 512);
    this.socket.emit("input", { seq: this.seq, move });
  }

  // Inputs sent before play (re)starts are not applied by the server: forget
  // them, and send the intent still held again so that it counts.
  _startPlay() {
    this.pending = [];
    this._ackedMove = 0;
    if (this.role === "player" && this.intent !== 0) this._sendInput(this.intent);
  }

  // Raw predicted centre of the own paddle at client time `now` (no smoothing).
  predictedY(now = this.clock()) {
    if (!this.side) return null;
    if (this._serverY === null) {
      const s = this.snapshots[this.snapshots.length - 1];
      return s ? s.paddles[this.side] : this.field.height / 2;
    }
    if (this.phase !== "playing") return this._serverY;
    return integrateInputs(this._serverY, this._anchor, now, this._ackedMove, this.pending, this.field);
  }

  // Own paddle as displayed: the prediction plus a decaying share of the last
  // corrections, so that a correction slides in instead of snapping.
  ownPaddleY(now = this.clock()) {
    const y = this.predictedY(now);
    if (y === null) return null;
    const residual = this._smoothResidual(now);
    const [lo, hi] = paddleLimits(this.field);
    return clamp(y + residual, lo, hi);
  }

  _smoothResidual(now) {
    if (!this.correctionSmoothing || this._smooth.value === 0) return 0;
    const k = Math.exp(-Math.max(0, now - this._smooth.at) / this.correctionSmoothing);
    return Math.abs(this._smooth.value * k) < 0.05 ? 0 : this._smooth.value * k;
  }

  _reconcile(snap, now) {
    const side = this.side;
    const hadBase = this._serverY !== null && this.phase === "playing";
    const before = hadBase ? this.predictedY(now) : null;

    const ack = Number.isInteger(snap.acks[side]) ? snap.acks[side] : this._ack;
    // Drop everything the server has applied; the last applied input's move is
    // what the server keeps doing until it sees the next one.
    while (this.pending.length && this.pending[0].seq <= ack) {
      this._ackedMove = this.pending.shift().move;
    }
    this._ack = ack;
    this._serverY = snap.paddles[side];
    // The server's value includes the inputs it received up to the snapshot: in
    // the client's own timeline that is about one round trip ago.
    this._anchor = now - (this.rtt || 0);

    if (before !== null) {
      const after = this.predictedY(now);
      const diff = before - after;
      if (Math.abs(diff) >= this.correctionThreshold) {
        this.corrections.count += 1;
        this.corrections.last = Math.abs(diff);
        if (this.correctionSmoothing) {
          this._smooth = { value: this._smoothResidual(now) + diff, at: now };
        }
      }
    }
  }

  // ---- round-trip time -------------------------------------------------------

  // Sends a `ping` with an acknowledgement; resolves with the RTT in seconds (or
  // null after `timeout` seconds without an answer, when a timer is available).
  ping({ timeout = 5, setTimer = globalThis.setTimeout, clearTimer = globalThis.clearTimeout } = {}) {
    const sent = this.clock();
    this._pingsInFlight += 1;
    return new Promise((resolve) => {
      let done = false;
      let timer = null;
      const finish = (value) => {
        if (done) return;
        done = true;
        this._pingsInFlight = Math.max(0, this._pingsInFlight - 1);
        if (timer !== null && clearTimer) clearTimer(timer);
        resolve(value);
      };
      if (timeout && setTimer) timer = setTimer(() => finish(null), timeout * 1000);
      this.socket.emit("ping", (answer) => {
        if (done) return;
        const rtt = Math.max(0, this.clock() - sent);
        this.recordRtt(rtt, answer);
        finish(rtt);
      });
    });
  }

  recordRtt(rtt) {
    this.rtt = rtt;
    this.rttAvg = this.rttAvg === null ? rtt : this.rttAvg + (rtt - this.rttAvg) * 0.2;
  }

  // ---- what the renderer and the debug overlay read --------------------------

  pauseRemaining(now = this.clock()) {
    if (!this.paused || this.phase !== "paused" || this.paused.grace === null) return null;
    return Math.max(0, this.paused.grace - (now - this.paused.at));
  }

  countdownRemaining(now = this.clock()) {
    if (!this.countdown || this.phase !== "countdown") return null;
    return Math.max(0, this.countdown.seconds - (now - this.countdown.at));
  }

  playerNames() {
    return this.match && Array.isArray(this.match.players)
      ? this.match.players.map((p) => p.username)
      : [];
  }

  playerOn(side) {
    if (!this.match || !Array.isArray(this.match.players)) return null;
    const p = this.match.players.find((q) => q.side === side);
    return p ? p.username : null;
  }

  snapshotRateMeasured(now = this.clock()) {
    while (this._arrivals.length && this._arrivals[0] <= now - 1) this._arrivals.shift();
    return this._arrivals.length;
  }

  // Everything needed to draw one frame at client time `now`.
  view(now = this.clock()) {
    const seen = this.interpolate(now);
    const h = this.field.height;
    const paddles = seen ? { ...seen.paddles } : { left: h / 2, right: h / 2 };
    if (this.side) {
      const own = this.ownPaddleY(now);
      if (own !== null) paddles[this.side] = own;
    }
    return {
      phase: this.phase,
      role: this.role,
      side: this.side,
      field: this.field,
      players: { left: this.playerOn("left"), right: this.playerOn("right") },
      ball: seen && this.phase !== "over" ? { x: seen.ball.x, y: seen.ball.y } : null,
      paddles,
      score: { ...this.score },
      countdown: this.countdownRemaining(now),
      pause: this.pauseRemaining(now),
      connected: this.connected.slice(),
      missing: this.missing.slice(),
      gameOver: this.gameOver,
    };
  }

  stats(now = this.clock()) {
    return {
      rttMs: this.rtt === null ? null : this.rtt * 1000,
      rttAvgMs: this.rttAvg === null ? null : this.rttAvg * 1000,
      snapshotRate: this.snapshotRateMeasured(now),
      expectedSnapshotRate: this.snapshotRate,
      interpDelayMs: this.renderDelay * 1000,
      bufferMs: this.snapshots.length ? this._lastBuffer * 1000 : null,
      extrapolating: this._extrapolating,
      corrections: this.corrections.count,
      lastCorrectionPx: this.corrections.last,
      pendingInputs: this.pending.length,
      seq: this.seq,
    };
  }
}

function defaultClock() {
  if (typeof performance !== "undefined" && performance.now) return performance.now() / 1000;
  return Date.now() / 1000;
}
