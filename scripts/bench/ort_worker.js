// onnxruntime-node worker for the nnhash.py-style peer of bench/pipeline.sh.
// usage: node ort_worker.js MODEL.onnx THREADS
// stdin: frames of [u32 n][n x 3 x 360 x 360 float32]; stdout: [n x 128 float32] per frame.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, ts] = process.argv.slice(2);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all',
    intraOpNumThreads: parseInt(ts, 10), interOpNumThreads: 1});
  const img = 3 * 360 * 360 * 4;
  // Chunks are kept in a list and joined once a whole frame is there (joining on every
  // chunk would copy the frame over and over).
  let chunks = [], have = 0, need = -1;
  let busy = Promise.resolve();
  const take = (n) => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have);
    chunks = all.length > n ? [all.subarray(n)] : [];
    have = all.length - n;
    return all.subarray(0, n);
  };
  process.stdin.on('data', (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    for (;;) {
      if (need < 0) {
        if (have < 4) return;
        need = take(4).readUInt32LE(0);
      }
      if (have < need * img) return;
      const n = need;
      const frame = take(n * img);
      need = -1;
      const data = new Float32Array(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.length));
      busy = busy.then(async () => {
        const feeds = {};
        feeds[sess.inputNames[0]] = new ort.Tensor('float32', data, [n, 3, 360, 360]);
        const out = await sess.run(feeds);
        const o = out[sess.outputNames[0]].data;
        process.stdout.write(Buffer.from(o.buffer, o.byteOffset, o.byteLength));
      });
    }
  });
  process.stdin.on('end', () => { busy.then(() => process.exit(0)); });
}
main().catch((e) => { console.error(e); process.exit(1); });
