// docs/wait-admissions.svg, written by hand (no charting dependency): admissions per second during
// the WAIT run, and, below, admissions accumulated within each calendar minute against the limit —
// ours and the peers on the same time axis.

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  /** [epoch ms, value] in time order; drawn as a step line. */
  points: [number, number][];
}

export interface WaitChartInput {
  title: string;
  /** One line each. */
  subtitle: string[];
  startMs: number;
  endMs: number;
  limitPerMinute: number;
  /** One value per second from startMs. */
  admittedPerSecond: number[];
  arrivalsPerSecond: number[];
  cumulative: Series[];
}

const W = 960;
const H = 616;
const M = { left: 64, right: 200, top: 74, bottom: 40 };
const GAP = 46;

const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const n1 = (v: number) => (Math.round(v * 10) / 10).toString();

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ticks(max: number, count = 5): number[] {
  const step = niceMax(max / count);
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(v);
  return out;
}

export function waitChartSvg(c: WaitChartInput): string {
  const plotW = W - M.left - M.right;
  const panelH = (H - M.top - M.bottom - GAP) / 2;
  const top1 = M.top;
  const top2 = M.top + panelH + GAP;
  const span = Math.max(1, c.endMs - c.startMs);
  const x = (ms: number) => M.left + ((ms - c.startMs) / span) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="600">${esc(c.title)}</text>`);
  c.subtitle.forEach((line, i) => out.push(`<text x="${M.left}" y="${40 + i * 16}" fill="#555">${esc(line)}</text>`));

  // Minute boundaries (both panels).
  const firstMinute = Math.ceil(c.startMs / 60_000) * 60_000;
  for (let m = firstMinute; m <= c.endMs; m += 60_000) {
    const xm = n1(x(m));
    out.push(`<line x1="${xm}" y1="${top1}" x2="${xm}" y2="${top2 + panelH}" stroke="#bbb" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${xm}" y="${top2 + panelH + 16}" text-anchor="middle" fill="#555">${new Date(m).toISOString().slice(11, 16)} UTC</text>`);
  }

  // Panel 1: admissions per second (bars) and arrivals per second (line).
  const max1 = niceMax(Math.max(1, ...c.admittedPerSecond, ...c.arrivalsPerSecond));
  const y1 = (v: number) => top1 + panelH - (v / max1) * panelH;
  for (const t of ticks(max1)) {
    out.push(`<line x1="${M.left}" y1="${n1(y1(t))}" x2="${M.left + plotW}" y2="${n1(y1(t))}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${n1(y1(t) + 4)}" text-anchor="end" fill="#555">${t}</text>`);
  }
  const bw = Math.max(1, plotW / Math.max(1, span / 1000) - 0.5);
  c.admittedPerSecond.forEach((v, i) => {
    if (v <= 0) return;
    const xs = x(c.startMs + i * 1000);
    out.push(`<rect x="${n1(xs)}" y="${n1(y1(v))}" width="${n1(bw)}" height="${n1(top1 + panelH - y1(v))}" fill="#2b6cb0"/>`);
  });
  const arrPts = c.arrivalsPerSecond.map((v, i) => `${n1(x(c.startMs + i * 1000 + 500))},${n1(y1(v))}`).join(" ");
  out.push(`<polyline points="${arrPts}" fill="none" stroke="#dd6b20" stroke-width="1.2"/>`);
  const sustained = c.limitPerMinute / 60;
  out.push(`<line x1="${M.left}" y1="${n1(y1(sustained))}" x2="${M.left + plotW}" y2="${n1(y1(sustained))}" stroke="#c53030" stroke-dasharray="6 4"/>`);
  out.push(`<rect x="${M.left}" y="${top1}" width="${plotW}" height="${panelH}" fill="none" stroke="#999"/>`);
  out.push(`<text transform="translate(16 ${n1(top1 + panelH / 2)}) rotate(-90)" text-anchor="middle" fill="#333">per second</text>`);
  const lx = M.left + plotW + 14;
  out.push(`<rect x="${lx}" y="${top1 + 4}" width="14" height="10" fill="#2b6cb0"/><text x="${lx + 20}" y="${top1 + 13}">admitted (ours)</text>`);
  out.push(`<line x1="${lx}" y1="${top1 + 30}" x2="${lx + 14}" y2="${top1 + 30}" stroke="#dd6b20" stroke-width="2"/><text x="${lx + 20}" y="${top1 + 34}">arrivals (demand)</text>`);
  out.push(`<line x1="${lx}" y1="${top1 + 50}" x2="${lx + 14}" y2="${top1 + 50}" stroke="#c53030" stroke-dasharray="4 3" stroke-width="2"/><text x="${lx + 20}" y="${top1 + 54}">limit ÷ 60 s</text>`);

  // Panel 2: admitted so far in the current calendar minute, per limiter, against the limit.
  const maxCum = Math.max(c.limitPerMinute, ...c.cumulative.flatMap((s) => s.points.map((p) => p[1])));
  const max2 = niceMax(maxCum * 1.08);
  const y2 = (v: number) => top2 + panelH - (v / max2) * panelH;
  for (const t of ticks(max2)) {
    out.push(`<line x1="${M.left}" y1="${n1(y2(t))}" x2="${M.left + plotW}" y2="${n1(y2(t))}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${n1(y2(t) + 4)}" text-anchor="end" fill="#555">${t}</text>`);
  }
  out.push(`<line x1="${M.left}" y1="${n1(y2(c.limitPerMinute))}" x2="${M.left + plotW}" y2="${n1(y2(c.limitPerMinute))}" stroke="#c53030" stroke-width="1.5"/>`);
  out.push(`<text x="${M.left + 4}" y="${n1(y2(c.limitPerMinute) - 4)}" fill="#c53030">limit: ${c.limitPerMinute} per minute</text>`);
  // Peers first, ours (the first series) last, so ours is drawn on top.
  const drawOrder = c.cumulative.map((s, k) => [s, k] as const).slice(1).concat(c.cumulative.length ? [[c.cumulative[0]!, 0] as const] : []);
  for (const [s, k] of drawOrder) {
    if (s.points.length === 0) continue;
    const pts: string[] = [];
    let prev = 0;
    for (const [t, v] of s.points) {
      pts.push(`${n1(x(t))},${n1(y2(prev))}`, `${n1(x(t))},${n1(y2(v))}`);
      prev = v;
    }
    out.push(`<polyline points="${pts.join(" ")}" fill="none" stroke="${s.color}" stroke-width="${k === 0 ? 2.2 : 1.6}"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
    const ly = top2 + 10 + k * 20;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 14}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/><text x="${lx + 20}" y="${ly + 4}">${esc(s.label)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${top2}" width="${plotW}" height="${panelH}" fill="none" stroke="#999"/>`);
  out.push(`<text transform="translate(16 ${n1(top2 + panelH / 2)}) rotate(-90)" text-anchor="middle" fill="#333">admitted this minute</text>`);
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}

/** Step series: for each admission time, the count admitted so far in its calendar minute. */
export function cumulativeByMinute(times: number[], windowOf: (t: number, i: number) => number = (t) => Math.floor(t / 60_000) * 60_000): [number, number][] {
  const order = times.map((t, i) => ({ t, w: windowOf(t, i) })).sort((a, b) => a.t - b.t);
  const pts: [number, number][] = [];
  let w = -1;
  let n = 0;
  for (const o of order) {
    if (o.w !== w) {
      if (w !== -1) pts.push([o.w, 0]);
      w = o.w;
      n = 0;
    }
    n++;
    pts.push([o.t, n]);
  }
  return pts;
}
