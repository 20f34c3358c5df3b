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
