#!/usr/bin/env node
// An Arena client in JavaScript (Node 20+): join a match, follow the ball, print the result.
//
//   node player.mjs --host 127.0.0.1 --port 25000 --token <game token>
//   node player.mjs --match <id> --username bob --password bob [--api http://127.0.0.1:8000]
//   node player.mjs --host 127.0.0.1 --port 25000              # no token: watch as a spectator
//
// Every option can come from the environment instead: ARENA_HOST, ARENA_PORT,
// ARENA_TOKEN, ARENA_API, ARENA_USERNAME, ARENA_PASSWORD, ARENA_MATCH, ARENA_TIMEOUT.
//
// Needs nothing but socket.io-client 4 (`npm install socket.io-client`; in this
// repository `npm install` at the root). See docs/protocol.md, "Client walk-through".
// Exit status: 0 after `game_over`, 1 on an error, a refused or lost connection,
// 2 on bad usage, 3 on a timeout.
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const REACH = 200; // px: follow the ball only this close to our goal line (so the bot can lose)
const DEAD_ZONE = 10; // px: close enough, stop

// One call to the HTTP API; throws with the API's error code.
async function api(base, method, path, body, token) {
  const response = await fetch(base.replace(/\/+$/, "") + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Token ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const answer = await response.json(); // every error is {"error": code, "detail": text}
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${answer.error}: ${answer.detail}`);
  return answer;
}

// As a player: API token, then the match's address, then a game token for it.
async function joinThroughApi(base, username, password, matchId) {
  const { token: apiToken } = await api(base, "POST", "/api/auth/token", { username, password });
  const match = await api(base, "GET", `/api/match/${matchId}`, undefined, apiToken);
  const { token } = await api(base, "GET", `/api/match/${matchId}/token`, undefined, apiToken);
  return { host: match.host, port: match.port, token };
}

// -1 (up), 0 or 1 (down): follow a ball coming close, else go back to the middle.
function chooseMove(state, side, field) {
  const { ball } = state;
  const paddle = state.paddles[side];
  const coming = side === "left" ? ball.vx < 0 : ball.vx > 0;
  const distance = side === "left" ? ball.x : field.width - ball.x;
  const target = coming && distance <= REACH ? ball.y : field.height / 2;
  if (Math.abs(target - paddle) <= DEAD_ZONE) return 0;
  return target > paddle ? 1 : -1;
}

// Resolves with the exit status.
function play({ host, port, token, timeout }) {
  return new Promise((resolve) => {
    const socket = io(`http://${host}:${port}`, {
      auth: token ? { token } : {}, // no token: spectator
      transports: ["websocket"],
      reconnection: false,
      timeout: 10_000,
    });
    const me = { role: null, side: null, field: null };
    const game = { tick: -1, running: false, move: null, seq: 0 };
    let finished = false;
    const finish = (status, problem) => {
      if (finished) return;
      finished = true;
      if (problem) console.error(problem);
      clearTimeout(gameTimer);
      clearTimeout(welcomeTimer);
      socket.disconnect();
      resolve(status);
    };
    const gameTimer = setTimeout(() => finish(3, `timed out: no game_over within ${timeout} s`), timeout * 1000);
    const welcomeTimer = setTimeout(() => finish(3, "timed out: no welcome within 20 s"), 20_000);

    socket.on("connect_error", (err) => {
      // refused by the server: err.message is the detail, err.data.code the reason
      finish(1, `could not connect: ${err.data?.code ?? "unreachable"}: ${err.message}`);
    });

    socket.on("welcome", async (msg) => {
      clearTimeout(welcomeTimer);
      Object.assign(me, { role: msg.role, side: msg.side, field: msg.field });
      Object.assign(game, { tick: msg.state.tick, running: false, move: null });
      console.log(`role: ${msg.role}${msg.side ? ` ${msg.side}` : ""}`);
      console.log(`match ${msg.match.id}, phase ${msg.phase}, missing ${JSON.stringify(msg.missing)}`);
      if (token && msg.role !== "player") { // a bad token is not refused: it makes a spectator
        finish(1, "error: this token does not make a player of this match");
        return;
      }
      if (msg.role === "player") game.seq = Math.max(game.seq, msg.state.acks[msg.side]); // above what was applied
      const started = performance.now();
      try {
        await socket.timeout(5_000).emitWithAck("ping", {}); // answered with {"t": server clock}
        console.log(`rtt: ${(performance.now() - started).toFixed(1)} ms`);
      } catch {
        finish(3, "timed out: no answer to ping within 5 s");
      }
    });

    socket.on("presence", (msg) => {
      console.log(`presence: connected ${JSON.stringify(msg.connected)}, missing ${JSON.stringify(msg.missing)}`);
    });

    socket.on("countdown", (msg) => {
      game.running = false; // not running until `tick` advances again
      console.log(`countdown: ${msg.seconds} s`);
    });

    socket.on("paused", (msg) => {
      game.running = false;
      console.log(`paused: waiting ${msg.grace} s for ${JSON.stringify(msg.missing)}`);
    });

    socket.on("state", (msg) => {
      if (msg.tick > game.tick && !game.running) {
        game.running = true; // play (re)started: what we sent before was dropped,
        game.move = null; // so the next decision is sent whatever it is
      }
      game.tick = Math.max(game.tick, msg.tick);
      if (me.role !== "player" || !game.running) return;
      const move = chooseMove(msg, me.side, me.field);
      if (move !== game.move) { // send on change only, with an increasing seq
        game.move = move;
        game.seq += 1;
        socket.emit("input", { seq: game.seq, move });
      }
    });

    socket.on("score", (msg) => {
      console.log(`score: ${msg.side} scored, ${msg.score.left}-${msg.score.right}`);
    });

    socket.on("game_over", (msg) => {
      console.log(`game_over ${JSON.stringify(msg)}`);
      finish(0);
    });

    socket.on("error", (msg) => { // our own mistake, or "replaced": another connection took over
      finish(1, `error: ${msg.code}: ${msg.detail}`);
    });

    socket.on("disconnect", (reason) => {
      finish(1, `connection lost before game_over (${reason})`);
    });
  });
}

async function main() {
  const env = process.env;
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: "string", default: env.ARENA_HOST },
        port: { type: "string", default: env.ARENA_PORT },
        token: { type: "string", default: env.ARENA_TOKEN },
        api: { type: "string", default: env.ARENA_API ?? "http://127.0.0.1:8000" },
        username: { type: "string", default: env.ARENA_USERNAME },
        password: { type: "string", default: env.ARENA_PASSWORD },
        match: { type: "string", default: env.ARENA_MATCH },
        timeout: { type: "string", default: env.ARENA_TIMEOUT ?? "1200" },
      },
    }));
  } catch (err) {
    console.error(err.message);
    return 2;
  }
  let { host, port, token } = values;
  if (values.match) {
    if (!(values.username && values.password)) {
      console.error("--match needs --username and --password");
      return 2;
    }
    try {
      ({ host, port, token } = await joinThroughApi(values.api, values.username, values.password, values.match));
    } catch (err) {
      console.error(err.message);
      return 1;
    }
  }
  const timeout = Number(values.timeout);
  if (!host || !Number(port) || !(timeout > 0)) {
    console.error("give --host and --port (and --token to play), or --match, --username and --password");
    return 2;
  }
  return play({ host, port: Number(port), token, timeout });
}

const status = await main();
process.exitCode = status;
setTimeout(() => process.exit(status), 1_000).unref(); // in case a socket lingers
