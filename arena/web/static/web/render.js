// Canvas drawing of a match.  The renderer pulls a view (see Netcode.view) once
// per animation frame, independently of how often snapshots arrive, and draws it
// in field coordinates (1000 x 600) scaled to the window, sharp on HiDPI screens.

export const COLORS = {
  page: "#070a10",
  field: "#0e1420",
  fieldEdge: "#1e293b",
  line: "rgba(148, 163, 184, 0.18)",
  score: "rgba(226, 232, 240, 0.9)",
  name: "rgba(148, 163, 184, 0.95)",
  me: "#38bdf8",
  paddle: "#e2e8f0",
  ball: "#fbbf24",
  text: "#f1f5f9",
  muted: "#94a3b8",
  badge: "#a78bfa",
  dim: "rgba(7, 10, 16, 0.62)",
};

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

// Largest size with the field's aspect ratio that fits in `width` x `height`.
export function fitAspect(width, height, fieldWidth = 1000, fieldHeight = 600) {
  const aspect = fieldWidth / fieldHeight;
  let w = Math.max(1, width);
  let h = w / aspect;
  if (h > height) {
    h = Math.max(1, height);
    w = h * aspect;
  }
  return { width: Math.floor(w), height: Math.floor(h) };
}

// The main line of text shown over the field for a view, or null.
export function bannerFor(view) {
  if (view.notice) return { big: null, text: view.notice };
  switch (view.phase) {
    case "loading":
    case "connecting":
      return { big: null, text: "Connecting…" };
    case "waiting":
      if (view.missing && view.missing.length) {
        return { big: null, text: `Waiting for ${joinNames(view.missing)}` };
      }
      return { big: null, text: "Get ready" };
    case "countdown": {
      const left = view.countdown;
      if (left === null || left === undefined) return { big: null, text: "Get ready" };
      return { big: left > 0.05 ? String(Math.ceil(left - 0.05)) : "Go!", text: "Get ready" };
    }
    case "paused": {
      const who = view.missing && view.missing.length ? joinNames(view.missing) : "a player";
      const left = view.pause;
      const suffix = left === null || left === undefined ? "" : ` · ${Math.ceil(left)} s`;
      return { big: null, text: `Paused: waiting for ${who}${suffix}` };
    }
    case "playing":
      if (view.missing && view.missing.length) {
        return { big: null, text: `Waiting for ${joinNames(view.missing)}` };
      }
      return null;
    default:
      return null;
  }
}

function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** The game-over panel's elements, by the ids both the live and the replay page use. */
export function gameOverPanel(doc = document) {
  return {
    root: doc.getElementById("game-over"),
    title: doc.getElementById("game-over-title"),
    score: doc.getElementById("game-over-score"),
    reason: doc.getElementById("game-over-reason"),
  };
}

export class Renderer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} options
   * @param {(now: number) => object} options.getView
   * @param {HTMLElement} [options.container] element whose size the field fills
   * @param {object} [options.gameOver] {root, title, score, reason} elements
   */
  constructor(canvas, { getView, container = canvas.parentElement, gameOver = null } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.getView = getView;
    this.container = container;
    this.gameOverEls = gameOver;
    this.frames = 0;
    this.lastDrawn = null;
    this._raf = null;
    this._fallback = null;
    this._size = { css: { width: 0, height: 0 }, dpr: 0 };
    this._gameOverShown = false;
  }

  start() {
    const frame = () => {
      this._raf = requestAnimationFrame(frame);
      this.drawFrame();
    };
    this._raf = requestAnimationFrame(frame);
    // Animation frames stop in hidden tabs: keep the state current anyway, at a
    // low rate, so that the page is right the moment it is shown again.
    this._fallback = setInterval(() => {
      if (document.hidden) this.drawFrame();
    }, 250);
  }

  stop() {
    if (this._raf !== null) cancelAnimationFrame(this._raf);
    if (this._fallback !== null) clearInterval(this._fallback);
    this._raf = this._fallback = null;
  }

  _resize(field) {
    const dpr = Math.max(1, window.devicePixelRatio || 1);
    const box = this.container.getBoundingClientRect();
    const css = fitAspect(box.width, box.height, field.width, field.height);
    const s = this._size;
    if (css.width !== s.css.width || css.height !== s.css.height || dpr !== s.dpr) {
      this.canvas.style.width = `${css.width}px`;
      this.canvas.style.height = `${css.height}px`;
      this.canvas.width = Math.round(css.width * dpr);
      this.canvas.height = Math.round(css.height * dpr);
      this._size = { css, dpr };
    }
    return this._size;
  }

  drawFrame(now = performance.now() / 1000) {
    const view = this.getView(now);
    if (!view) return;
    const field = view.field;
    const { css, dpr } = this._resize(field);
    const ctx = this.ctx;
    const scale = (css.width * dpr) / field.width;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(scale, 0, 0, scale, 0, 0);

    this._drawField(field);
    this._drawScores(view);
    this._drawPaddles(view);
    this._drawBall(view);
    const badge = view.badge ?? (view.role === "spectator" ? "SPECTATING" : null);
    if (badge) this._drawBadge(badge, field);
    const banner = view.phase === "over" ? null : bannerFor(view);
    if (banner) this._drawBanner(banner, field);
    if (view.phase === "over") {
      ctx.fillStyle = COLORS.dim;
      ctx.fillRect(0, 0, field.width, field.height);
    }
    this._syncGameOver(view);

    this.frames += 1;
    this.lastDrawn = {
      frame: this.frames,
      live: Boolean(view.live),
      phase: view.phase,
      role: view.role,
      side: view.side,
      paddles: { ...view.paddles },
      ball: view.ball ? { ...view.ball } : null,
      score: { ...view.score },
      players: { ...view.players },
      banner: banner ? [banner.big, banner.text].filter(Boolean).join(" ") : null,
      badge: badge || null,
      gameOver: view.gameOver ? { ...view.gameOver } : null,
      size: { width: css.width, height: css.height, dpr },
    };
  }

  _drawField(field) {
    const ctx = this.ctx;
    ctx.fillStyle = COLORS.field;
    ctx.fillRect(0, 0, field.width, field.height);
    ctx.strokeStyle = COLORS.fieldEdge;
    ctx.lineWidth = 4;
    ctx.strokeRect(2, 2, field.width - 4, field.height - 4);
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 4;
    ctx.setLineDash([18, 18]);
    ctx.beginPath();
    ctx.moveTo(field.width / 2, 12);
    ctx.lineTo(field.width / 2, field.height - 12);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  _drawScores(view) {
    const ctx = this.ctx;
    const { width } = view.field;
    ctx.textBaseline = "top";
    for (const side of ["left", "right"]) {
      const x = side === "left" ? width / 2 - 60 : width / 2 + 60;
      ctx.textAlign = side === "left" ? "right" : "left";
      ctx.fillStyle = COLORS.score;
      ctx.font = `700 76px ${FONT}`;
      ctx.fillText(String(view.score?.[side] ?? 0), x, 26);
      const name = view.players?.[side];
      if (name) {
        const mine = view.side === side;
        ctx.font = `${mine ? 700 : 500} 22px ${FONT}`;
        ctx.fillStyle = mine ? COLORS.me : COLORS.name;
        ctx.fillText(mine ? `${name} (you)` : name, x, 108);
      }
    }
  }

  _drawPaddles(view) {
    const ctx = this.ctx;
    const f = view.field;
    for (const side of ["left", "right"]) {
      const y = view.paddles?.[side];
      if (typeof y !== "number" || !Number.isFinite(y)) continue;
      const x = side === "left" ? f.paddle_inset : f.width - f.paddle_inset - f.paddle_width;
      ctx.fillStyle = view.side === side ? COLORS.me : COLORS.paddle;
      roundRect(ctx, x, y - f.paddle_height / 2, f.paddle_width, f.paddle_height, 4);
      ctx.fill();
    }
  }

  _drawBall(view) {
    if (!view.ball) return;
    const ctx = this.ctx;
    ctx.save();
    ctx.fillStyle = COLORS.ball;
    ctx.shadowColor = "rgba(251, 191, 36, 0.55)";
    ctx.shadowBlur = 16;
    ctx.beginPath();
    ctx.arc(view.ball.x, view.ball.y, view.field.ball_radius, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
  }

  _drawBadge(text, field) {
    const ctx = this.ctx;
    ctx.font = `700 16px ${FONT}`;
    const w = ctx.measureText(text).width + 28;
    ctx.fillStyle = "rgba(167, 139, 250, 0.16)";
    roundRect(ctx, 20, 20, w, 32, 16);
    ctx.fill();
    ctx.strokeStyle = COLORS.badge;
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.fillStyle = COLORS.badge;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(text, 34, 37);
  }

  _drawBanner(banner, field) {
    const ctx = this.ctx;
    const cx = field.width / 2;
    const cy = field.height / 2;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    if (banner.big) {
      ctx.fillStyle = COLORS.text;
      ctx.font = `800 150px ${FONT}`;
      ctx.fillText(banner.big, cx, cy - 20);
    }
    if (banner.text) {
      // Below the centre, where the ball waits for its serve.
      ctx.font = `600 30px ${FONT}`;
      const w = ctx.measureText(banner.text).width + 56;
      const y = banner.big ? cy + 110 : cy + 90;
      ctx.fillStyle = "rgba(7, 10, 16, 0.78)";
      roundRect(ctx, cx - w / 2, y - 30, w, 60, 30);
      ctx.fill();
      ctx.fillStyle = COLORS.text;
      ctx.fillText(banner.text, cx, y + 1);
    }
  }

  // The game-over panel is HTML so that its link back to the lobby is a real link.
  _syncGameOver(view) {
    const els = this.gameOverEls;
    if (!els) return;
    const over = view.phase === "over" && view.gameOver;
    if (!over) {
      if (this._gameOverShown) {
        els.root.hidden = true;
        this._gameOverShown = false;
      }
      return;
    }
    if (this._gameOverShown) return;
    const g = view.gameOver;
    const { left, right } = g.score || view.score || { left: 0, right: 0 };
    let title;
    if (g.winner) {
      title = view.role === "player" && g.winner === view.me ? "You win!" : `${g.winner} wins`;
      if (view.role === "player" && g.winner !== view.me) title = `${g.winner} wins — you lose`;
    } else {
      title = "No winner";
    }
    els.title.textContent = title;
    els.score.textContent = `${view.players?.left ?? "left"} ${left ?? 0} – ${right ?? 0} ${view.players?.right ?? "right"}`;
    els.reason.textContent = describeReason(g.reason);
    els.root.dataset.winner = g.winner || "";
    els.root.hidden = false;
    this._gameOverShown = true;
  }
}

const REASONS = {
  forfeit: "A player left and did not come back in time.",
  abandoned: "Both players left.",
  time_limit: "The time limit was reached.",
  shutdown: "The game server was shut down.",
  launch_timeout: "The game server did not start in time.",
  no_free_port: "No game server could be started.",
};

export function describeReason(reason) {
  if (!reason || reason === "points") return "";
  if (reason.startsWith("no_show")) {
    const who = reason.split(":")[1];
    return who && who.trim() ? `Cancelled: ${who.trim()} did not show up.` : "Cancelled: a player did not show up.";
  }
  const known = REASONS[reason.split(":")[0]];
  return known || `Ended: ${reason}`;
}

function roundRect(ctx, x, y, w, h, r) {
  const rr = Math.min(r, w / 2, h / 2);
  ctx.beginPath();
  ctx.moveTo(x + rr, y);
  ctx.arcTo(x + w, y, x + w, y + h, rr);
  ctx.arcTo(x + w, y + h, x, y + h, rr);
  ctx.arcTo(x, y + h, x, y, rr);
  ctx.arcTo(x, y, x + w, y, rr);
  ctx.closePath();
}
