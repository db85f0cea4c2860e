// peer_ort.js — the ONNX Runtime side of bench/run: times one ONNX model in
// this node process (onnxruntime-node, CPU execution provider, all graph
// optimizations) and prints one JSON object on stdout.
//
//   node peer_ort.js --model M.onnx --input NAME=D0xD1... [--input ...]   (NAME may be a position: 0=...)
//                    --items K --iters N --warmup W --threads T
//
// Inputs are filled with a fixed pseudo-random pattern once, outside the timed
// region.  Timing covers `await session.run(feeds)`: the public API's cost,
// including the promise round trip of the node binding.
'use strict';

function parseArgs(argv) {
  const a = { inputs: [], items: 1, iters: 50, warmup: 5, threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--model') { a.model = v; i++; }
    else if (k === '--input') { a.inputs.push(v); i++; }
    else if (['--items', '--iters', '--warmup', '--threads'].includes(k)) { a[k.slice(2)] = parseInt(v, 10); i++; }
    else { throw new Error(`unknown argument '${k}'`); }
  }
  if (!a.model) throw new Error('--model is required');
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    console.log(JSON.stringify({ skipped: 'not installed' }));
    return;
  }
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const feeds = {};
  for (const spec of a.inputs) {
    let [name, dims] = spec.split('=');
    if (/^[0-9]+$/.test(name)) name = session.inputNames[Number(name)];  // input by position
    const shape = dims.split('x').map(Number);
    const n = shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; data[i] = (s / 4294967296) * 2 - 1; }
    feeds[name] = new ort.Tensor('float32', data, shape);
  }
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < a.iters; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((x, y) => x - y);
  const n = ms.length;
  const med = n % 2 ? ms[(n - 1) / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  const r4 = (x) => Math.round(x * 1e4) / 1e4;
  console.log(JSON.stringify({
    ms_median: r4(med), ms_min: r4(ms[0]),
    items_per_s: med > 0 ? Math.round(a.items * 1e4 / med) / 10 : 0,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 102.4) / 10,
    threads: a.threads, variant: `ort ${ort.env.versions.node} cpu opt=all`,
  }));
}

main().catch((e) => { console.error(`peer_ort: ${e.message || e}`); process.exit(1); });
