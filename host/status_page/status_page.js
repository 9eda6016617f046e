// The status page of a running pipeline. Reads the admin endpoint's /status
// (the run report so far) every second and draws it: the figures at the top,
// the graph left to right with each stage's counts, rate, busy share, queue
// fill and a rate chart of the last five minutes, and the top reasons for
// rejects and failures. After the run it shows the final report. No library:
// the graph is laid out here (layers by longest path, ordered by barycentre).
'use strict';

const POLL_MS = 1000;
const HISTORY_SECONDS = 300;     // the rate charts' window
const NARROW_PX = 640;           // below this the graph becomes one column
const FINAL = new Set(['completed', 'failed', 'stopped']);

const page = {
  token: sessionStorage.getItem('sluice-admin-token') || '',
  shape: '',                     // the graph drawn (redrawn when it changes)
  narrow: null,
  history: new Map(),            // stage id -> [{t, count, busy}]
  last: null,                    // the last report drawn
  figures: new Map(),            // its rates and busy shares
  labelAt: new Map(),            // edge -> where its label goes
  lost: 0,                       // failed reads in a row
};

const $ = (id) => document.getElementById(id);
const number = (n) => Math.round(n).toLocaleString('en-US');
const percent = (r) => (Math.floor(r * 1000) / 10).toFixed(1) + '%';   // rounded down, as the report table
function rateText(r) {
  if (r >= 100) return number(r) + '/s';
  if (r >= 1) return r.toFixed(1) + '/s';
  return r > 0 ? r.toFixed(2) + '/s' : '0/s';
}
function el(tag, attributes, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}
function svg(tag, attributes) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, v);
  return e;
}

// --- reading /status ------------------------------------------------------

async function poll() {
  let wait = POLL_MS;
  try {
    const headers = page.token ? { Authorization: 'Bearer ' + page.token } : {};
    const response = await fetch('status', { headers, cache: 'no-store' });
    if (response.status === 401) {
      askForToken(page.token !== '');
      return;                    // polling resumes when a token is given
    }
    if (!response.ok) throw new Error('/status answered ' + response.status);
    const report = await response.json();
    page.lost = 0;
    draw(report);
  } catch (e) {
    page.lost += 1;
    connectionLost(e);
    wait = Math.min(5000, POLL_MS * page.lost);
  }
  setTimeout(poll, wait);
}

function askForToken(wrong) {
  const form = $('token-form');
  form.hidden = false;
  banner(wrong ? 'That token was refused.' : 'This admin endpoint needs a token (Authorization: Bearer).', 'bad');
  form.onsubmit = (event) => {
    event.preventDefault();
    page.token = $('token').value;
    sessionStorage.setItem('sluice-admin-token', page.token);
    form.hidden = true;
    banner('');
    poll();
  };
}

function banner(text, tone) {
  const b = $('banner');
  b.hidden = !text;
  b.textContent = text;
  b.dataset.tone = tone || '';
}

function connectionLost(error) {
  if (page.last && FINAL.has(page.last.status)) {
    banner('sluice has exited: these are the final figures of the run.', page.last.status === 'completed' ? 'good' : 'bad');
    setPhase('exited ' + page.last.status, page.last.status);
  } else {
    banner('Cannot reach sluice (' + error.message + '); trying again.', 'bad');
  }
}

function setPhase(text, phase) {
  const p = $('phase');
  p.textContent = text;
  p.dataset.phase = phase;
}

// --- the figures ----------------------------------------------------------

// What a stage has handled: an extractor what it read (records and
// unreadable input), any other stage what came in.
function handled(stage) {
  return stage.kind === 'extractor' ? stage.out + stage.errors : stage.in;
}

// Rate and busy share now: since the report drawn before, or over the whole
// run when there is none (a page opened after the run) or the run is over.
function liveFigures(report) {
  const figures = new Map();
  const before = page.last && page.last.started_at === report.started_at && !FINAL.has(report.status) ? page.last : null;
  const dt = before ? report.seconds - before.seconds : 0;
  for (const s of report.stages) {
    const old = before && before.stages.find((o) => o.id === s.id);
    let rate, busy;
    if (old && dt > 0) {
      rate = Math.max(0, handled(s) - handled(old)) / dt;
      busy = Math.max(0, s.busy_seconds - old.busy_seconds) / (dt * s.threads);
    } else {
      rate = report.seconds > 0 ? handled(s) / report.seconds : 0;
      busy = report.seconds > 0 ? s.busy_seconds / (report.seconds * s.threads) : 0;
    }
    figures.set(s.id, { rate, busy: Math.min(1, busy) });
  }
  return figures;
}

function remember(report, figures) {
  for (const s of report.stages) {
    let h = page.history.get(s.id);
    if (!h) page.history.set(s.id, (h = []));
    if (h.length && h[h.length - 1].t > report.seconds) h.length = 0;    // a new run
    if (h.length && h[h.length - 1].t === report.seconds) continue;      // the same report again
    h.push({ t: report.seconds, rate: figures.get(s.id).rate });
    while (h.length && h[0].t < report.seconds - HISTORY_SECONDS) h.shift();
  }
}

function tile(key, label, value, detail, tone) {
  const t = el('div', { class: 'tile', 'data-tile': key },
    el('div', { class: 'label', text: label }),
    el('div', { class: 'value', text: value }));
  if (detail) t.append(el('div', { class: 'detail', text: detail }));
  if (tone) t.dataset.tone = tone;
  return t;
}

function drawTiles(report, figures) {
  const r = report.records, q = report.quality;
  const tiles = [];
  const readRate = report.stages.filter((s) => s.kind === 'extractor')
    .reduce((sum, s) => sum + figures.get(s.id).rate, 0);
  tiles.push(tile('extracted', 'Extracted', number(r.extracted),
    FINAL.has(report.status) ? 'in ' + report.seconds.toFixed(3) + ' s' : rateText(readRate) + ' now'));
  const destinations = Object.entries(r.destinations || {});
  tiles.push(tile('delivered', 'Delivered', number(r.delivered),
    destinations.length > 1
      ? destinations.map(([id, d]) => id + ' ' + number(d.loaded) + (d.dead_letters ? ' (dead letters)' : '')).join(' · ')
      : ''));
  tiles.push(tile('quality', 'Quality score', percent(q.quality_score),
    number(q.passed_every_gate) + ' passed every gate', q.quality_score < 0.95 ? 'warn' : 'good'));
  tiles.push(tile('error-rate', 'Error rate', percent(q.error_rate),
    number(r.errors) + ' errors · ' + number(r.rejected) + ' rejected', q.error_rate > 0 ? 'bad' : ''));
  if (q.enrichment_rate !== undefined)
    tiles.push(tile('enrichment', 'Enrichment rate', percent(q.enrichment_rate), 'records enriched'));
  tiles.push(deliveryTile(report));
  if (r.dead_lettered > 0)
    tiles.push(tile('dead-lettered', 'Dead-lettered', number(r.dead_lettered), 'failed records kept', 'bad'));
  $('tiles').replaceChildren(...tiles);
}

function deliveryTile(report) {
  const d = report.delivery;
  if (!d) return tile('delivery', 'Delivery', 'not tracked', 'no state_dir: a restart reads from the start');
  const parts = [];
  if (d.state_file) parts.push(d.resumed ? 'resumed, ' + number(d.replayed || 0) + ' replayed' : 'checkpointed');
  if (d.exactly_once && d.exactly_once.length) parts.push('exactly once: ' + d.exactly_once.join(', '));
  if (d.save_error) parts.push(d.save_error);
  const inFlight = d.unacknowledged || 0;
  return tile('delivery', 'Acknowledged', number(d.acknowledged || 0),
    number(inFlight) + ' in flight' + (parts.length ? ' · ' + parts.join(' · ') : ''), d.save_error ? 'bad' : '');
}

// --- the graph ------------------------------------------------------------

// Edges from the report: each stage's inputs ("stage" or "stage.output") and
// where it sends what fails ("dead_letter_to").
function edgesOf(report) {
  const ids = new Set(report.stages.map((s) => s.id));
  const edges = [];
  for (const s of report.stages) {
    for (const input of s.inputs) {
      let from = input, output = '';
      if (!ids.has(input)) {
        const dot = input.lastIndexOf('.');
        from = input.slice(0, dot);
        output = input.slice(dot + 1);
      }
      edges.push({ from, output, to: s.id, dead: false });
    }
    if (s.dead_letter_to) edges.push({ from: s.id, output: 'dead letters', to: s.dead_letter_to, dead: true });
  }
  return edges;
}

// Columns by longest path from the sources; a stage fed only dead letters
// goes in the last column. Within a column, ordered by the mean position
// of its neighbours (a few sweeps each way) so that edges cross less.
function layout(report, edges) {
  const stages = report.stages.map((s) => s.id);
  const inputs = new Map(stages.map((id) => [id, []]));
  for (const e of edges) if (!e.dead) inputs.get(e.to).push(e.from);
  const layer = new Map();
  const depth = (id, seen) => {
    if (layer.has(id)) return layer.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const from = inputs.get(id);
    const d = from.length ? Math.max(...from.map((f) => depth(f, seen) + 1)) : 0;
    layer.set(id, d);
    return d;
  };
  for (const id of stages) depth(id, new Set());
  const last = Math.max(0, ...layer.values());
  for (const s of report.stages)
    if (s.kind !== 'extractor' && inputs.get(s.id).length === 0) layer.set(s.id, Math.max(1, last));
  const columns = [];
  for (const id of stages) (columns[layer.get(id)] ||= []).push(id);
  const filled = columns.filter(Boolean);
  const position = new Map();
  const place = () => filled.forEach((c) => c.forEach((id, i) => position.set(id, i)));
  place();
  const neighbours = (id, before) => edges
    .filter((e) => (before ? e.to === id : e.from === id))
    .map((e) => (before ? e.from : e.to))
    .filter((n) => layer.get(n) !== layer.get(id));
  for (let sweep = 0; sweep < 4; sweep += 1) {
    const order = sweep % 2 === 0 ? filled : [...filled].reverse();
    for (const column of order) {
      const key = new Map(column.map((id) => {
        const n = neighbours(id, sweep % 2 === 0);
        return [id, n.length ? n.reduce((a, b) => a + position.get(b), 0) / n.length : position.get(id)];
      }));
      column.sort((a, b) => key.get(a) - key.get(b));
      column.forEach((id, i) => position.set(id, i));
    }
  }
  // A stage fed only dead letters goes to the bottom, next to their lanes.
  const deadOnly = (id) => inputs.get(id).length === 0 && edges.some((e) => e.dead && e.to === id);
  for (const column of filled) column.sort((a, b) => deadOnly(a) - deadOnly(b));
  return filled;
}

function node(stage) {
  const counts = el('dl', { class: 'counts' });
  for (const key of ['in', 'out', 'rejected', 'failed'])
    counts.append(el('div', {}, el('dt', { text: key }), el('dd', { 'data-count': key })));
  const spark = svg('svg', { class: 'spark', viewBox: '0 0 200 30', preserveAspectRatio: 'none', role: 'img' });
  spark.append(svg('title'), svg('line', { class: 'baseline', x1: 0, y1: 29.5, x2: 200, y2: 29.5 }), svg('polyline'));
  return el('article', { class: 'node', 'data-stage': stage.id, 'data-kind': stage.kind, 'aria-label': 'stage ' + stage.id },
    el('div', { class: 'name', text: stage.id }),
    el('div', { class: 'kind', text: stage.kind + ' · ' + stage.plugin + (stage.threads > 1 ? ' · ' + stage.threads + ' threads' : '') }),
    counts,
    el('div', { class: 'live' }, el('span', { 'data-field': 'rate' }), el('span', { 'data-field': 'busy' })),
    stage.queue_capacity !== undefined
      ? el('div', { class: 'queue' }, el('span', { text: 'queue' }), el('div', { class: 'bar' }, el('span')),
          el('span', { 'data-field': 'queue' }))
      : null,
    spark,
    el('div', { class: 'links' }));
}

function edgeClass(e) { return e.dead ? 'dead' : e.output === 'fail' ? 'fail' : ''; }
function edgeKey(e) { return e.from + '|' + e.output + '|' + e.to; }
function edgeName(e) { return e.dead ? 'dead letters' : e.output; }

// Builds the boxes (when the graph or the screen's class changed: true);
// on a narrow screen they stay in flow order with their links as chips.
function buildGraph(report) {
  const graph = $('graph');
  const narrow = graph.clientWidth < NARROW_PX;
  const shape = JSON.stringify([report.stages.map((s) => [s.id, s.kind, s.plugin, s.inputs, s.dead_letter_to]), narrow]);
  if (shape === page.shape) return false;
  page.shape = shape;
  const edges = edgesOf(report);
  const columns = layout(report, edges);
  graph.replaceChildren();
  graph.classList.toggle('column', narrow);
  const byId = new Map(report.stages.map((s) => [s.id, s]));
  const nodes = new Map();
  const edgeLayer = svg('svg', { class: 'edges', 'aria-hidden': 'true' });
  graph.append(edgeLayer);
  for (const column of columns) for (const id of column) {
    const n = node(byId.get(id));
    nodes.set(id, n);
    graph.append(n);
  }
  for (const e of edges) {
    const chipIn = el('span', { class: 'chip ' + edgeClass(e), 'data-edge': edgeKey(e),
      text: '← ' + e.from + (e.output ? ' (' + edgeName(e) + ')' : '') });
    const chipOut = el('span', { class: 'chip ' + edgeClass(e), 'data-edge-out': edgeKey(e),
      text: (e.output ? edgeName(e) + ' ' : '') + '→ ' + e.to });
    nodes.get(e.to)?.querySelector('.links').append(chipIn);
    nodes.get(e.from)?.querySelector('.links').append(chipOut);
  }
  page.graph = { columns, edges, nodes, narrow, heights: new Map() };
  return true;
}

// Whether a box grew or shrank since the graph was placed (its figures
// wrap differently): then it is placed again.
function boxesResized() {
  const g = page.graph;
  return !g.narrow && [...g.nodes].some(([id, n]) => g.heights.get(id) !== n.offsetHeight);
}

// On a wide screen: the boxes in columns, the edges between them, the dead
// letters in lanes below.
function placeGraph() {
  const { columns, edges, nodes, narrow } = page.graph;
  if (narrow) return;
  const graph = $('graph');
  const edgeLayer = graph.querySelector('svg.edges');
  edgeLayer.replaceChildren();
  const gapX = 64, gapY = 18, pad = 16, lane = 16, round = 6;
  const width = Math.max(170, Math.min(230, (graph.clientWidth - 2 * pad - gapX * (columns.length - 1)) / columns.length));
  for (const n of nodes.values()) n.style.width = width + 'px';
  const heights = columns.map((c) => c.reduce((h, id) => h + nodes.get(id).offsetHeight, 0) + gapY * (c.length - 1));
  const tallest = Math.max(...heights);
  for (const [id, n] of nodes) page.graph.heights.set(id, n.offsetHeight);
  const content = columns.length * width + (columns.length - 1) * gapX;
  const left = Math.max(pad, (graph.clientWidth - content) / 2);  // centred when it fits
  const box = new Map();
  columns.forEach((column, ci) => {
    let y = pad + (tallest - heights[ci]) / 2;
    for (const id of column) {
      const n = nodes.get(id);
      const x = left + ci * (width + gapX);
      n.style.left = x + 'px';
      n.style.top = y + 'px';
      box.set(id, { x, y, w: width, h: n.offsetHeight, column: ci });
      y += n.offsetHeight + gapY;
    }
  });
  // Dead letters run in lanes of their own below the boxes.
  const dead = edges.filter((e) => e.dead && box.has(e.from) && box.has(e.to));
  const gutter = pad + tallest + 18;
  const totalWidth = left + content + pad;
  const totalHeight = gutter + lane * Math.max(0, dead.length - 1) + (dead.length ? 14 : 0) + pad;
  graph.style.height = totalHeight + 'px';
  edgeLayer.setAttribute('width', totalWidth);
  edgeLayer.setAttribute('height', totalHeight);
  // Edges leave a box's right side and enter the next box's left side,
  // spread over its height when several leave or arrive.
  const outs = new Map(), ins = new Map();
  for (const e of edges) {
    (outs.get(e.from) || outs.set(e.from, []).get(e.from)).push(e);
    if (!e.dead) (ins.get(e.to) || ins.set(e.to, []).get(e.to)).push(e);
  }
  const deadInto = new Map();
  for (const e of dead) (deadInto.get(e.to) || deadInto.set(e.to, []).get(e.to)).push(e);
  const slot = (list, e, b) => b.y + (b.h * (list.indexOf(e) + 1)) / (list.length + 1);
  const leavingColumn = new Map();
  page.labelAt = new Map();
  for (const e of edges) {
    const a = box.get(e.from), b = box.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + a.w, y1 = slot(outs.get(e.from), e, a);
    let d;
    if (e.dead) {
      // Right into the gap, down it to this edge's lane, along the lane,
      // up into the destination's bottom.
      const k = leavingColumn.get(a.column) || 0;
      leavingColumn.set(a.column, k + 1);
      const gx = x1 + 10 + 8 * (k % 6);
      const y = gutter + lane * dead.indexOf(e);
      const into = deadInto.get(e.to);
      const tx = b.x + (b.w * (into.indexOf(e) + 1)) / (into.length + 1);
      const dir = tx >= gx ? 1 : -1;
      d = `M${x1},${y1} L${gx - round},${y1} Q${gx},${y1} ${gx},${y1 + round} L${gx},${y - round} ` +
          `Q${gx},${y} ${gx + dir * round},${y} L${tx - dir * round},${y} Q${tx},${y} ${tx},${y - round} L${tx},${b.y + b.h}`;
      page.labelAt.set(edgeKey(e), { x: gx + dir * 48, y: y + 4 });
    } else if (b.column > a.column) {
      const x2 = b.x, y2 = slot(ins.get(e.to), e, b);
      const bend = Math.max(30, (x2 - x1) / 2);
      d = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
    } else {
      const x2 = b.x, y2 = slot(ins.get(e.to), e, b);
      d = `M${x1},${y1} C${x1 + 60},${y1} ${x2 - 60},${y2} ${x2},${y2}`;
    }
    const path = svg('path', { d, class: edgeClass(e), 'data-edge': edgeKey(e), 'marker-end': 'url(#arrow)' });
    edgeLayer.append(path);
    if (!page.labelAt.has(edgeKey(e))) page.labelAt.set(edgeKey(e), pointAtX(path, x1 + gapX / 2));
    const label = svg('g', { class: 'edge-label ' + edgeClass(e), 'data-edge-label': edgeKey(e) });
    label.append(svg('rect'), svg('text', { 'text-anchor': 'middle' }));
    edgeLayer.append(label);
  }
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  defs.append(marker);
  edgeLayer.prepend(defs);
}

// Where a path that runs left to right crosses x (its label goes there: in
// the gap after its source, never under a box it passes).
function pointAtX(path, x) {
  let low = 0, high = path.getTotalLength();
  for (let i = 0; i < 24; i += 1) {
    const middle = (low + high) / 2;
    if (path.getPointAtLength(middle).x < x) low = middle; else high = middle;
  }
  const p = path.getPointAtLength(low);
  return { x: p.x, y: p.y + 4 };
}

// What went along an edge: the records its stage emitted on that output
// (dead letters: those the stage sent to its dead-letter destination).
function edgeCount(report, e) {
  const s = report.stages.find((x) => x.id === e.from);
  if (!s) return 0;
  if (e.dead) return s.dead_lettered;
  if (e.output) return s.outputs[e.output] || 0;
  return Object.values(s.outputs).reduce((a, b) => a + b, 0);
}

function drawFigures(report, figures) {
  const graph = $('graph');
  for (const s of report.stages) {
    const n = graph.querySelector(`.node[data-stage="${CSS.escape(s.id)}"]`);
    if (!n) continue;
    const values = { in: s.in, out: s.out, rejected: s.rejected, failed: s.errors };
    for (const [key, v] of Object.entries(values)) {
      const dd = n.querySelector(`dd[data-count="${key}"]`);
      dd.textContent = number(v);
      dd.toggleAttribute('data-zero', v === 0);
    }
    const f = figures.get(s.id);
    n.querySelector('[data-field="rate"]').textContent = (FINAL.has(report.status) ? 'avg ' : '') + rateText(f.rate);
    n.querySelector('[data-field="busy"]').textContent = 'busy ' + Math.round(f.busy * 100) + '%';
    const queue = n.querySelector('.queue');
    if (queue) {
      const fill = s.queue_capacity ? s.queue_size / s.queue_capacity : 0;
      queue.querySelector('.bar span').style.width = Math.round(fill * 100) + '%';
      queue.querySelector('[data-field="queue"]').textContent = s.queue_size + '/' + s.queue_capacity;
      queue.toggleAttribute('data-full', fill >= 0.9);
    }
    drawSpark(n.querySelector('svg.spark'), page.history.get(s.id) || [], report.seconds);
  }
}

// Each edge's label: its output and what went along it, in the gap after
// its source (dead letters: on their lane).
function drawLabels(report) {
  const graph = $('graph');
  for (const label of graph.querySelectorAll('[data-edge-label]')) {
    const [from, output, to] = label.getAttribute('data-edge-label').split('|');
    const e = { from, output, to, dead: output === 'dead letters' };
    const text = label.querySelector('text');
    text.textContent = (output && output !== 'out' ? output + ' ' : '') + number(edgeCount(report, e));
    const at = page.labelAt.get(label.getAttribute('data-edge-label'));
    text.setAttribute('x', at.x);
    text.setAttribute('y', at.y);
    const b = text.getBBox();
    const rect = label.querySelector('rect');
    rect.setAttribute('x', b.x - 3);
    rect.setAttribute('y', b.y - 1);
    rect.setAttribute('width', b.width + 6);
    rect.setAttribute('height', b.height + 2);
  }
}

// The chart spans the history it has (at least 30 s, at most five minutes).
function drawSpark(spark, history, now) {
  spark.toggleAttribute('hidden', history.length < 2);   // a page opened after the run has no history
  const line = spark.querySelector('polyline');
  const peak = Math.max(0, ...history.map((h) => h.rate));
  const span = Math.max(30, Math.min(HISTORY_SECONDS, history.length ? now - history[0].t : 0));
  const points = history.map((h) => {
    const x = 200 - ((now - h.t) / span) * 200;
    const y = 29 - (peak > 0 ? (h.rate / peak) * 27 : 0);
    return x.toFixed(1) + ',' + y.toFixed(1);
  });
  line.setAttribute('points', points.join(' '));
  spark.querySelector('title').textContent = 'records/s over the last ' + Math.min(HISTORY_SECONDS, Math.round(now)) +
    ' s (peak ' + rateText(peak) + ')';
}

function drawReasons(report) {
  const cards = [];
  for (const s of report.stages) {
    const rows = [
      ...s.reject_reasons.map((r) => ['rejected', r]),
      ...s.error_reasons.map((r) => ['failed', r]),
    ];
    if (!rows.length) continue;
    const table = el('table');
    for (const [what, r] of rows)
      table.append(el('tr', { class: what }, el('td', { class: 'n', text: number(r.count) }),
        el('td', { text: (what === 'failed' ? 'failed: ' : '') + r.reason })));
    cards.push(el('div', { class: 'reason-card', 'data-stage': s.id }, el('h3', { text: s.id }), table));
  }
  if (!cards.length) cards.push(el('p', { class: 'none', text: 'No record has been rejected or has failed.' }));
  $('reasons').replaceChildren(...cards);
}

function drawHeader(report) {
  document.title = report.pipeline + ' · sluice';
  $('pipeline').textContent = report.pipeline;
  setPhase(report.status, report.status);
  $('about').textContent = [report.manifest, 'sluice ' + report.sluice_version, 'started ' + report.started_at,
    report.seconds.toFixed(FINAL.has(report.status) ? 3 : 0) + ' s'].join(' · ');
  if (FINAL.has(report.status)) {
    const end = 'The run ' + report.status + ' in ' + report.seconds.toFixed(3) + ' s (exit code ' + report.exit_code + ')' +
      (report.error ? ': ' + report.error : '.') + ' This is its final report.';
    banner(end, report.status === 'completed' && !report.error ? 'good' : 'bad');
  } else if (report.error) {
    banner(report.error, 'bad');
  } else {
    banner('');
  }
}

function draw(report) {
  const figures = liveFigures(report);
  remember(report, figures);
  drawHeader(report);
  drawTiles(report, figures);
  const rebuilt = buildGraph(report);
  drawFigures(report, figures);
  if (rebuilt || boxesResized()) placeGraph();
  drawLabels(report);
  drawReasons(report);
  $('footer').dataset.updated = new Date().toISOString();
  page.last = report;
  page.figures = figures;
  document.body.dataset.status = report.status;
}

// A change of width may switch between the graph and the column.
let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    page.shape = '';
    if (page.last) {
      buildGraph(page.last);
      drawFigures(page.last, page.figures);
      placeGraph();
      drawLabels(page.last);
    }
  }, 100);
});

poll();
