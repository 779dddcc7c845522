// From logits to text in the browser: temperature, top-k, top-p, and generation (chapter 7).
//
// Each function follows its namesake in gptlib/sample.py, with the same order of operations and
// the same rules at ties and boundaries, so that for the same logits the page draws from the
// same distribution as gptlib.sample.next_token_distribution (the browser test compares them):
//
//   divide by the temperature, then keep the top k, then keep the nucleus of what is left,
//   then softmax; temperature 0 puts all the mass on the largest logit (greedy decoding).
//
// The random numbers are the page's own (a seeded generator below), not torch's: a seed makes a
// sample in the page repeat exactly, but it is not the sample torch draws for that seed.

import {forward, newCache, softmax} from "./model.js";

// Refuse settings that make no distribution, as gptlib.sample.check_sampling does.
export function checkSamplingArgs(V, temperature, topK, topP) {
  if (typeof temperature !== "number" || !Number.isFinite(temperature) || temperature < 0) {
    throw new RangeError(`temperature must be a finite number >= 0 (0 means greedy), ` +
                         `got ${temperature}`);
  }
  if (topK !== null && (!Number.isInteger(topK) || topK < 1 || topK > V)) {
    throw new RangeError(`top-k must be an integer in [1, ${V}] (the vocabulary size) or off, ` +
                         `got ${topK}`);
  }
  if (topP !== null && (typeof topP !== "number" || !Number.isFinite(topP) ||
                        !(topP > 0 && topP <= 1))) {
    throw new RangeError(`top-p must be a number in (0, 1] or off, got ${topP}`);
  }
}

// The token ids from the largest logit to the smallest. Ties keep the lower id first (a stable
// sort); see topPFilter for the one place where this order can matter.
function descendingOrder(logits) {
  return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
}

// Keep the k largest logits, set the rest to -Infinity. Every logit equal to the k-th largest
// is kept too, so ties at the k-th value are all kept (gptlib.sample.top_k_filter).
export function topKFilter(logits, k) {
  const kth = Array.from(logits).sort((a, b) => b - a)[k - 1];
  return Float64Array.from(logits, (z) => (z < kth ? -Infinity : z));
}

// The nucleus (gptlib.sample.top_p_filter): sort the tokens from most to least likely, and drop
// a token when the probability of the tokens ranked above it already reaches p. So the token
// whose running sum reaches p is kept, and the top token always is.
//
// Where tokens with equal logits straddle that boundary, the rule keeps some of them, and which
// ones depends on how the sort orders ties: here the lower ids (a stable sort); gptlib uses
// torch.sort, which is not stable, so it may keep others of the tied tokens. How many are kept,
// and the probability of each, are the same.
export function topPFilter(logits, p) {
  const order = descendingOrder(logits);
  const probs = softmax(order.map((i) => logits[i]));
  const out = Float64Array.from(logits);
  let running = 0;  // the cumulative sum, as gptlib computes it: cumsum(probs) - probs
  for (let r = 0; r < order.length; r++) {
    running += probs[r];
    const massBefore = running - probs[r];  // the probability of the tokens ranked above
    if (massBefore >= p) out[order[r]] = -Infinity;
  }
  return out;
}

// The distribution the next token is drawn from: V logits -> V probabilities
// (gptlib.sample.next_token_distribution). topK and topP are null when off; top-p 1 is off.
export function nextTokenDistribution(logits, temperature = 1, topK = null, topP = null) {
  checkSamplingArgs(logits.length, temperature, topK, topP);
  if (temperature === 0) {  // greedy: the first of the largest logits gets all the mass
    const probs = new Float64Array(logits.length);
    probs[argmax(logits)] = 1;
    return probs;
  }
  let z = Float64Array.from(logits, (v) => v / temperature);
  if (topK !== null) z = topKFilter(z, topK);
  if (topP !== null && topP < 1) z = topPFilter(z, topP);
  return softmax(z);
}

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// A seeded generator of uniform numbers in [0, 1): Mulberry32, a small 32-bit generator (one
// 32-bit state, a Weyl sequence step and an integer hash of it). Good enough to draw tokens,
// and the same seed always gives the same numbers, in every browser.
export function seededRandom(seed) {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`the seed must be an integer in [0, ${0xffffffff}], got ${seed}`);
  }
  let state = seed >>> 0;
  return function next() {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

// Draw one token id from probabilities: the first id at which the running sum of the
// probabilities passes u times their total, for u uniform in [0, 1) (inverse-CDF sampling; a
// token of probability 0 is never drawn).
export function drawFrom(probs, u) {
  let total = 0;
  for (const p of probs) total += p;
  const target = u * total;
  let running = 0, last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    running += probs[i];
    last = i;
    if (running > target) return i;
  }
  return last;  // u * total rounded up to the total: the last possible token
}

// One token from the last position's logits (gptlib.sample.sample_next).
export function sampleNext(logits, temperature, topK, topP, random) {
  if (temperature === 0) {
    checkSamplingArgs(logits.length, temperature, topK, topP);
    return argmax(logits);
  }
  return drawFrom(nextTokenDistribution(logits, temperature, topK, topP), random());
}

// Continue the prompt `ids` by maxNewTokens tokens, yielding each new id as it is drawn
// (gptlib.sample.generate). A key/value cache (chapter 7) makes each step feed one token; once
// the text fills the context, the window slides and every position shifts, so each further step
// recomputes the last context_length tokens from a fresh cache, as gptlib does. A prompt longer
// than the context is cropped to its last context_length tokens.
export function* generate(model, ids, maxNewTokens, {temperature = 1, topK = null, topP = null,
                                                     random = Math.random} = {}) {
  const V = model.config.vocab_size, window = model.config.context_length;
  checkSamplingArgs(V, temperature, topK, topP);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`the number of new tokens must be an integer >= 0, got ${maxNewTokens}`);
  }
  if (ids.length === 0) throw new RangeError("the prompt is empty: give at least one token");
  const text = ids.slice();
  let cache = newCache(model);
  let logits = forward(model, text.slice(-window), cache).logits.at(-1);
  for (let step = 0; step < maxNewTokens; step++) {
    const next = sampleNext(logits, temperature, topK, topP, random);
    text.push(next);
    yield {id: next, logits};
    if (step === maxNewTokens - 1) break;
    if (cache.length < window) {
      logits = forward(model, [next], cache).logits[0];
    } else {
      cache = newCache(model);
      logits = forward(model, text.slice(-window), cache).logits.at(-1);
    }
  }
}
