import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { Timeline, Playback, ReplayError, SPEEDS, formatClock } from "../../arena/web/static/web/replay.js";
import { replayFrames } from "./helpers.mjs";

const close = (actual, expected, eps = 1e-6, msg) =>
  assert.ok(Math.abs(actual - expected) <= eps, msg || `${actual} is not ${expected} (±${eps})`);

describe("Timeline", () => {
  test("reads the frames endpoint's body: players, field, rates, span", () => {
    const tl = new Timeline(replayFrames());
    assert.deepEqual(tl.players, { left: "alice", right: "bob" });
    assert.equal(tl.tickRate, 60);
    assert.equal(tl.frameEvery, 2);
    assert.equal(tl.field.paddle_height, 100);
    assert.equal(tl.startTick, 0);
    assert.equal(tl.endTick, 600);
    close(tl.durationSeconds, 10);
  });

  test("frames out of order are sorted; invalid ones are skipped", () => {
    const data = replayFrames();
    data.frames.reverse();
    data.frames.push({ tick: 9999 }, null, { tick: 5, ball: { x: "a", y: 1 }, paddles: {} });
    const tl = new Timeline(data);
    assert.equal(tl.frames[0].tick, 0);
    assert.equal(tl.endTick, 600);
  });

  test("a replay the server could not verify says so", () => {
    assert.equal(new Timeline(replayFrames()).verified, true);
    assert.equal(new Timeline({ ...replayFrames(), verified: true }).verified, true);
    assert.equal(new Timeline({ ...replayFrames(), verified: false }).verified, false);
  });

  test("no frames is a ReplayError with a sentence for the page", () => {
    assert.throws(() => new Timeline({ ...replayFrames(), frames: [] }), ReplayError);
    assert.throws(() => new Timeline(null), ReplayError);
  });

  test("indexAt finds the frame at or before a tick", () => {
    const tl = new Timeline(replayFrames());
    assert.equal(tl.indexAt(-10), 0);
    assert.equal(tl.indexAt(0), 0);
    assert.equal(tl.indexAt(1.9), 0);
    assert.equal(tl.indexAt(2), 1);
    assert.equal(tl.indexAt(301), 150);
    assert.equal(tl.indexAt(600), 300);
    assert.equal(tl.indexAt(10_000), 300);
  });

  test("sample interpolates the ball and the paddles between two frames", () => {
    const tl = new Timeline(replayFrames());
    // In the fixture the ball flies right at 300 px/s from x=500 (tick 0).
    const s = tl.sample(31); // between the frames of ticks 30 and 32
    close(s.ball.x, 500 + 300 * (31 / 60));
    close(s.paddles.left, 300 - 31);
    assert.deepEqual(s.score, { left: 0, right: 0 });
    assert.equal(s.index, 15);
  });

  test("a serve is not swept across the field", () => {
    const tl = new Timeline(replayFrames());
    // The ball leaves at tick 119 at x≈1095 (the fixture's point at tick 120)
    // and is back at the centre at tick 120.
    const before = tl.sample(119);
    const after = tl.sample(120);
    assert.ok(before.ball.x > 900, `${before.ball.x}`);
    assert.equal(after.ball.x, 500);
    assert.deepEqual(after.score, { left: 1, right: 0 });
    assert.deepEqual(before.score, { left: 0, right: 0 });
  });

  test("sample clamps to the recording", () => {
    const tl = new Timeline(replayFrames());
    assert.equal(tl.sample(-50).tick, 0);
    assert.equal(tl.sample(5000).tick, 600);
    assert.deepEqual(tl.sample(5000).score, { left: 2, right: 1 });
  });

  test("fractions of the scrub bar and back", () => {
    const tl = new Timeline(replayFrames());
    assert.equal(tl.fraction(0), 0);
    assert.equal(tl.fraction(150), 0.25);
    assert.equal(tl.fraction(900), 1);
    assert.equal(tl.tickAtFraction(0.5), 300);
    assert.equal(tl.tickAtFraction(2), 600);
  });

  test("one marker per point, where it was scored, named after the scorer", () => {
    const tl = new Timeline(replayFrames());
    const markers = tl.markers();
    assert.deepEqual(
      markers.map((m) => [m.tick, m.fraction, m.side, m.label]),
      [
        [120, 0.2, "left", "1–0"],
        [360, 0.6, "right", "1–1"],
        [600, 1, "left", "2–1"],
      ],
    );
    assert.equal(markers[0].title, "alice scores · 1–0 · 0:02");
    assert.equal(markers[1].title, "bob scores · 1–1 · 0:06");
  });

  test("a point is watched from a moment before, within its own rally", () => {
    const tl = new Timeline(replayFrames());
    assert.equal(tl.leadIn(120, 3), 0); // 3 s before is before the start
    assert.equal(tl.leadIn(360, 3), 180);
    assert.equal(tl.leadIn(360, 5), 120); // not before the previous point
    assert.equal(tl.leadIn(600, 1), 540);
  });

  test("a pause is told where it happened", () => {
    const tl = new Timeline(replayFrames());
    assert.equal(tl.noticeAt(200), null);
    assert.equal(tl.noticeAt(240), "Paused here: waiting for bob");
    assert.equal(tl.noticeAt(240 + 60), "Paused here: waiting for bob");
    assert.equal(tl.noticeAt(240 + 100), null);
    const forfeit = new Timeline({ ...replayFrames(), pauses: [{ tick: 500, missing: ["bob"], resumed_tick: null }] });
    assert.equal(forfeit.noticeAt(550), "bob left here");
  });

  test("the end names the winner even when the recording gives a side", () => {
    const tl = new Timeline(replayFrames());
    assert.deepEqual(tl.gameOver(), { winner: "alice", score: { left: 2, right: 1 }, reason: "points" });
    const named = new Timeline({ ...replayFrames(), end: { winner: "bob", status: "finished", reason: "forfeit" } });
    assert.equal(named.gameOver().winner, "bob");
    assert.deepEqual(named.gameOver().score, { left: 2, right: 1 }); // the last frame's
  });

  test("formatClock", () => {
    assert.equal(formatClock(0), "0:00");
    assert.equal(formatClock(9.99), "0:09");
    assert.equal(formatClock(65), "1:05");
    assert.equal(formatClock(-3), "0:00");
  });
});

describe("Playback", () => {
  const setup = (options) => new Playback(new Timeline(replayFrames()), options);

  test("starts paused at the first frame; time moves the position only while playing", () => {
    const pb = setup();
    assert.equal(pb.tickAt(10), 0);
    pb.play(10);
    close(pb.tickAt(11), 60);
    close(pb.tickAt(12.5), 150);
    pb.pause(12.5);
    assert.equal(pb.playing, false);
    close(pb.tickAt(20), 150);
  });

  test("speed scales the rate, and changing it keeps the position", () => {
    for (const speed of SPEEDS) {
      const pb = setup({ speed });
      pb.play(0);
      close(pb.tickAt(1), 60 * speed);
    }
    const pb = setup();
    pb.play(0);
    pb.setSpeed(4, 1); // at tick 60
    close(pb.tickAt(1), 60);
    close(pb.tickAt(1.5), 60 + 120);
    pb.setSpeed(0.5, 1.5);
    close(pb.tickAt(2.5), 180 + 30);
    assert.throws(() => pb.setSpeed(3, 3), RangeError);
    assert.equal(pb.shiftSpeed(1, 3), 1);
    assert.equal(pb.shiftSpeed(1, 3), 2);
    assert.equal(pb.shiftSpeed(1, 3), 4);
    assert.equal(pb.shiftSpeed(1, 3), 4);
    assert.equal(pb.shiftSpeed(-1, 3), 2);
  });

  test("an unknown starting speed is 1×", () => {
    assert.equal(setup({ speed: 3 }).speed, 1);
  });

  test("stops at the end, shows the game over, and play starts over", () => {
    const pb = setup();
    pb.play(0);
    const v = pb.view(20); // past the 10 s recording
    assert.equal(v.phase, "over");
    assert.equal(pb.playing, false);
    assert.equal(pb.ended, true);
    assert.equal(v.ball, null);
    assert.deepEqual(v.gameOver, { winner: "alice", score: { left: 2, right: 1 }, reason: "points" });
    pb.play(21);
    assert.equal(pb.tickAt(21), 0);
    assert.equal(pb.view(21).phase, "playing");
  });

  test("seek, while playing or paused, continues from the new position", () => {
    const pb = setup();
    pb.seek(300, 0);
    assert.equal(pb.tickAt(5), 300);
    pb.play(5);
    pb.seek(120, 6);
    close(pb.tickAt(7), 180);
    assert.equal(pb.playing, true);
    pb.seek(-100, 7);
    assert.equal(pb.tickAt(7), 0);
    pb.seekFraction(0.6, 8);
    assert.equal(pb.tickAt(8), 360);
    assert.deepEqual(pb.view(8).score, { left: 1, right: 1 });
  });

  test("seekBy moves by seconds of match time, whatever the speed", () => {
    const pb = setup({ speed: 4 });
    pb.seek(300, 0);
    pb.seekBy(5, 0);
    assert.equal(pb.tickAt(0), 600);
    pb.seekBy(-2, 0);
    assert.equal(pb.tickAt(0), 480);
  });

  test("step pauses and moves one recorded frame at a time", () => {
    const pb = setup();
    pb.play(0);
    pb.step(1, 0.5); // from tick 30
    assert.equal(pb.playing, false);
    assert.equal(pb.tickAt(9), 32);
    pb.step(-1, 9);
    assert.equal(pb.tickAt(9), 30);
    pb.seek(31, 9); // between two frames: back lands on the one just before
    pb.step(-1, 9);
    assert.equal(pb.tickAt(9), 30);
    pb.seek(31, 9);
    pb.step(1, 9);
    assert.equal(pb.tickAt(9), 32);
    pb.step(-1000, 9);
    assert.equal(pb.tickAt(9), 0);
    pb.step(1000, 9);
    assert.equal(pb.tickAt(9), 600);
  });

  test("toggle plays and pauses", () => {
    const pb = setup();
    assert.equal(pb.toggle(0), true);
    assert.equal(pb.toggle(1), false);
    close(pb.tickAt(3), 60);
  });

  test("view is what the live Renderer draws, with a replay badge and the controls' state", () => {
    const pb = setup({ speed: 2 });
    pb.seek(31, 0);
    const v = pb.view(0);
    assert.equal(v.phase, "playing");
    assert.equal(v.role, "spectator");
    assert.equal(v.badge, "REPLAY 2×");
    assert.deepEqual(v.players, { left: "alice", right: "bob" });
    close(v.ball.x, 500 + 300 * (31 / 60));
    assert.equal(v.live, false);
    assert.equal(v.notice, null);
    assert.deepEqual(
      { tick: v.replay.tick, frame: v.replay.frame, speed: v.replay.speed, playing: v.replay.playing },
      { tick: 31, frame: 15, speed: 2, playing: false },
    );
    close(v.replay.seconds, 31 / 60);
    close(v.replay.duration, 10);
    pb.seek(250, 0);
    assert.equal(pb.view(0).notice, "Paused here: waiting for bob");
  });
});
