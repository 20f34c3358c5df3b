// Test doubles for the netcode: a socket that records what is emitted and lets
// the test deliver server events, and a clock the test moves by hand.

export class FakeSocket {
  constructor() {
    this.handlers = new Map();
    this.sent = [];
  }
  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }
  emit(event, ...args) {
    this.sent.push({ event, args });
    return this;
  }
  deliver(event, payload) {
    for (const fn of this.handlers.get(event) || []) fn(payload);
  }
  sentOf(event) {
    return this.sent.filter((m) => m.event === event).map((m) => m.args);
  }
}

export function fakeClock(start = 100) {
  let t = start;
  const clock = () => t;
  clock.advance = (dt) => {
    t += dt;
    return t;
  };
  clock.set = (value) => {
    t = value;
    return t;
  };
  return clock;
}

export const FIELD = {
  width: 1000,
  height: 600,
  paddle_width: 12,
  paddle_height: 100,
  paddle_inset: 30,
  ball_radius: 8,
  paddle_speed: 400,
  ball_speed: 300,
};

export function welcome(overrides = {}) {
  return {
    role: "player",
    side: "left",
    match: {
      id: "6f1c0000-0000-4000-8000-000000000001",
      players: [
        { username: "alice", side: "left" },
        { username: "bob", side: "right" },
      ],
      points_to_win: 3,
    },
    field: FIELD,
    tick_rate: 60,
    snapshot_rate: 30,
    phase: "waiting",
    state: state(0),
    connected: ["alice"],
    missing: ["bob"],
    ...overrides,
  };
}

// A `state` message; `tick` is at 60 per second.
export function state(tick, { ball = {}, paddles = {}, acks = {}, score = {} } = {}) {
  return {
    tick,
    ball: { x: 500, y: 300, vx: 0, vy: 0, ...ball },
    paddles: { left: 300, right: 300, ...paddles },
    score: { left: 0, right: 0, ...score },
    acks: { left: 0, right: 0, ...acks },
  };
}

// The body of GET /api/match/<id>/replay/frames for a 10 s match (60 ticks/s, a
// frame every 2 ticks) between alice (left) and bob (right): alice scores at tick
// 120, bob at 360, alice at 600 (2–1, the end); bob is missing for a moment at
// tick 240. The ball flies from the centre to the goal of each point in a
// straight line (300 px/s for the first, 150 px/s after); alice's paddle goes up
// one pixel a tick.
export function replayFrames() {
  const points = [
    { tick: 120, side: "left", score: { left: 1, right: 0 } },
    { tick: 360, side: "right", score: { left: 1, right: 1 } },
    { tick: 600, side: "left", score: { left: 2, right: 1 } },
  ];
  const rallies = [
    { from: 0, vx: 300 },
    { from: 120, vx: -150 },
    { from: 360, vx: 150 },
  ];
  const frames = [];
  for (let tick = 0; tick <= 600; tick += 2) {
    const rally = rallies.filter((r) => r.from <= tick).pop();
    const scored = points.filter((p) => p.tick <= tick).pop();
    const t = (tick - rally.from) / 60;
    frames.push(
      state(tick, {
        ball: { x: 500 + rally.vx * t, y: 300 + 40 * t, vx: rally.vx, vy: 40 },
        paddles: { left: Math.max(50, 300 - tick), right: 300 },
        score: scored ? scored.score : {},
        acks: { left: tick, right: tick },
      }),
    );
  }
  return {
    match: "6f1c0000-0000-4000-8000-0000000000aa",
    tick_rate: 60,
    frame_every: 2,
    field: FIELD,
    players: [
      { side: "left", username: "alice" },
      { side: "right", username: "bob" },
    ],
    frames,
    points,
    pauses: [{ tick: 240, missing: ["bob"], resumed_tick: 240 }],
    end: { tick: 600, status: "finished", reason: "points", winner: "left", score: { left: 2, right: 1 } },
  };
}
