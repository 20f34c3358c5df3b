import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  NotificationChannel,
  backoffDelay,
  notificationsUrl,
  DEFAULT_BACKOFF,
  CLOSE_UNAUTHENTICATED,
} from "../../arena/web/static/web/notifications.js";

// A WebSocket the test drives: it records what the page sends and lets the test
// open it, deliver messages and close it from the server's side.
class FakeWebSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closedWith = code;
  }
  // server side
  open() {
    this.onopen?.({});
  }
  deliver(message) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
  get actions() {
    return this.sent.map((m) => m.action);
  }
}

// Timers on a clock the test moves by hand.
function fakeTimers() {
  let now = 1000;
  let nextId = 1;
  const pending = new Map();
  return {
    setTimeout(fn, ms) {
      const id = nextId++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    now: () => now,
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        pending.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    get count() {
      return pending.size;
    },
  };
}

class FakeWindow {
  constructor() {
    this.listeners = new Map();
  }
  addEventListener(type, fn) {
    this.listeners.set(type, fn);
  }
  removeEventListener(type, fn) {
    if (this.listeners.get(type) === fn) this.listeners.delete(type);
  }
  fire(type) {
    this.listeners.get(type)?.({});
  }
}

function setup(options = {}) {
  FakeWebSocket.instances = [];
  const timers = fakeTimers();
  const events = new FakeWindow();
  const channel = new NotificationChannel({
    url: "ws://arena.test/ws/notifications/",
    WebSocket: FakeWebSocket,
    timers,
    events,
    random: () => 0, // no jitter unless a test asks for it
    ...options,
  });
  const states = [];
  channel.on("state", (s) => states.push(s));
  const sockets = FakeWebSocket.instances;
  const last = () => sockets[sockets.length - 1];
  return { channel, timers, events, states, sockets, last };
}

const hello = { type: "hello", user: "alice" };
const ready = {
  type: "match.ready",
  match: { id: "m1", status: "waiting", players: [], points_to_win: 3 },
  host: "127.0.0.1",
  port: 25000,
  token: "t",
};

describe("backoffDelay", () => {
  test("doubles from the initial delay up to the cap", () => {
    const noJitter = () => 0;
    const delays = [0, 1, 2, 3, 4, 5, 6, 7, 20, 1000].map((n) => backoffDelay(n, {}, noJitter));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });

  test("jitter only shortens, within [base * (1 - jitter), base]", () => {
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(3, { jitter: 0.5 }, () => r);
      assert.ok(d >= 2000 && d <= 4000, `${d}`);
    }
    assert.equal(backoffDelay(3, { jitter: 0.5 }, () => 0.5), 3000);
    assert.equal(backoffDelay(50, { jitter: 0.5 }, () => 0.999), Math.round(30000 * (1 - 0.4995)));
    // the cap holds whatever the random source says
    for (let i = 0; i < 200; i++) assert.ok(backoffDelay(i, {}, Math.random) <= DEFAULT_BACKOFF.max);
  });

  test("options and odd attempts", () => {
    assert.equal(backoffDelay(2, { initial: 100, factor: 3, max: 10000, jitter: 0 }), 900);
    assert.equal(backoffDelay(-5, { jitter: 0 }), 500);
    assert.equal(backoffDelay(2.7, { jitter: 0 }), 2000);
    assert.equal(backoffDelay(1e9, { jitter: 0 }), 30000);
  });
});

describe("notificationsUrl", () => {
  test("follows the page's scheme and host", () => {
    assert.equal(notificationsUrl({ protocol: "http:", host: "127.0.0.1:8000" }), "ws://127.0.0.1:8000/ws/notifications/");
    assert.equal(notificationsUrl({ protocol: "https:", host: "arena.example" }), "wss://arena.example/ws/notifications/");
  });

  test("a script's API token goes into the query", () => {
    const { channel } = setup({ token: "a b" });
    assert.equal(channel.url, "ws://arena.test/ws/notifications/?token=a%20b");
  });
});

describe("connection and events", () => {
  test("connects, dispatches events by type and to '*'", () => {
    const { channel, states, last } = setup();
    const got = [];
    const all = [];
    channel.on("match.ready", (e) => got.push(e));
    channel.on("*", (e) => all.push(e.type));
    channel.start();
    assert.equal(channel.state, "connecting");
    last().open();
    assert.equal(channel.state, "open");
    last().deliver(hello);
    last().deliver(ready);
    last().deliver("not json");
    last().deliver({ no: "type" });
    assert.equal(channel.user, "alice");
    assert.deepEqual(got, [ready]);
    assert.deepEqual(all, ["hello", "match.ready"]);
    assert.deepEqual(states, ["connecting", "open"]);
  });

  test("a callback that throws does not stop the others", () => {
    const { channel, last } = setup();
    const errors = [];
    const original = console.error;
    console.error = (e) => errors.push(e);
    try {
      let reached = false;
      channel.on("match.ready", () => {
        throw new Error("boom");
      });
      channel.on("match.ready", () => {
        reached = true;
      });
      channel.start();
      last().open();
      last().deliver(ready);
      assert.ok(reached);
      assert.equal(errors.length, 1);
    } finally {
      console.error = original;
    }
  });

  test("unsubscribe", () => {
    const { channel, last } = setup();
    const got = [];
    const off = channel.on("match.ready", (e) => got.push(e));
    channel.start();
    last().open();
    off();
    last().deliver(ready);
    assert.deepEqual(got, []);
  });
});

describe("reconnection", () => {
  test("retries with growing, capped delays and reports 'reconnecting'", () => {
    const { channel, timers, states, sockets, last } = setup();
    channel.start();
    last().open();
    last().deliver(hello);
    last().drop(1006);
    assert.equal(channel.state, "reconnecting");
    assert.equal(channel.reconnecting, true);
    const waits = [];
    for (let i = 0; i < 9; i++) {
      const before = sockets.length;
      const wait = channel.retryIn();
      waits.push(wait);
      timers.advance(wait - 1);
      assert.equal(sockets.length, before, "no attempt before the delay");
      timers.advance(1);
      assert.equal(sockets.length, before + 1, "one attempt after it");
      assert.equal(channel.state, "reconnecting");
      last().drop(1006); // the server is still down
    }
    assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.deepEqual(states.slice(0, 3), ["connecting", "open", "reconnecting"]);
  });

  test("a good connection ('hello') starts the backoff over", () => {
    const { channel, timers, last } = setup();
    channel.start();
    last().drop(); // first attempt fails: 500
    timers.advance(channel.retryIn());
    last().drop(); // 1000
    timers.advance(channel.retryIn());
    last().drop(); // 2000
    assert.equal(channel.retryIn(), 2000);
    timers.advance(2000);
    last().open();
    assert.equal(channel.state, "open");
    last().drop(); // opened but never said hello (e.g. refused at once): keeps growing
    assert.equal(channel.retryIn(), 4000);
    timers.advance(4000);
    last().open();
    last().deliver(hello);
    last().drop();
    assert.equal(channel.retryIn(), 500);
  });

  test("jitter comes from the injected random source", () => {
    const { channel, last } = setup({ random: () => 0.5 });
    channel.start();
    last().drop();
    assert.equal(channel.retryIn(), 375); // 500 * (1 - 0.5 * 0.5)
  });

  test("4401 means signed out: no retry", () => {
    const { channel, timers, sockets, last } = setup();
    channel.start();
    last().open();
    last().drop(CLOSE_UNAUTHENTICATED);
    assert.equal(channel.state, "unauthorized");
    assert.equal(channel.reconnecting, false);
    timers.advance(120000);
    assert.equal(sockets.length, 1);
    assert.equal(timers.count, 0);
  });

  test("watched matches are watched again after a reconnection", () => {
    const { channel, timers, last } = setup();
    channel.start();
    assert.equal(channel.send({ action: "ping" }), false); // not open yet
    last().open();
    channel.watch("m1");
    channel.watch("m2");
    channel.unwatch("m2");
    assert.deepEqual(last().sent, [
      { action: "watch", match: "m1" },
      { action: "watch", match: "m2" },
      { action: "unwatch", match: "m2" },
    ]);
    last().drop();
    timers.advance(channel.retryIn());
    last().open();
    assert.deepEqual(last().sent, [{ action: "watch", match: "m1" }]);
  });

  test("stop() closes and cancels the pending retry", () => {
    const { channel, timers, sockets, last } = setup();
    channel.start();
    last().open();
    const first = last();
    channel.stop();
    assert.equal(first.closedWith, 1000);
    assert.equal(channel.state, "stopped");
    first.drop(1000); // late close event: ignored
    assert.equal(channel.state, "stopped");

    channel.start();
    last().drop();
    assert.equal(channel.state, "reconnecting");
    channel.stop();
    timers.advance(60000);
    assert.equal(sockets.length, 2);
    assert.equal(channel.retryIn(), null);
  });

  test("the 'online' event retries at once", () => {
    const { channel, events, sockets, last } = setup();
    channel.start();
    last().drop();
    assert.ok(channel.retryIn() > 0);
    events.fire("online");
    assert.equal(sockets.length, 2);
    assert.equal(channel.state, "reconnecting");
    last().open();
    assert.equal(channel.state, "open");
    events.fire("online"); // while open: nothing
    assert.equal(sockets.length, 2);
  });

  test("a constructor that throws counts as a failed attempt", () => {
    let calls = 0;
    class Refusing {
      constructor() {
        calls += 1;
        throw new Error("blocked");
      }
    }
    const { channel, timers } = setup({ WebSocket: Refusing });
    channel.start();
    assert.equal(channel.state, "reconnecting");
    timers.advance(channel.retryIn());
    assert.equal(calls, 2);
  });
});

describe("heartbeat", () => {
  test("pings while open and replaces a connection that stopped answering", () => {
    const { channel, timers, sockets, last } = setup({ heartbeat: { interval: 1000, timeout: 500 } });
    channel.start();
    last().open();
    last().deliver(hello);
    const first = last();
    timers.advance(1000);
    assert.deepEqual(first.actions, ["ping"]);
    first.deliver({ type: "pong" });
    timers.advance(999);
    assert.deepEqual(first.actions, ["ping"], "any message resets the interval");
    timers.advance(1);
    assert.deepEqual(first.actions, ["ping", "ping"]);
    timers.advance(500); // no answer
    assert.equal(first.closedWith, 4000);
    assert.equal(channel.state, "reconnecting");
    assert.equal(first.onmessage, null, "the dead socket is detached");
    timers.advance(channel.retryIn());
    assert.equal(sockets.length, 2);
  });
});
