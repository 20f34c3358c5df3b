// Playback of a recorded match (GET /api/match/<id>/replay/frames), without any
// drawing or DOM access, so that it runs and is tested in Node.
//
// A Timeline holds the recorded snapshots (one every `frame_every` ticks, each
// exactly like a live `state` event) and answers "what did the field look like at
// tick t", interpolating between the two snapshots around t so that playback is
// smooth at the display's rate whatever the recording's. A Playback is the
// player's position on that timeline: playing or paused, at a speed, moved by
// seeking and stepping; its view() is what the live game's Renderer draws.
//
// Positions are in ticks (fractional while playing); the page's clock is in
// seconds, as everywhere in the client.

import { DEFAULT_FIELD, lerp, clamp, teleported } from "./netcode.js";

export const SPEEDS = Object.freeze([0.5, 1, 2, 4]);
export const SEEK_SECONDS = 5;
// How long (match time) a "paused here" notice stays up when a pause used no
// ticks: the match stood still, so the recording has nothing to show of it.
const PAUSE_NOTICE_SECONDS = 1.5;

export class ReplayError extends Error {}

const SIDES = ["left", "right"];

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function validFrame(f) {
  return (
    f && isNumber(f.tick) && f.ball && isNumber(f.ball.x) && isNumber(f.ball.y) && f.paddles &&
    isNumber(f.paddles.left) && isNumber(f.paddles.right)
  );
}

function scoreOf(value) {
  return { left: Number(value?.left) || 0, right: Number(value?.right) || 0 };
}

// "m:ss" of a number of seconds (rounded down), as video players show it.
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds + 1e-9));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export class Timeline {
  /** @param {object} data the body of GET /api/match/<id>/replay/frames */
  constructor(data) {
    if (!data || typeof data !== "object") throw new ReplayError("The replay is empty.");
    const frames = (Array.isArray(data.frames) ? data.frames : []).filter(validFrame);
    if (frames.length === 0) throw new ReplayError("This replay has no frames to show.");
    frames.sort((a, b) => a.tick - b.tick);
    this.frames = frames.map((f) => ({
      tick: f.tick,
      ball: { x: f.ball.x, y: f.ball.y, vx: f.ball.vx || 0, vy: f.ball.vy || 0 },
      paddles: { left: f.paddles.left, right: f.paddles.right },
      score: scoreOf(f.score),
    }));
    this.matchId = data.match || null;
    this.tickRate = isNumber(data.tick_rate) && data.tick_rate > 0 ? data.tick_rate : 60;
    this.frameEvery = isNumber(data.frame_every) && data.frame_every > 0 ? data.frame_every : 1;
    this.field = { ...DEFAULT_FIELD, ...(data.field || {}) };
    this.players = { left: null, right: null };
    for (const p of Array.isArray(data.players) ? data.players : []) {
      if (p && SIDES.includes(p.side)) this.players[p.side] = p.username || null;
    }
    this.startTick = this.frames[0].tick;
    this.endTick = this.frames[this.frames.length - 1].tick;
    this.points = (Array.isArray(data.points) ? data.points : [])
      .filter((p) => p && isNumber(p.tick))
      .map((p) => ({ tick: p.tick, side: p.side, score: scoreOf(p.score) }))
      .sort((a, b) => a.tick - b.tick);
    this.pauses = (Array.isArray(data.pauses) ? data.pauses : [])
      .filter((p) => p && isNumber(p.tick))
      .map((p) => ({
        tick: p.tick,
        missing: Array.isArray(p.missing) ? p.missing.slice() : [],
        resumedTick: isNumber(p.resumed_tick) ? p.resumed_tick : null,
      }));
    this.end = data.end && typeof data.end === "object" ? data.end : null;
    // The server re-ran the recording and compared it with what it broadcast
    // live: false says this playback differs from the match as it was played.
    this.verified = data.verified !== false;
  }

  get durationSeconds() {
    return (this.endTick - this.startTick) / this.tickRate;
  }

  clampTick(tick) {
    return clamp(isNumber(tick) ? tick : this.startTick, this.startTick, this.endTick);
  }

  // Index of the last frame at or before `tick` (the first one before the start).
  indexAt(tick) {
    const frames = this.frames;
    if (tick <= frames[0].tick) return 0;
    let lo = 0;
    let hi = frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (frames[mid].tick <= tick) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // Ball, paddles and score at `tick`, interpolated between the frames around it.
  sample(tick) {
    const t = this.clampTick(tick);
    const i = this.indexAt(t);
    const a = this.frames[i];
    const b = this.frames[i + 1];
    if (!b || t <= a.tick) {
      return { tick: t, index: i, ball: { ...a.ball }, paddles: { ...a.paddles }, score: { ...a.score } };
    }
    const alpha = (t - a.tick) / (b.tick - a.tick);
    const dt = (b.tick - a.tick) / this.tickRate;
    const ball = teleported(a.ball, b.ball, dt)
      ? { ...a.ball } // a serve: the ball jumps to the centre, it does not fly there
      : { x: lerp(a.ball.x, b.ball.x, alpha), y: lerp(a.ball.y, b.ball.y, alpha), vx: b.ball.vx, vy: b.ball.vy };
    return {
      tick: t,
      index: i,
      ball,
      paddles: {
        left: lerp(a.paddles.left, b.paddles.left, alpha),
        right: lerp(a.paddles.right, b.paddles.right, alpha),
      },
      score: { ...a.score },
    };
  }

  // Where `tick` is on the scrub bar, 0 (start) to 1 (end).
  fraction(tick) {
    const span = this.endTick - this.startTick;
    return span > 0 ? clamp((tick - this.startTick) / span, 0, 1) : 0;
  }

  tickAtFraction(fraction) {
    return this.clampTick(this.startTick + clamp(fraction, 0, 1) * (this.endTick - this.startTick));
  }

  // Seconds of match time from the first frame to `tick`.
  secondsAt(tick) {
    return (this.clampTick(tick) - this.startTick) / this.tickRate;
  }

  // The scrub bar's score markers: one per point, where it was scored.
  markers() {
    return this.points.map((p) => {
      const tick = this.clampTick(p.tick);
      const who = this.players[p.side] || p.side || "?";
      const score = `${p.score.left}–${p.score.right}`;
      return {
        tick,
        fraction: this.fraction(tick),
        side: p.side,
        score: { ...p.score },
        label: score,
        title: `${who} scores · ${score} · ${formatClock(this.secondsAt(tick))}`,
      };
    });
  }

  // Where to start watching the point scored at `tick`: `seconds` before it, but
  // not before the previous point (that rally is another story).
  leadIn(tick, seconds) {
    const previous = this.points.filter((p) => p.tick < tick).pop();
    const from = previous ? previous.tick : this.startTick;
    return this.clampTick(Math.max(from, tick - seconds * this.tickRate));
  }

  // The notice to show at `tick`, if a player was missing around then.
  noticeAt(tick) {
    for (const p of this.pauses) {
      const until = Math.max(p.resumedTick ?? Infinity, p.tick + PAUSE_NOTICE_SECONDS * this.tickRate);
      if (tick >= p.tick && tick <= until) {
        const who = p.missing.length ? p.missing.join(" and ") : "a player";
        return p.resumedTick === null ? `${who} left here` : `Paused here: waiting for ${who}`;
      }
    }
    return null;
  }

  // The end of the match as the renderer's game-over panel wants it: the
  // winner's name (the recording may name the winning side), score and reason.
  gameOver() {
    const end = this.end || {};
    let winner = end.winner || null;
    if (SIDES.includes(winner)) winner = this.players[winner] || winner;
    const last = this.frames[this.frames.length - 1].score;
    return { winner, score: scoreOf(end.score || last), reason: end.reason || end.status || null };
  }
}

export class Playback {
  /**
   * @param {Timeline} timeline
   * @param {object} [options]
   * @param {number} [options.speed] one of SPEEDS
   * @param {number} [options.tick] where to start
   */
  constructor(timeline, { speed = 1, tick = timeline.startTick } = {}) {
    this.timeline = timeline;
    this.speed = SPEEDS.includes(speed) ? speed : 1;
    this.playing = false;
    this._tick = timeline.clampTick(tick); // position when last anchored
    this._at = 0; // clock time of that anchor while playing
  }

  // Position at clock time `now` (seconds), without changing anything.
  tickAt(now) {
    if (!this.playing) return this._tick;
    const elapsed = Math.max(0, now - this._at);
    return Math.min(this._tick + elapsed * this.timeline.tickRate * this.speed, this.timeline.endTick);
  }

  // Moves the playback to `now`: stops at the end of the recording.
  update(now) {
    const tick = this.tickAt(now);
    if (this.playing && tick >= this.timeline.endTick) {
      this.playing = false;
      this._tick = this.timeline.endTick;
    }
    return tick;
  }

  get ended() {
    return !this.playing && this._tick >= this.timeline.endTick;
  }

  _anchor(tick, now) {
    this._tick = this.timeline.clampTick(tick);
    this._at = now;
  }

  play(now) {
    this.update(now);
    // Play at the end starts over, as video players do.
    if (this._tick >= this.timeline.endTick) this._tick = this.timeline.startTick;
    this._anchor(this._tick, now);
    this.playing = true;
  }

  pause(now) {
    this._anchor(this.update(now), now);
    this.playing = false;
  }

  toggle(now) {
    this.update(now);
    if (this.playing) this.pause(now);
    else this.play(now);
    return this.playing;
  }

  setSpeed(speed, now) {
    if (!SPEEDS.includes(speed)) throw new RangeError(`speed must be one of ${SPEEDS.join(", ")}`);
    this._anchor(this.update(now), now);
    this.speed = speed;
  }

  // One speed up (direction 1) or down (-1), staying within SPEEDS.
  shiftSpeed(direction, now) {
    const i = SPEEDS.indexOf(this.speed) + Math.sign(direction);
    this.setSpeed(SPEEDS[clamp(i, 0, SPEEDS.length - 1)], now);
    return this.speed;
  }

  seek(tick, now) {
    this.update(now);
    this._anchor(tick, now);
  }

  seekBy(seconds, now) {
    this.seek(this.update(now) + seconds * this.timeline.tickRate, now);
  }

  seekFraction(fraction, now) {
    this.seek(this.timeline.tickAtFraction(fraction), now);
  }

  // Pauses and moves by `count` recorded frames (negative: back). From between
  // two frames, one step back lands on the frame just before.
  step(count, now) {
    this.pause(now);
    const frames = this.timeline.frames;
    const here = this._tick;
    let i = this.timeline.indexAt(here);
    if (count < 0 && frames[i].tick < here) i += 1; // the frame we are past counts as the first step
    const target = clamp(i + count, 0, frames.length - 1);
    this._anchor(frames[target].tick, now);
  }

  // What the live game's Renderer draws (see Netcode.view), for clock time `now`.
  view(now) {
    const tl = this.timeline;
    const tick = this.update(now);
    const seen = tl.sample(tick);
    const over = this.ended;
    return {
      phase: over ? "over" : "playing",
      role: "spectator",
      badge: this.speed === 1 ? "REPLAY" : `REPLAY ${this.speed}×`,
      side: null,
      field: tl.field,
      players: { ...tl.players },
      ball: over ? null : seen.ball,
      paddles: seen.paddles,
      score: over ? tl.gameOver().score : seen.score,
      countdown: null,
      pause: null,
      connected: [],
      missing: [],
      notice: over ? null : tl.noticeAt(tick),
      gameOver: over ? tl.gameOver() : null,
      live: false,
      replay: this.state(now, tick),
    };
  }

  // The controls' state: position, time, speed.
  state(now, tick = this.update(now)) {
    const tl = this.timeline;
    return {
      tick,
      frame: tl.indexAt(tick),
      fraction: tl.fraction(tick),
      seconds: tl.secondsAt(tick),
      duration: tl.durationSeconds,
      playing: this.playing,
      ended: this.ended,
      speed: this.speed,
    };
  }
}
