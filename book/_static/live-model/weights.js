// The book's trained model as the page receives it: weights, configuration and tokenizer.
//
// The book's build (book/_ext/live_model.py) writes, next to this script, the cached Shakespeare
// model of chapter 7 as one file of little-endian float32 numbers and a JSON manifest (the
// architecture, the muP multipliers, each tensor's name, shape and byte offset, the tokenizer's
// alphabet, and the SHA-256 of the numbers). They are read from the book itself, never from the
// network, and the numbers are used only if their SHA-256 is the one the manifest records.

export const MANIFEST_URL = new URL("shakespeare-char.json", import.meta.url);
const FORMAT_VERSION = 1;

// An error the page shows to the reader as it is (it says what went wrong and what to do).
export class LiveModelError extends Error {}

async function fetchOrExplain(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new LiveModelError(
      `the browser could not read ${what} (${url.pathname.split("/").pop()}): ${error.message}. ` +
      (location.protocol === "file:"
        ? "Pages opened as files may not read other files; serve the book (make serve) and " +
          "open it at http://localhost."
        : "Is the book still being served?"));
  }
  if (!response.ok) {
    throw new LiveModelError(`${what} is missing from this book (${url.pathname}: HTTP ` +
                             `${response.status}). Rebuild the book with make book.`);
  }
  return response;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Little-endian float32 numbers as a Float32Array (a copy on the rare big-endian machine).
function float32s(buffer, offset, count) {
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (littleEndian) return new Float32Array(buffer, offset, count);
  const view = new DataView(buffer, offset, 4 * count), out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// Load and check the model: {config, tensors, tokenizer, manifest}. tensors[name] is the
// Float32Array of gptlib's tensor `name` (e.g. "transformer.h.0.attn.c_attn.weight"), row-major.
export async function loadModel(manifestUrl = MANIFEST_URL) {
  const manifest = await (await fetchOrExplain(manifestUrl, "the model's manifest")).json();
  if (manifest.format_version !== FORMAT_VERSION) {
    throw new LiveModelError(`the model's manifest has format ${manifest.format_version}, ` +
                             `this page reads format ${FORMAT_VERSION}: rebuild the book.`);
  }
  const file = new URL(manifest.weights.file, manifestUrl);
  const buffer = await (await fetchOrExplain(file, "the model's weights")).arrayBuffer();
  if (buffer.byteLength !== manifest.weights.bytes) {
    throw new LiveModelError(`the model's weights file has ${buffer.byteLength} bytes, but the ` +
                             `manifest says ${manifest.weights.bytes}: it is damaged or from ` +
                             `another build of the book. Rebuild the book with make book.`);
  }
  if (!(globalThis.crypto && crypto.subtle)) {
    throw new LiveModelError(
      "this browser offers no SHA-256 here (crypto.subtle exists only on https:// and " +
      "http://localhost pages), so the model's weights cannot be checked. Open the book on " +
      "localhost (make serve) or over https.");
  }
  const digest = hex(await crypto.subtle.digest("SHA-256", buffer));
  if (digest !== manifest.weights.sha256) {
    throw new LiveModelError(`the model's weights file has SHA-256 ${digest}, not the ` +
                             `${manifest.weights.sha256} its manifest records: it is damaged ` +
                             `or from another build of the book, so the page does not use it. ` +
                             `Rebuild the book with make book.`);
  }
  const tensors = {};
  for (const {name, shape, offset} of manifest.tensors) {
    tensors[name] = float32s(buffer, offset, shape.reduce((a, b) => a * b, 1));
  }
  return {config: manifest.config, tensors, tokenizer: new CharTokenizer(manifest.alphabet),
          manifest};
}

// The character tokenizer of chapter 1 (gptlib.tokenizer.CharTokenizer): token i is the i-th
// character of the alphabet, the sorted characters of the plays.
export class CharTokenizer {
  constructor(alphabet) {
    this.chars = Array.from(alphabet);
    this.ids = new Map(this.chars.map((ch, i) => [ch, i]));
  }

  // The characters of `text` that are not in the alphabet, each once, in order of appearance.
  unknown(text) {
    return [...new Set(Array.from(text).filter((ch) => !this.ids.has(ch)))];
  }

  encode(text) {
    const unknown = this.unknown(text);
    if (unknown.length) throw new PromptError(this.unknownMessage(unknown));
    return Array.from(text, (ch) => this.ids.get(ch));
  }

  decode(ids) {
    return ids.map((i) => this.chars[i]).join("");
  }

  // The alphabet in words: "the letters A-Z and a-z, the digits 0-9, space, newline and ! ...".
  describe() {
    const has = (s) => Array.from(s).every((c) => this.ids.has(c));
    const parts = [], covered = new Set();
    const group = (chars, words) => {
      if (has(chars)) {
        parts.push(words);
        for (const c of chars) covered.add(c);
      }
    };
    group("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "the letters A-Z");
    group("abcdefghijklmnopqrstuvwxyz", "a-z");
    group("0123456789", "the digits 0-9");
    group(" ", "space");
    group("\n", "newline (Enter)");
    const rest = this.chars.filter((c) => !covered.has(c));
    return `${parts.join(", ")} and ${rest.join(" ")}`;
  }

  unknownMessage(unknown) {
    const shown = unknown.map(showChar).join(", ");
    return `The model knows only the ${this.chars.length} characters of the plays: ` +
           `${this.describe()}. Not among them: ${shown}. Replace or remove ` +
           `${unknown.length === 1 ? "it" : "them"}.`;
  }
}

export class PromptError extends Error {}

// A character as the reader can see it in a message: "é" (U+00E9), a tab as "tab (U+0009)".
export function showChar(ch) {
  const code = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  const names = {"\t": "tab", "\r": "carriage return", "\u00a0": "no-break space"};
  return names[ch] ? `${names[ch]} (${code})` : `"${ch}" (${code})`;
}

// The ids of a prompt the model can read, or a PromptError that says what is wrong: an empty
// prompt, characters outside the alphabet, or more characters than the context holds.
export function encodePrompt(model, text) {
  if (text.length === 0) {
    throw new PromptError("The prompt is empty: type at least one character for the model to " +
                          "continue.");
  }
  const ids = model.tokenizer.encode(text);
  const context = model.config.context_length;
  if (ids.length > context) {
    throw new PromptError(`The prompt has ${ids.length} characters, but the model sees at most ` +
                          `${context} (its context length): remove ${ids.length - context}.`);
  }
  return ids;
}
