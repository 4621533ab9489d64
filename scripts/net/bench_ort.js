// onnxruntime-node side of nhbench-net: network-only images/s on random input.
// usage: node bench_ort.js MODEL.onnx BATCH THREADS RUNS
// prints one line: {"batch":B,"threads":T,"seconds":median_seconds_per_run,"images_per_s":X}
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, bs, ts, rs] = process.argv.slice(2);
  const batch = parseInt(bs, 10), threads = parseInt(ts, 10), runs = parseInt(rs, 10);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all',
    intraOpNumThreads: threads, interOpNumThreads: 1});
  const n = batch * 3 * 360 * 360;
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = ((s >>> 8) & 255) / 255 * 2 - 1;
  }
  const feeds = {};
  feeds[sess.inputNames[0]] = new ort.Tensor('float32', data, [batch, 3, 360, 360]);
  await sess.run(feeds); // warm-up
  const times = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({batch, threads, seconds: med, images_per_s: batch / med}));
}
main().catch((e) => { console.error(e); process.exit(1); });
