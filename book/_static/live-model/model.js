// The book's GPT, one forward pass, in plain JavaScript.
//
// This is gptlib's model (gptlib/model.py) written out once more, for the browser, step by step
// as the chapters derive it. It reads the weights the book's build wrote (weights.js loads them)
// and returns what gptlib returns: the logits of every position, (T, V), and the attention
// weights of every layer and head, (L, H, T, T). The book's browser test compares both with
// gptlib's for the same weights.
//
// Shapes use the book's letters (the notation page): T positions, C = d_model, H heads,
// D = C / H per head, F = d_ffn, V tokens, L layers. A vector is a Float64Array; a sequence of
// vectors is an array of them, one per position. The weights are float32 (Float32Array views
// of the downloaded file); all arithmetic is in float64 (JavaScript's numbers), so the results
// differ from gptlib's float32 ones by float32 rounding only.

// ------------------------------------------------------------------------------ small pieces

// y = W x + b for one position: the linear layer of chapter 2 (torch.nn.Linear). W has shape
// (out, in), stored row by row, so y[o] is the dot product of row o of W with x.
export function linear(x, W, b) {
  const nIn = x.length, nOut = b.length;
  const y = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let sum = b[o];
    const row = o * nIn;
    for (let i = 0; i < nIn; i++) sum += W[row + i] * x[i];
    y[o] = sum;
  }
  return y;
}

// LayerNorm (chapter 4): subtract the mean of the C numbers, divide by their standard deviation
// (the population variance, plus eps inside the square root), then a learned gain and bias.
export function layerNorm(x, gain, bias, eps) {
  const C = x.length;
  let mean = 0;
  for (let c = 0; c < C; c++) mean += x[c];
  mean /= C;
  let variance = 0;
  for (let c = 0; c < C; c++) variance += (x[c] - mean) ** 2;
  variance /= C;
  const inv = 1 / Math.sqrt(variance + eps);
  const y = new Float64Array(C);
  for (let c = 0; c < C; c++) y[c] = (x[c] - mean) * inv * gain[c] + bias[c];
  return y;
}

// The error function, erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt, which
// JavaScript's Math lacks. Within 1e-14 of the exact value everywhere (the browser test compares
// it with Python's math.erf): the Maclaurin series near 0, where it converges fast, and the
// continued fraction of erfc further out, where the series would lose its digits to cancellation.
export function erf(x) {
  const a = Math.abs(x);
  let r;
  if (a < 2.5) {
    // erf(a) = 2/sqrt(pi) * sum over n of (-1)^n a^(2n+1) / (n! (2n+1))
    let term = a, total = a;
    for (let n = 1; ; n++) {
      term *= (-a * a) / n;              // (-1)^n a^(2n+1) / n!
      const add = term / (2 * n + 1);
      total += add;
      if (Math.abs(add) <= 1e-17 * Math.abs(total)) break;  // also ends at a = 0
    }
    r = (2 / Math.sqrt(Math.PI)) * total;
  } else if (a < 6) {
    // erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))),
    // evaluated from the 60th level up
    let f = a;
    for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  } else {
    r = 1;  // erfc(6) < 3e-17: 1 to double precision
  }
  return x < 0 ? -r : r;
}

// GELU, the exact one Cerebras-GPT uses (chapter 4): x * Phi(x), with Phi the standard normal's
// cumulative distribution, Phi(x) = (1 + erf(x / sqrt 2)) / 2. (GPT-2's tanh form is not this.)
export function gelu(x) {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

// Softmax (chapter 2) of scores that may hold -Infinity (a masked key, chapter 3): exp of each
// score less the largest (the same distribution, no overflow), divided by their sum. A score of
// -Infinity gets exactly zero weight.
export function softmax(scores) {
  let top = -Infinity;
  for (const s of scores) if (s > top) top = s;
  const p = new Float64Array(scores.length);
  let sum = 0;
  for (let j = 0; j < scores.length; j++) {
    p[j] = Math.exp(scores[j] - top);
    sum += p[j];
  }
  for (let j = 0; j < p.length; j++) p[j] /= sum;
  return p;
}

function add(x, y) {  // the residual connection (chapter 4): x + y, position by position
  const z = new Float64Array(x.length);
  for (let c = 0; c < x.length; c++) z[c] = x[c] + y[c];
  return z;
}

// ------------------------------------------------------------------------- the key/value cache

// The keys and values every layer has computed so far (chapter 7's KV cache): generation feeds
// one new token at a time, and its query needs the keys and values of every earlier position,
// which never change once computed (a position never sees later ones). keys[l][t] is position
// t's key vector in layer l, all H heads side by side (C numbers); the same for values.
export function newCache(model) {
  const L = model.config.n_layer;
  return {length: 0, keys: Array.from({length: L}, () => []),
          values: Array.from({length: L}, () => [])};
}

// ------------------------------------------------------------------------------ the model

// The forward pass of gptlib.GPT (chapter 5 assembles it) for the token ids `ids`, which come
// after the `cache.length` positions already in `cache` (none for a fresh cache).
//
// Returns {logits, attention}: logits[t] is the Float64Array of V next-token logits after
// position t (T rows), and attention[l][h][t] the Float64Array of the weights that position t's
// query gives every key so far (cache.length + T of them; keys after position t hold 0, the
// mask). Without a cache, attention is (L, H, T, T), as gptlib's model.attention_maps.
export function forward(model, ids, cache = newCache(model)) {
  const cfg = model.config, W = model.tensors;
  const {n_layer: L, n_head: H, d_model: C, vocab_size: V} = cfg;
  const D = C / H;
  const start = cache.length;
  const T = ids.length;
  if (T === 0) throw new Error("give at least one token");
  if (start + T > cfg.context_length) {
    throw new Error(`${start + T} positions are more than the context length ` +
                    `${cfg.context_length}: the position table has no row for the rest`);
  }
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw new Error(`token ids must be integers in [0, ${V}), got ${id}`);
    }
  }

  // 1. Embeddings (chapter 2): the token's row of wte plus the position's row of wpe, times
  //    muP's embedding multiplier m_emb (10 for this model; 1 without muP; chapter 8).
  const wte = W["transformer.wte.weight"], wpe = W["transformer.wpe.weight"];
  let x = ids.map((id, t) => {
    const row = new Float64Array(C), pos = start + t;
    for (let c = 0; c < C; c++) {
      row[c] = (wte[id * C + c] + wpe[pos * C + c]) * cfg.embedding_multiplier;
    }
    return row;
  });

  const attention = [];
  for (let l = 0; l < L; l++) {
    const p = `transformer.h.${l}.`;
    // 2. Attention, pre-LayerNorm (chapter 4): the block reads LayerNorm(x), and adds what
    //    attention returns to x (the residual stream).
    const h = x.map((row) => layerNorm(row, W[p + "ln_1.weight"], W[p + "ln_1.bias"],
                                       cfg.layer_norm_eps));
    // One linear layer makes the query, key and value of every head (chapter 3: c_attn,
    // C -> 3C). Head h's query is q[h*D .. h*D + D), its key and value likewise.
    const qkv = h.map((row) => linear(row, W[p + "attn.c_attn.weight"], W[p + "attn.c_attn.bias"]));
    for (const row of qkv) {
      cache.keys[l].push(row.subarray(C, 2 * C));
      cache.values[l].push(row.subarray(2 * C, 3 * C));
    }
    const keys = cache.keys[l], values = cache.values[l];
    const Tk = keys.length;                       // every position so far
    const heads = x.map(() => new Float64Array(C));  // the heads' outputs, side by side
    attention.push([]);
    for (let hd = 0; hd < H; hd++) {
      const o = hd * D;
      attention[l].push([]);
      for (let t = 0; t < T; t++) {
        const pos = start + t;
        // Scores (chapter 3): q . k for every key, times the model's scale: 1/sqrt(D) in
        // standard attention, 1/D under muP (section 3.7 and chapter 8; 1/32 here).
        // The causal mask (section 3.4): the keys after this position keep -Infinity, so the
        // softmax gives them exactly zero weight.
        const scores = new Float64Array(Tk).fill(-Infinity);
        for (let j = 0; j <= pos; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[t][o + d] * keys[j][o + d];
          scores[j] = dot * cfg.attention_scale;
        }
        const weights = softmax(scores);          // each row sums to 1 (section 3.2)
        attention[l][hd].push(weights);
        // The output is the weighted average of the values (section 3.1).
        for (let j = 0; j <= pos; j++) {
          const wj = weights[j];
          for (let d = 0; d < D; d++) heads[t][o + d] += wj * values[j][o + d];
        }
      }
    }
    // c_proj (C -> C) mixes the heads' outputs back into the residual stream (section 3.6).
    x = x.map((row, t) => add(row, linear(heads[t], W[p + "attn.c_proj.weight"],
                                          W[p + "attn.c_proj.bias"])));

    // 3. The feed-forward network (chapter 4), pre-LayerNorm too: C -> F, GELU, F -> C.
    x = x.map((row) => {
      const n = layerNorm(row, W[p + "ln_2.weight"], W[p + "ln_2.bias"], cfg.layer_norm_eps);
      const hidden = linear(n, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"]).map(gelu);
      return add(row, linear(hidden, W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"]));
    });
  }
  cache.length += T;

  // 4. The final LayerNorm and the tied head (chapter 5): the logit of token v is the dot
  //    product with row v of the token embedding wte, the same matrix as step 1, times muP's
  //    logit multiplier, 1 / (d_model / d_base) (2 here; 1 without muP; chapter 8).
  const logits = x.map((row) => {
    const n = layerNorm(row, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"],
                        cfg.layer_norm_eps);
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += wte[v * C + c] * n[c];
      z[v] = dot * cfg.logit_multiplier;
    }
    return z;
  });
  return {logits, attention};
}
