// Record reference activations of the ORIGINAL nsfwjs@4.3.0 tfjs graphs, once, for
// tests/models/test_backbones_convert.py (muselab.models.backbones).
//
// Pure-JS @tensorflow/tfjs (CPU backend); no tfjs-node native binary. Run it from a
// scratch folder that holds the unpacked package and tfjs:
//
//   mkdir /tmp/nsfwref && cd /tmp/nsfwref
//   npm pack nsfwjs@4.3.0 && tar xzf nsfwjs-4.3.0.tgz      # -> ./package
//   npm install --no-save @tensorflow/tfjs@4.22.0
//   node /path/to/muselab/scripts/record_tfjs_reference.mjs ./package \
//        /path/to/muselab/tests/fixtures/backbones
//
// For each model it writes <out>/<backbone>.json: for every layer muselab exposes, the
// output shape (NHWC, as tfjs has it), mean / std / max |x| over the whole tensor and
// SAMPLES values at fixed flat NHWC indices; plus the full global-average-pooled final
// feature vector ("pooled") and the 5-class NSFW output of the original head.
// The input is a deterministic integer pattern (patternImage below, mirrored exactly by
// muselab.models.backbones.reference_pattern) scaled to [0, 1] as nsfwjs does.

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "noop.js"));
const tf = require("@tensorflow/tfjs");

const SAMPLES = 96;

// muselab layer name -> Keras layer name in the nsfwjs graph.
function mobilenetLayers() {
  const residual = new Set([2, 4, 5, 7, 8, 9, 11, 12, 14, 15]);
  const map = { conv1: "Conv1_relu", block_0: "expanded_conv_project_BN" };
  for (let i = 1; i <= 16; i++) {
    map[`block_${i}`] = residual.has(i) ? `block_${i}_add` : `block_${i}_project_BN`;
  }
  map.conv_last = "out_relu";
  return map;
}

function inceptionLayers() {
  const map = {
    Conv2d_1a_3x3: "activation_1", Conv2d_2a_3x3: "activation_2",
    Conv2d_2b_3x3: "activation_3", maxpool1: "max_pooling2d_1",
    Conv2d_3b_1x1: "activation_4", Conv2d_4a_3x3: "activation_5",
    maxpool2: "max_pooling2d_2",
  };
  const mixed = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
    "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"];
  mixed.forEach((name, i) => { map[name] = `mixed${i}`; });
  return map;
}

const MODELS = [
  { backbone: "mobilenet-v2", dir: "mobilenet_v2", shards: 1, size: 224, layers: mobilenetLayers() },
  { backbone: "inception-v3", dir: "inception_v3", shards: 6, size: 299, layers: inceptionLayers() },
];

// uint8 [size, size, 3], row-major HWC: rings, ramps and an xor texture, integer-exact.
function patternImage(size) {
  const img = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        const v = ((x * x + 2 * y * y) >> 5) + 3 * x + 5 * y * c + 71 * c + ((x ^ y) & 63);
        img[(y * size + x) * 3 + c] = v & 255;
      }
    }
  }
  return img;
}

function loadArtifacts(pkg, spec) {
  const base = path.join(pkg, "dist", "models", spec.dir);
  const json = require(path.resolve(base, "model.min.js"));
  const parts = [];
  for (let i = 1; i <= spec.shards; i++) {
    const b64 = require(path.resolve(base, `group1-shard${i}of${spec.shards}.min.js`));
    parts.push(Buffer.from(b64, "base64"));
  }
  const data = Buffer.concat(parts);
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  return {
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  };
}

function stats(values) {
  let sum = 0; let sq = 0; let amax = 0;
  for (const v of values) { sum += v; sq += v * v; amax = Math.max(amax, Math.abs(v)); }
  const mean = sum / values.length;
  return { mean, std: Math.sqrt(Math.max(sq / values.length - mean * mean, 0)), absmax: amax };
}

async function record(pkg, spec) {
  const model = await tf.loadLayersModel(tf.io.fromMemory(loadArtifacts(pkg, spec)));
  const names = Object.keys(spec.layers);
  const probe = tf.model({
    inputs: model.inputs,
    outputs: [...names.map((n) => model.getLayer(spec.layers[n]).output), model.outputs[0]],
  });
  const pixels = patternImage(spec.size);
  const input = tf.tensor4d(Float32Array.from(pixels, (v) => v / 255),
    [1, spec.size, spec.size, 3]);
  const outs = probe.predict(input);
  const layers = {};
  for (let i = 0; i < names.length; i++) {
    const values = await outs[i].data();
    const n = values.length;
    const index = Array.from({ length: SAMPLES }, (_, k) => Math.floor(((k + 0.5) * n) / SAMPLES));
    layers[names[i]] = {
      keras: spec.layers[names[i]],
      shape_nhwc: outs[i].shape,
      ...stats(values),
      index,
      values: index.map((j) => values[j]),
    };
  }
  const last = outs[names.length - 1];
  const pooled = await last.mean([1, 2]).data();
  const probs = await outs[names.length].data();
  return {
    source: "npm:nsfwjs@4.3.0",
    recorded_with: `@tensorflow/tfjs@${tf.version.tfjs} (backend ${tf.getBackend()}), node ${process.version}`,
    input: { pattern: "muselab.models.backbones.reference_pattern", size: spec.size, scale: "1/255" },
    layers,
    pooled: Array.from(pooled),
    nsfw_probs: Array.from(probs),
  };
}

async function main() {
  const [pkg, outDir] = process.argv.slice(2);
  if (!pkg || !outDir) {
    console.error("usage: node record_tfjs_reference.mjs NSFWJS_PACKAGE_DIR OUT_DIR");
    process.exit(2);
  }
  await tf.setBackend("cpu");
  fs.mkdirSync(outDir, { recursive: true });
  for (const spec of MODELS) {
    const t0 = Date.now();
    const ref = await record(pkg, spec);
    const file = path.join(outDir, `${spec.backbone}.json`);
    fs.writeFileSync(file, JSON.stringify(ref) + "\n");
    console.log(`${file}: ${Object.keys(ref.layers).length} layers in ${(Date.now() - t0) / 1000} s`);
  }
}

await main();
