// The live widgets of the book: chapter 3's attention explorer and chapter 7's sampling
// playground, run by the book's trained model in this page (no kernel, no server).
//
// A chapter asks for one with a placeholder in a Markdown cell,
//   <div class="live-model" data-widget="attention-explorer">fallback text</div>
// (or data-widget="sampling-playground"; data-prompt="..." sets the first prompt). This script
// replaces the fallback text, which is what a reader without JavaScript keeps seeing, with the
// widget. The figures are drawn with the book's own plotly.js (the page loads it).

import {erf, forward, gelu, layerNorm, linear, newCache, softmax} from "./model.js";
import {argmax, checkSamplingArgs, drawFrom, generate, nextTokenDistribution, sampleNext,
        seededRandom, topKFilter, topPFilter} from "./sampling.js";
import {CharTokenizer, LiveModelError, PromptError, encodePrompt, loadModel} from "./weights.js";

const VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥"};  // as gptlib.viz shows them on an axis
const MASK_COLOUR = "#DDDDDD";  // the causal mask's grey, as in the chapter's explorer
const COLOURSCALE = "Viridis";  // gptlib.viz.SEQUENTIAL
const BAR_COLOUR = "#0072B2";   // gptlib.viz.PALETTE[0]
const TOP_TOKENS = 30;          // bars in the distribution, as the chapter's figures draw
const PLOT_CONFIG = {displaylogo: false, responsive: true};

const label = (ch) => VISIBLE[ch] ?? ch;

// For the book's browser test and for curious readers (open the browser's console):
// `await liveModel.loaded` is the model; the functions are those of model.js and sampling.js.
// The mark says when the weights were in and checked (the book's test reports it).
const loaded = loadModel().then((model) => {
  performance.mark("live-model:loaded");
  return model;
});
loaded.catch(() => {});  // each widget shows the error itself
window.liveModel = {loaded, forward, newCache, erf, gelu, layerNorm, linear, softmax,
                    nextTokenDistribution, topKFilter, topPFilter, sampleNext, argmax,
                    checkSamplingArgs, seededRandom, drawFrom, generate, encodePrompt,
                    CharTokenizer};

// ------------------------------------------------------------------------------ helpers
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

let nextId = 0;
function field(text, input, hint = "") {
  input.id ||= `live-model-${nextId++}`;
  const box = element("div", {class: "live-model-field"},
                      element("label", {for: input.id, text}), input);
  if (hint) box.append(element("span", {class: "live-model-hint", text: hint}));
  return box;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// A message in place of the figure: bad input, or a model that could not load.
function showMessage(box, text, kind = "input") {
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
}

function markFirstResult(root) {
  if (root.dataset.firstResult) return;
  root.dataset.firstResult = String(performance.now());
  performance.mark(`live-model:first-result:${root.dataset.widget}`);
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 0));

// ------------------------------------------------------------------ the attention explorer

// Attention weights at another softmax temperature, from the weights alone (as the chapter's
// explorer does, exercise 3.4): if w = softmax(s), then softmax(s / tau) is w^(1/tau)
// renormalised, because each row's normaliser cancels. Masked keys (weight 0) stay at 0.
export function retemper(row, tau) {
  let top = -Infinity;
  const logw = Array.from(row, (w) => Math.log(w));
  for (const v of logw) if (v > top) top = v;
  const out = logw.map((v) => Math.exp((v - top) / tau));
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / sum);
}

function attentionExplorer(root, model) {
  const {n_layer: L, n_head: H, d_model: C, context_length: context} = model.config;
  const text = element("textarea", {rows: 3, spellcheck: false, class: "live-model-prompt"});
  text.value = root.dataset.prompt ?? "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?";
  const options = (n, name) => [...Array.from({length: n}, (_, i) =>
    element("option", {value: String(i), text: `${name} ${i}`})),
    element("option", {value: "all", text: `all ${name}s`})];
  const layer = element("select", {}, ...options(L, "layer"));
  const head = element("select", {}, ...options(H, "head"));
  // log2 of the temperature, from 1/4 to 4 (the chapter's explorer offers 0.25, 0.5, 1, 2, 4)
  const temperature = element("input", {type: "range", min: "-2", max: "2", step: "0.25",
                                        value: "0"});
  const tauText = element("output", {text: "τ = 1 (as trained)"});
  const message = element("p", {class: "live-model-message", role: "status", hidden: true});
  const plot = element("div", {class: "live-model-plot"});
  root.replaceChildren(
    field("Text (any characters of the plays, up to " + context + ")", text),
    element("div", {class: "live-model-controls"},
            field("layer", layer), field("head", head),
            field("softmax temperature", temperature), tauText),
    message, plot,
    element("p", {class: "live-model-caption", text:
      `Computed in this page by the book's trained Shakespeare model of chapter 7 (${L} layers ` +
      `of ${H} heads, width ${C}, trained with muP, so its scores are scaled by 1/D = ` +
      `${model.config.attention_scale}, section 3.7), not the small model trained above. ` +
      `Type to change the text; the weights are recomputed as you type. The temperature ` +
      `re-tempers each head's softmax for display only, as in the figure above.`}));

  let state = null;  // {attention (L, H, T, T), labels} of the last text the model could read

  function compute() {
    try {
      const ids = encodePrompt(model, text.value);
      state = {attention: forward(model, ids).attention, labels: Array.from(text.value, label)};
      message.hidden = true;
      draw();
    } catch (error) {
      if (!(error instanceof PromptError)) throw error;
      state = null;
      plot.hidden = true;
      root.dataset.state = "message";
      showMessage(message, error.message);
    }
  }

  function draw() {
    if (!state) return;
    const tau = 2 ** Number(temperature.value);
    tauText.textContent = `τ = ${+tau.toFixed(3)}${tau === 1 ? " (as trained)" : ""}`;
    const {attention, labels} = state;
    const T = labels.length;
    const layers = layer.value === "all" ? [...Array(L).keys()] : [Number(layer.value)];
    const heads = head.value === "all" ? [...Array(H).keys()] : [Number(head.value)];
    // One heatmap, a grid of T x T tiles (layers down, heads across), as in the chapter's
    // explorer; masked cells (a key after its query) are left empty and show the grey.
    const z = [];
    for (const l of layers) {
      for (let i = 0; i < T; i++) {
        const row = [];
        for (const h of heads) {
          const w = retemper(attention[l][h][i], tau);
          for (let j = 0; j < T; j++) row.push(j > i ? null : 100 * w[j]);
        }
        z.push(row);
      }
    }
    // Category names are unique over the grid and are what the hover shows.
    const y = layers.flatMap((l) => labels.map((c, i) => `layer ${l} · query #${i} '${c}'`));
    const x = heads.flatMap((h) => labels.map((c, j) => `head ${h} · key #${j} '${c}'`));
    const every = Math.ceil(T / 64);  // at most 64 tick labels on an axis
    const ticks = (names, tiles, name) => tiles.length > 1
      ? {tickvals: tiles.map((t, k) => names[k * T + Math.floor(T / 2)]),
         ticktext: tiles.map((t) => `${name} ${t}`)}
      : {tickvals: names.filter((_, k) => k % every === 0),
         ticktext: labels.filter((_, k) => k % every === 0)};
    const lines = [];
    for (let k = 1; k < heads.length; k++) {
      lines.push({type: "line", x0: k * T - 0.5, x1: k * T - 0.5, y0: -0.5,
                  y1: layers.length * T - 0.5, line: {color: "white", width: 3}});
    }
    for (let k = 1; k < layers.length; k++) {
      lines.push({type: "line", y0: k * T - 0.5, y1: k * T - 0.5, x0: -0.5,
                  x1: heads.length * T - 0.5, line: {color: "white", width: 3}});
    }
    const which = `${layers.length > 1 ? "all layers" : `layer ${layers[0]}`}, ` +
                  `${heads.length > 1 ? "all heads" : `head ${heads[0]}`}`;
    plot.hidden = false;
    Plotly.react(plot, [{
      type: "heatmap", z, x, y, zmin: 0, zmax: 100, colorscale: COLOURSCALE,
      hoverongaps: false, colorbar: {title: {text: "weight (%)"}, ticksuffix: "%"},
      hovertemplate: "%{y} → %{x}<br>weight: %{z:.1f}%<extra></extra>",
    }], {
      title: {text: `Each row is one character's attention over itself and the characters ` +
                    `before it<br>(${which}, τ = ${+tau.toFixed(3)})`, font: {size: 15}},
      height: 620, margin: {l: 90, r: 30, t: 70, b: 80}, plot_bgcolor: MASK_COLOUR,
      shapes: lines,
      xaxis: {title: {text: heads.length > 1 ? "key (one tile per head)"
                                             : "key: the character being looked at"},
              tickmode: "array", ...ticks(x, heads, "head"), tickangle: 0,
              tickfont: {size: 10}, showgrid: false, constrain: "domain"},
      yaxis: {title: {text: layers.length > 1 ? "query (one tile per layer)"
                                              : "query: the character doing the looking"},
              tickmode: "array", ...ticks(y, layers, "layer"), autorange: "reversed",
              tickfont: {size: 10}, showgrid: false, scaleanchor: "x", constrain: "domain"},
    }, PLOT_CONFIG).then(() => {
      root.dataset.state = "ready";
      root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
      markFirstResult(root);
    });
  }

  text.addEventListener("input", debounce(compute, 120));
  for (const control of [layer, head, temperature]) control.addEventListener("input", draw);
  compute();
}

// -------------------------------------------------------------------- the sampling playground

function samplingPlayground(root, model) {
  const V = model.config.vocab_size;
  const number = (value, attributes) => element("input", {type: "number", value, ...attributes});
  const prompt = element("textarea", {rows: 3, spellcheck: false, class: "live-model-prompt"});
  prompt.value = root.dataset.prompt ?? "ROMEO:\n";
  const temperature = number("0.8", {min: "0", step: "0.05"});
  const topK = number("0", {min: "0", max: String(V), step: "1"});
  const topP = number("1", {min: "0", max: "1", step: "0.05"});
  const length = number("200", {min: "1", max: "2000", step: "10"});
  const seed = number("0", {min: "0", max: String(0xffffffff), step: "1"});
  const again = element("button", {type: "button", text: "next seed"});
  const message = element("p", {class: "live-model-message", role: "status", hidden: true});
  const plot = element("div", {class: "live-model-plot"});
  const promptText = element("span", {class: "live-model-prompt-text"});
  const continuation = element("span", {class: "live-model-continuation"});
  const sample = element("pre", {class: "live-model-sample"}, promptText, continuation);
  const status = element("p", {class: "live-model-status"});
  root.replaceChildren(
    field("Prompt (any characters of the plays, up to " + model.config.context_length + ")",
          prompt),
    element("div", {class: "live-model-controls"},
            field("temperature", temperature, "0 = greedy"),
            field("top-k", topK, "0 = off"), field("top-p", topP, "1 = off"),
            field("new characters", length), field("seed", seed), again),
    message, plot, sample, status,
    element("p", {class: "live-model-caption", text:
      "Computed in this page by the book's trained Shakespeare model, with the sampling rules " +
      "of gptlib.sample: temperature, then top-k, then top-p, then softmax. The seed drives " +
      "this page's own random generator (Mulberry32), so the same prompt, settings and seed " +
      "give the same text here every time; it is not torch's generator, so the notebook's " +
      "generate_text(..., seed=) draws a different text for the same seed."}));

  let run = 0;  // the newest sampling run; an older one stops when a newer one starts

  function settings() {
    const read = (input, name) => {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) {
        throw new PromptError(`${name} must be a number, got "${input.value}".`);
      }
      return value;
    };
    const t = read(temperature, "The temperature");
    const k = read(topK, "Top-k");
    const p = read(topP, "Top-p");
    const n = read(length, "The number of new characters");
    const s = read(seed, "The seed");
    if (!Number.isInteger(n) || n < 1 || n > 2000) {
      throw new PromptError(`The number of new characters must be a whole number from 1 to ` +
                            `2000, got ${n}.`);
    }
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) {
      throw new PromptError(`The seed must be a whole number from 0 to ${0xffffffff}, got ${s}.`);
    }
    if (!(Number.isInteger(k) && k >= 0 && k <= V)) {
      throw new PromptError(`Top-k must be a whole number from 1 to ${V} (the vocabulary), or ` +
                            `0 for off; got ${k}.`);
    }
    const settings = {temperature: t, topK: k === 0 ? null : k, topP: p === 1 ? null : p,
                      length: n, seed: s};
    try {
      checkSamplingArgs(V, settings.temperature, settings.topK, settings.topP);
    } catch (error) {
      throw new PromptError(error.message[0].toUpperCase() + error.message.slice(1) + ".");
    }
    return settings;
  }

  async function update() {
    const mine = ++run;
    let ids, s;
    try {
      ids = encodePrompt(model, prompt.value);
      s = settings();
    } catch (error) {
      if (!(error instanceof PromptError)) throw error;
      plot.hidden = true;
      sample.hidden = true;
      status.textContent = "";
      root.dataset.state = "message";
      root.dataset.sampleState = "none";
      showMessage(message, error.message);
      return;
    }
    message.hidden = true;
    // The distribution of the next character after the prompt, under these settings.
    const logits = forward(model, ids).logits.at(-1);
    const probs = nextTokenDistribution(logits, s.temperature, s.topK, s.topP);
    drawDistribution(probs);
    // The sample, character by character, as it is drawn.
    sample.hidden = false;
    promptText.textContent = prompt.value;
    continuation.textContent = "";
    root.dataset.sampleState = "running";
    const random = seededRandom(s.seed);
    const started = performance.now();
    let count = 0;
    for (const {id} of generate(model, ids, s.length, {...s, random})) {
      if (mine !== run) return;  // a newer run has started
      continuation.textContent += model.tokenizer.chars[id];
      count++;
      status.textContent = `sampling: ${count} of ${s.length} characters`;
      await pause();  // let the page show it
      if (mine !== run) return;
    }
    const seconds = (performance.now() - started) / 1000;
    status.textContent = `${count} characters in ${seconds.toFixed(1)} s, seed ${s.seed}`;
    root.dataset.sampleState = "done";
    root.dataset.samples = String(Number(root.dataset.samples || 0) + 1);
  }

  function drawDistribution(probs) {
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b)
      .slice(0, TOP_TOKENS);
    const possible = probs.filter((p) => p > 0).length;
    let entropy = 0;
    for (const p of probs) if (p > 0) entropy -= p * Math.log2(p);
    const top = probs[order[0]];
    plot.hidden = false;
    Plotly.react(plot, [{
      type: "bar", x: order.map((i) => label(model.tokenizer.chars[i])),
      y: order.map((i) => probs[i]), marker: {color: BAR_COLOUR},
      hovertemplate: "token %{x}<br>probability %{y:.3f}<extra></extra>",
    }], {
      title: {text: `After this prompt: ${possible} character${possible === 1 ? "" : "s"} can ` +
                    `be drawn, entropy ${(entropy + 0).toFixed(2)} bits`, font: {size: 15}},
      xaxis: {title: {text: `next character (the ${order.length} most likely)`},
              type: "category"},
      yaxis: {title: {text: "probability"}, range: [0, possible === 1 ? 1.05 : 1.1 * top]},
      height: 340, margin: {t: 60, b: 50}, bargap: 0.15,
    }, PLOT_CONFIG).then(() => {
      root.dataset.state = "ready";
      root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
      markFirstResult(root);
    });
  }

  const later = debounce(update, 150);
  prompt.addEventListener("input", later);
  for (const control of [temperature, topK, topP, length, seed]) {
    control.addEventListener("input", later);
  }
  again.addEventListener("click", () => {
    const s = Number(seed.value);
    seed.value = String(Number.isInteger(s) && s >= 0 && s < 0xffffffff ? s + 1 : 0);
    update();
  });
  update();
}

// --------------------------------------------------------------------------- start

const WIDGETS = {"attention-explorer": attentionExplorer, "sampling-playground": samplingPlayground};

async function start(root) {
  const make = WIDGETS[root.dataset.widget];
  if (!make) {
    root.textContent = `(unknown live widget "${root.dataset.widget}"; the book has ` +
                       `${Object.keys(WIDGETS).join(", ")})`;
    return;
  }
  root.dataset.state = "loading";
  const fallback = root.textContent.trim();
  root.replaceChildren(element("p", {class: "live-model-status",
                                     text: "Loading the book's model ..."}));
  try {
    if (typeof Plotly === "undefined") {
      throw new LiveModelError("plotly.js, which draws the figures, did not load");
    }
    make(root, await loaded);
  } catch (error) {
    const why = error instanceof LiveModelError ? error.message : `${error.name}: ${error.message}`;
    root.dataset.state = "error";
    root.replaceChildren(element("p", {class: "live-model-message", "data-kind": "error",
                                       role: "alert",
                                       text: `The live model could not start: ${why}`}),
                         element("p", {class: "live-model-caption", text: fallback}));
    if (!(error instanceof LiveModelError)) console.error(error);
  }
}

document.querySelectorAll(".live-model[data-widget]").forEach(start);
