import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  Netcode,
  integrateInputs,
  reflect,
  paddleLimits,
} from "../../arena/web/static/web/netcode.js";
import { FakeSocket, fakeClock, FIELD, welcome, state } from "./helpers.mjs";

const INTERVAL = 1 / 30; // snapshot interval
const TICKS_PER_SNAPSHOT = 2; // 60 Hz ticks, 30 Hz snapshots
const LATENCY = 0.04; // one-way delay of every snapshot in these tests

function setup({ options = {}, welcomeOverrides = {} } = {}) {
  const socket = new FakeSocket();
  const clock = fakeClock(100);
  const net = new Netcode({ socket, clock, ...options });
  socket.deliver("welcome", welcome(welcomeOverrides));
  return { socket, clock, net };
}

const close = (actual, expected, eps = 1e-6, msg) =>
  assert.ok(Math.abs(actual - expected) <= eps, msg || `${actual} is not ${expected} (±${eps})`);

describe("welcome, presence, countdown", () => {
  test("welcome sets role, side, field and the missing players", () => {
    const { net } = setup();
    assert.equal(net.role, "player");
    assert.equal(net.side, "left");
    assert.equal(net.field.paddle_speed, 400);
    assert.deepEqual(net.missing, ["bob"]);
    assert.equal(net.playerOn("right"), "bob");
    close(net.renderDelay, 2 / 30);
  });

  test("after a reconnection, seq continues above what the server applied", () => {
    const { net, socket } = setup({
      welcomeOverrides: { phase: "playing", state: state(600, { acks: { left: 41 } }) },
    });
    net.setMove(1);
    assert.deepEqual(socket.sentOf("input").at(-1), [{ seq: 42, move: 1 }]);
  });

  test("a spectator has no side and sends no input", () => {
    const { net, socket } = setup({ welcomeOverrides: { role: "spectator", side: null } });
    assert.equal(net.side, null);
    assert.equal(net.setMove(1), false);
    assert.equal(socket.sentOf("input").length, 0);
    assert.equal(net.view().role, "spectator");
  });

  test("presence replaces connected and missing", () => {
    const { net, socket } = setup();
    socket.deliver("presence", { connected: ["alice", "bob"], missing: [] });
    assert.deepEqual(net.missing, []);
    socket.deliver("presence", { connected: ["bob"], missing: ["alice"] });
    assert.deepEqual(net.view().missing, ["alice"]);
  });

  test("countdown counts down on the injected clock", () => {
    const { net, socket, clock } = setup();
    socket.deliver("countdown", { seconds: 3 });
    assert.equal(net.phase, "countdown");
    close(net.countdownRemaining(), 3);
    clock.advance(1.25);
    close(net.view().countdown, 1.75);
    clock.advance(5);
    assert.equal(net.countdownRemaining(), 0);
    socket.deliver("state", state(2));
    assert.equal(net.phase, "playing");
    assert.equal(net.view().countdown, null);
  });

  test("the countdown's snapshot does not start play; the next tick does", () => {
    const { net, socket, clock } = setup();
    socket.deliver("presence", { connected: ["alice", "bob"], missing: [] });
    socket.deliver("countdown", { seconds: 0.3 });
    socket.deliver("state", state(0)); // the server repeats the current state
    assert.equal(net.phase, "countdown");
    clock.advance(0.3);
    socket.deliver("state", state(1));
    assert.equal(net.phase, "playing");
  });

  test("paused: waits for the missing player, then a new countdown", () => {
    const { net, socket, clock } = setup();
    socket.deliver("state", state(2));
    socket.deliver("presence", { connected: ["alice"], missing: ["bob"] });
    socket.deliver("paused", { missing: ["bob"], grace: 15 });
    let v = net.view();
    assert.equal(v.phase, "paused");
    assert.deepEqual(v.missing, ["bob"]);
    close(v.pause, 15);
    clock.advance(4);
    close(net.view().pause, 11);
    socket.deliver("presence", { connected: ["alice", "bob"], missing: [] });
    socket.deliver("countdown", { seconds: 3 });
    socket.deliver("state", state(2));
    assert.equal(net.phase, "countdown");
    socket.deliver("state", state(3));
    assert.equal(net.phase, "playing");
    assert.equal(net.view().pause, null);
  });

  test("game_over ends the game and stops inputs", () => {
    const { net, socket } = setup();
    socket.deliver("state", state(2));
    socket.deliver("game_over", { winner: "alice", score: { left: 1, right: 0 }, reason: "points" });
    const v = net.view();
    assert.equal(v.phase, "over");
    assert.equal(v.gameOver.winner, "alice");
    assert.deepEqual(v.score, { left: 1, right: 0 });
    assert.equal(v.ball, null);
    assert.equal(net.setMove(-1), false);
    assert.equal(socket.sentOf("input").length, 0);
  });
});

describe("inputs", () => {
  test("an input is sent only when the intent changes, with increasing seq", () => {
    const { net, socket } = setup();
    assert.equal(net.setMove(1), true);
    assert.equal(net.setMove(1), false);
    assert.equal(net.setMove(0), true);
    assert.equal(net.setMove(-1), true);
    assert.equal(net.setMove(-5), false); // still "up"
    assert.deepEqual(
      socket.sentOf("input").map(([m]) => m),
      [
        { seq: 1, move: 1 },
        { seq: 2, move: 0 },
        { seq: 3, move: -1 },
      ],
    );
  });

  test("an intent held through the countdown is sent again when play starts", () => {
    const { net, socket, clock } = setup();
    socket.deliver("countdown", { seconds: 1 });
    net.setMove(-1); // the server drops inputs sent before play starts
    assert.deepEqual(net.pending.map((i) => i.seq), [1]);
    clock.advance(0.5);
    close(net.predictedY(), 300, 1e-9, "no prediction before play");
    clock.advance(0.5);
    socket.deliver("state", state(1));
    assert.equal(net.phase, "playing");
    assert.deepEqual(socket.sentOf("input").map(([m]) => m), [
      { seq: 1, move: -1 },
      { seq: 2, move: -1 },
    ]);
    assert.deepEqual(net.pending.map((i) => i.seq), [2]);
    clock.advance(0.1);
    close(net.predictedY(), 260);
  });

  test("an intent held before the welcome is sent once we are a player", () => {
    const socket = new FakeSocket();
    const net = new Netcode({ socket, clock: fakeClock() });
    net.setMove(-1);
    assert.equal(socket.sentOf("input").length, 0);
    socket.deliver("welcome", welcome());
    assert.deepEqual(socket.sentOf("input"), [[{ seq: 1, move: -1 }]]);
  });
});

describe("integrateInputs", () => {
  const lim = paddleLimits(FIELD);

  test("integrates move * paddle_speed over the time each input is held", () => {
    const inputs = [
      { seq: 1, move: 1, t: 10.0 },
      { seq: 2, move: 0, t: 10.25 },
      { seq: 3, move: -1, t: 10.5 },
    ];
    // 0.25 s down, 0.25 s still, 0.1 s up: 300 + 100 - 40
    close(integrateInputs(300, 10, 10.6, 0, inputs, FIELD), 360);
  });

  test("the acknowledged move holds until the first pending input", () => {
    const inputs = [{ seq: 4, move: 0, t: 10.1 }];
    close(integrateInputs(300, 10, 11, -1, inputs, FIELD), 260);
  });

  test("inputs older than the anchor start at the anchor", () => {
    const inputs = [{ seq: 1, move: 1, t: 9.0 }];
    close(integrateInputs(300, 10, 10.1, 0, inputs, FIELD), 340);
  });

  test("clamps to the field on every segment", () => {
    const up = [
      { seq: 1, move: -1, t: 0 },
      { seq: 2, move: 1, t: 2 },
    ];
    // 2 s up would be -500: stops at the top (50), then 0.5 s down: 250.
    close(integrateInputs(300, 0, 2.5, 0, up, FIELD), lim[0] + 200);
    close(integrateInputs(500, 0, 10, 1, [], FIELD), lim[1]);
  });
});

describe("prediction and reconciliation", () => {
  function playing() {
    const ctx = setup();
    ctx.socket.deliver("state", state(1, { paddles: { left: 300 } }));
    assert.equal(ctx.net.phase, "playing");
    return ctx;
  }

  test("the own paddle moves at once, before the server answers", () => {
    const { net, clock } = playing();
    net.setMove(1);
    clock.advance(0.1);
    close(net.predictedY(), 340);
    close(net.view().paddles.left, 340);
  });

  test("acks drop the acknowledged inputs", () => {
    const { net, socket, clock } = playing();
    net.setMove(1);
    clock.advance(0.02);
    net.setMove(0);
    clock.advance(0.02);
    net.setMove(-1);
    assert.deepEqual(net.pending.map((i) => i.seq), [1, 2, 3]);
    socket.deliver("state", state(2, { paddles: { left: 308 }, acks: { left: 2 } }));
    assert.deepEqual(net.pending.map((i) => i.seq), [3]);
    socket.deliver("state", state(4, { paddles: { left: 306 }, acks: { left: 3 } }));
    assert.deepEqual(net.pending, []);
    assert.equal(net.stats().pendingInputs, 0);
  });

  test("replay from the server's value gives the right position", () => {
    const { net, socket, clock } = playing();
    net.recordRtt(0.1);
    const t0 = clock();
    net.setMove(1); // seq 1 at t0
    clock.advance(0.2);
    net.setMove(0); // seq 2 at t0 + 0.2
    clock.advance(0.1);
    net.setMove(-1); // seq 3 at t0 + 0.3
    clock.advance(0.05); // now = t0 + 0.35
    // Predicted so far: +80 (down 0.2 s), 0, -20 (up 0.05 s) = 360.
    close(net.predictedY(), 360);
    // The server has applied seq 1 only, and its paddle is at 332 for the
    // client's time now - rtt = t0 + 0.25 (down from t0 for 0.25 s would be 400
    // but the server saw the input later: it reports 332).
    socket.deliver("state", state(20, { paddles: { left: 332 }, acks: { left: 1 } }));
    // Replay: from t0 + 0.25 the acked move (down) holds until seq 2 at t0 + 0.2,
    // i.e. not at all; seq 2 (still) until t0 + 0.3, seq 3 (up) until now.
    // 332 + 0 * 0.05 - 400 * 0.05 = 312.
    close(net.predictedY(), 312);
    assert.deepEqual(net.pending.map((i) => i.seq), [2, 3]);
    clock.advance(0.1);
    close(net.predictedY(), 272);
  });

  test("the acknowledged move keeps going after the server's snapshot", () => {
    const { net, socket, clock } = playing();
    net.recordRtt(0.05);
    net.setMove(1);
    clock.advance(0.1);
    // Server applied seq 1 and reports 320 for client time now - 0.05: the paddle
    // has gone on moving down for those 0.05 s since.
    socket.deliver("state", state(6, { paddles: { left: 320 }, acks: { left: 1 } }));
    close(net.predictedY(), 340);
    assert.equal(net.corrections.count, 0, "prediction agreed with the server");
  });

  test("a correction is counted when the server disagrees, and blended in", () => {
    const { net, socket, clock } = playing();
    net.setMove(1);
    clock.advance(0.1);
    close(net.predictedY(), 340);
    // The server says the paddle is 25 px higher than predicted, input applied.
    socket.deliver("state", state(6, { paddles: { left: 315 }, acks: { left: 1 } }));
    assert.equal(net.corrections.count, 1);
    close(net.corrections.last, 25);
    close(net.stats().lastCorrectionPx, 25);
    // Displayed paddle does not jump: it starts where it was and converges.
    close(net.ownPaddleY(), 340, 1e-6);
    clock.advance(0.5);
    close(net.ownPaddleY(), net.predictedY(), 0.1);
  });

  test("small disagreements are not counted", () => {
    const { net, socket, clock } = playing();
    net.setMove(1);
    clock.advance(0.1);
    socket.deliver("state", state(6, { paddles: { left: 339.6 }, acks: { left: 1 } }));
    assert.equal(net.corrections.count, 0);
  });

  test("without smoothing the correction snaps", () => {
    const ctx = setup({ options: { correctionSmoothing: 0 } });
    ctx.socket.deliver("state", state(1, { paddles: { left: 300 } }));
    ctx.net.setMove(-1);
    ctx.clock.advance(0.1);
    ctx.socket.deliver("state", state(6, { paddles: { left: 250 }, acks: { left: 1 } }));
    assert.equal(ctx.net.corrections.count, 1);
    close(ctx.net.corrections.last, 10);
    close(ctx.net.ownPaddleY(), 250);
  });

  test("the other paddle is not predicted", () => {
    const { net, socket, clock } = setup({ welcomeOverrides: { phase: "playing", state: null } });
    for (let k = 0; k <= 6; k++) {
      if (k) clock.advance(INTERVAL);
      socket.deliver("state", state(k * 2, { paddles: { left: 300, right: 300 + k * 10 } }));
    }
    const v = net.view();
    // Two intervals behind the newest (right = 360): 340.
    close(v.paddles.right, 340, 1e-6);
    close(v.paddles.left, 300);
  });
});

describe("interpolation", () => {
  // Snapshots of a ball moving right at 300 px/s, one every 1/30 s, each
  // arriving LATENCY after it was taken.
  function stream({ count, skip = [], vx = 300, vy = 0, y0 = 300 }) {
    const ctx = setup({ welcomeOverrides: { role: "spectator", side: null, phase: "playing", state: null } });
    const { socket, clock } = ctx;
    const base = clock();
    const snap = (k) =>
      state(k * TICKS_PER_SNAPSHOT, {
        ball: { x: 100 + vx * k * INTERVAL, y: y0 + vy * k * INTERVAL, vx, vy },
        paddles: { left: 300, right: 200 + k },
      });
    ctx.arrival = (k) => base + k * INTERVAL + LATENCY;
    ctx.snap = snap;
    ctx.deliverUpTo = (until) => {
      // Deliver every snapshot whose arrival time is <= until, in order.
      while (ctx.next < count && ctx.arrival(ctx.next) <= until + 1e-12) {
        if (!skip.includes(ctx.next)) {
          clock.set(ctx.arrival(ctx.next));
          socket.deliver("state", snap(ctx.next));
        }
        ctx.next += 1;
      }
      clock.set(until);
    };
    ctx.next = 0;
    return ctx;
  }

  test("between two snapshots the ball is interpolated", () => {
    const ctx = stream({ count: 10 });
    ctx.deliverUpTo(ctx.arrival(5));
    // Render time is two intervals behind snapshot 5: exactly snapshot 3.
    close(ctx.net.view().ball.x, 100 + 300 * 3 * INTERVAL, 1e-6);
    // Half an interval later: halfway between snapshots 3 and 4.
    ctx.deliverUpTo(ctx.arrival(5) + INTERVAL / 2);
    const v = ctx.net.view();
    close(v.ball.x, 100 + 300 * 3.5 * INTERVAL, 1e-6);
    close(v.paddles.right, 203.5, 1e-6);
    assert.equal(ctx.net.stats().extrapolating, false);
  });

  test("a lost snapshot makes no jump", () => {
    const ctx = stream({ count: 40, skip: [12] });
    ctx.deliverUpTo(ctx.arrival(3));
    let prev = ctx.net.view().ball.x;
    const step = 0.001;
    const end = ctx.arrival(39);
    for (let t = ctx.arrival(3) + step; t <= end; t += step) {
      ctx.deliverUpTo(t);
      const x = ctx.net.view().ball.x;
      const dx = x - prev;
      assert.ok(dx >= -1e-9, `ball went backwards at ${t}`);
      assert.ok(dx <= 300 * step + 1e-6, `ball jumped by ${dx} at ${t}`);
      prev = x;
    }
    assert.equal(ctx.net.stats().extrapolating, false);
  });

  test("late snapshots: the ball is extrapolated, but only for a bounded time", () => {
    const ctx = stream({ count: 40 });
    ctx.deliverUpTo(ctx.arrival(10));
    const last = ctx.snap(10).ball.x;
    // No snapshot for a while: after the two-interval buffer the ball goes on
    // along its velocity, for at most maxExtrapolation (0.2 s).
    ctx.clock.set(ctx.arrival(10) + 2 * INTERVAL + 0.1);
    close(ctx.net.view().ball.x, last + 300 * 0.1, 1e-6);
    assert.equal(ctx.net.stats().extrapolating, true);
    assert.ok(ctx.net.stats().bufferMs < 0);
    ctx.clock.set(ctx.arrival(10) + 5);
    close(ctx.net.view().ball.x, last + 300 * 0.2, 1e-6);
  });

  test("a late snapshot that arrives after all makes no jump", () => {
    const ctx = stream({ count: 40 });
    ctx.deliverUpTo(ctx.arrival(10));
    // Snapshots 11 and 12 arrive 0.1 s late, together; the view extrapolates
    // meanwhile, then goes back to interpolating without a visible step.
    const late = ctx.arrival(12) + 0.1;
    const samples = [];
    let extrapolated = false;
    for (let t = ctx.arrival(10); t < late; t += 0.002) {
      ctx.clock.set(t);
      samples.push(ctx.net.view().ball.x);
      extrapolated ||= ctx.net.stats().extrapolating;
    }
    assert.ok(extrapolated, "the view extrapolated while waiting");
    ctx.clock.set(late);
    ctx.net.socket.deliver("state", ctx.snap(11));
    ctx.net.socket.deliver("state", ctx.snap(12));
    ctx.next = 13;
    samples.push(ctx.net.view().ball.x);
    for (let t = late + 0.002; t < ctx.arrival(30); t += 0.002) {
      ctx.deliverUpTo(t);
      samples.push(ctx.net.view().ball.x);
    }
    for (let i = 1; i < samples.length; i++) {
      const dx = samples[i] - samples[i - 1];
      // Never backwards, never faster than the ball plus the 5 ms clock slew.
      assert.ok(dx >= -1e-9 && dx <= 300 * (0.002 + 0.005) + 1e-6, `jump of ${dx} at sample ${i}`);
    }
    assert.equal(ctx.net.stats().extrapolating, false);
  });

  test("after a stall the view follows the new snapshots at once", () => {
    const ctx = stream({ count: 60 });
    ctx.deliverUpTo(ctx.arrival(10));
    // Snapshots 11.. arrive 0.6 s late (the server stalled), then on time again.
    const stall = 0.6;
    const shifted = (k) => ctx.arrival(k) + stall;
    ctx.clock.set(shifted(11));
    ctx.net.socket.deliver("state", ctx.snap(11));
    for (let k = 12; k <= 14; k++) {
      ctx.clock.set(shifted(k));
      ctx.net.socket.deliver("state", ctx.snap(k));
    }
    const v = ctx.net.view();
    assert.equal(ctx.net.stats().extrapolating, false);
    close(v.ball.x, ctx.snap(12).ball.x, 1e-6);
  });

  test("extrapolation bounces off the walls", () => {
    const ctx = stream({ count: 5, vx: 0, vy: -300, y0: 100 });
    ctx.deliverUpTo(ctx.arrival(4));
    // Snapshot 4 has y = 100 - 40 = 60; 0.2 s later (the bound) it would be at
    // 0, but it bounced off the top wall (y = radius = 8) and is back at 16.
    ctx.clock.set(ctx.arrival(4) + 10);
    const y = ctx.net.view().ball.y;
    const r = FIELD.ball_radius;
    assert.ok(y >= r && y <= FIELD.height - r, `ball outside the field: ${y}`);
    close(y, reflect(60, -300, 0.2, r, FIELD.height - r), 1e-6);
    close(y, 2 * r - (60 - 60), 1e-6);
  });

  test("a serve is not swept across the field", () => {
    const ctx = setup({ welcomeOverrides: { role: "spectator", side: null, phase: "playing", state: null } });
    const { socket, clock } = ctx;
    socket.deliver("state", state(0, { ball: { x: 990, y: 300, vx: 300 } }));
    clock.advance(INTERVAL);
    socket.deliver("state", state(2, { ball: { x: 500, y: 300, vx: 0 } }));
    clock.advance(INTERVAL);
    socket.deliver("state", state(4, { ball: { x: 500, y: 300, vx: 0 } }));
    clock.advance(INTERVAL / 2); // render time halfway between the first two
    const x = ctx.net.view().ball.x;
    assert.ok(x === 990 || x === 500, `ball drawn in between: ${x}`);
  });

  test("rendered time never goes backwards when the clock estimate moves", () => {
    const ctx = stream({ count: 30 });
    ctx.deliverUpTo(ctx.arrival(5));
    const t1 = ctx.net.renderTimeAt(ctx.clock());
    // A snapshot arriving early pulls the offset down; later ones late push it up.
    ctx.clock.advance(INTERVAL);
    ctx.net.socket.deliver("state", ctx.snap(7));
    const t2 = ctx.net.renderTimeAt(ctx.clock());
    assert.ok(t2 >= t1);
  });
});

describe("round-trip time and statistics", () => {
  test("ping measures the round trip with the acknowledgement", async () => {
    const { net, socket, clock } = setup();
    const pending = net.ping({ setTimer: null });
    const [[ack]] = socket.sentOf("ping");
    assert.equal(typeof ack, "function");
    clock.advance(0.08);
    ack({ t: 12345.6 });
    const rtt = await pending;
    close(rtt, 0.08);
    close(net.stats().rttMs, 80);
    const second = net.ping({ setTimer: null });
    clock.advance(0.03);
    socket.sentOf("ping")[1][0]({ t: 1 });
    await second;
    close(net.stats().rttMs, 30);
    close(net.stats().rttAvgMs, 80 + (30 - 80) * 0.2);
  });

  test("a ping without an answer times out with null", async () => {
    const { net, socket } = setup();
    const timers = [];
    const p = net.ping({
      timeout: 5,
      setTimer: (fn, ms) => timers.push({ fn, ms }) - 1,
      clearTimer: () => {},
    });
    assert.equal(timers[0].ms, 5000);
    timers[0].fn();
    assert.equal(await p, null);
    // A late answer changes nothing.
    socket.sentOf("ping")[0][0]({ t: 0 });
    assert.equal(net.rtt, null);
  });

  test("the measured RTT moves the prediction anchor", () => {
    const { net, socket, clock } = setup();
    socket.deliver("state", state(1));
    net.recordRtt(0.2);
    net.setMove(1);
    clock.advance(0.3);
    socket.deliver("state", state(18, { paddles: { left: 300 }, acks: { left: 1 } }));
    // The server's 300 stands for client time now - 0.2; down since then.
    close(net.predictedY(), 380);
  });

  test("stats report the snapshot rate, the interpolation delay and corrections", () => {
    const { net, socket, clock } = setup();
    for (let k = 1; k <= 45; k++) {
      socket.deliver("state", state(k * 2));
      clock.advance(INTERVAL);
    }
    const s = net.stats();
    assert.ok(s.snapshotRate >= 29 && s.snapshotRate <= 31, `rate ${s.snapshotRate}`);
    close(s.interpDelayMs, 2000 / 30, 1e-6);
    assert.equal(s.corrections, 0);
    assert.equal(s.rttMs, null);
    clock.advance(2);
    assert.equal(net.stats().snapshotRate, 0);
  });
});
