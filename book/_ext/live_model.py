"""The book's own trained model, run in the reader's browser: weights as a static asset.

The static book cannot run Python, but it can run JavaScript. This extension makes the book's
trained Shakespeare model (``gptlib.book_model("shakespeare-char")``, built by ``make data``)
part of the built book, so that chapter 3's live attention explorer and chapter 7's live sampling
playground run the trained model in the page, with no kernel and no server:

* **The weights.** At the start of every HTML build the model's tensors are written into
  ``_static/live-model/`` as one little-endian float32 file and a JSON manifest
  (``shakespeare-char.json``): the architecture, the muP multipliers and the attention scale the
  forward pass needs, the tokenizer's alphabet, each tensor's name, shape and byte offset, and the
  SHA-256 of the binary, which the page checks before it uses the numbers. The binary's name holds
  the start of that hash (``shakespeare-char.<16 hex digits>.f32.bin``), so a browser's cache can
  never pair a new manifest with old weights; an older weights file left in the folder is removed.
  The tied output head is not stored twice. A missing or stale cached model fails the build with a
  message that says to run ``make data``; so does a model the page's forward pass does not
  implement (another activation, no biases, an untied head) or weights over :data:`MAX_BYTES`.
* **The widgets.** A chapter asks for a widget with a Markdown cell that holds a placeholder,
  ``<div class="live-model" data-widget="attention-explorer">fallback text</div>`` (or
  ``sampling-playground``); the script replaces the fallback text, which is what a reader without
  JavaScript sees. An unknown ``data-widget`` is a build warning (an error under ``-W``).
* **The scripts.** Only pages with a placeholder load the widgets (``_static/live-model/*.js``,
  plain ES modules, no build step) and their style sheet, and, if the page draws no plotly figure
  of its own, the book's one copy of plotly.js (``plotly_static``), which the widgets draw with.

``python book/_ext/live_model.py export DIR`` writes the same two files into ``DIR``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

MODEL_NAME = "shakespeare-char"
STATIC_FOLDER = "live-model"  # under _static: book/_static/live-model holds the scripts
WEIGHTS_PATTERN = f"{MODEL_NAME}.*.f32.bin"  # the weights file: MODEL_NAME.<hash>.f32.bin
MANIFEST_FILE = f"{MODEL_NAME}.json"
FORMAT_VERSION = 1
MAX_BYTES = 3_000_000  # the weights file, at most 3 MB
WIDGETS = ("attention-explorer", "sampling-playground")
SCRIPT = f"{STATIC_FOLDER}/widgets.js"
STYLE = f"{STATIC_FOLDER}/live-model.css"
# A placeholder: an HTML element whose class list holds "live-model", with its data-widget.
PLACEHOLDER = re.compile(r"""<(\w+)\b[^>]*\bclass\s*=\s*["'](?:[^"']*\s)?live-model(?:\s[^"']*)?["'][^>]*>""")
WIDGET_ATTRIBUTE = re.compile(r"""\bdata-widget\s*=\s*["']([^"']*)["']""")
PREPARE = "make data"


class LiveModelError(Exception):
    """The book's model cannot be exported for the page; the message says what to do."""


# ----------------------------------------------------------------------------- the model
def load_book_model():
    """The book's cached model as ``(model, tokenizer, record)``: a ``gptlib.GPT`` in eval mode,
    its ``CharTokenizer`` and the cache's record (the corpus's SHA-256, steps, loss).

    This is the one place that names ``gptlib.book_models``. It never trains: a model that is not
    cached, or was cached with another recipe, corpus or version of gptlib, raises
    :class:`LiveModelError`.
    """
    from gptlib import book_models  # the one import of the book's model cache

    status = book_models.cache_status(MODEL_NAME)
    if status != "ready":
        why = "is not built" if status == "missing" else f"is {status}"
        raise LiveModelError(
            f"the book's model {MODEL_NAME!r} {why}, so its weights cannot be put in the book "
            f"for the live widgets of chapters 3 and 7. Run `{PREPARE}` "
            f"({book_models.PREPARE_COMMAND}), which trains and caches it (a few minutes), then "
            f"build again.")
    try:
        cached = book_models.book_model(MODEL_NAME, progress=False)
    except Exception as error:  # a corrupt cache: its message says how to rebuild it
        raise LiveModelError(f"the book's model {MODEL_NAME!r} cannot be loaded: "
                             f"{error}") from None
    cached.model.eval()
    return cached.model, cached.tokenizer, {"val_loss": cached.val_loss, **_record(cached)}


def _record(cached) -> dict:
    from gptlib import book_models

    path = Path(cached.path) / book_models.RECORD_FILE
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {k: record[k] for k in ("steps", "data_sha256") if k in record}


def check_supported(model) -> None:
    """Refuse a model that the page's forward pass (``_static/live-model/model.js``) does not
    compute: it implements exact GELU, biases in every linear layer and LayerNorm, and an output
    head tied to the token embedding."""
    c = model.config
    problems = []
    if c.activation != "gelu":
        problems.append(f"activation {c.activation!r} (the page computes exact GELU, 'gelu')")
    if not c.bias:
        problems.append("no biases (the page expects a bias in every linear layer and LayerNorm)")
    if not c.tie_embeddings or model.lm_head.weight is not model.transformer.wte.weight:
        problems.append("an output head that is not tied to the token embedding")
    if problems:
        raise LiveModelError(f"the book's model {MODEL_NAME!r} has {'; '.join(problems)}: update "
                             f"_static/live-model/model.js and book/_ext/live_model.py together")


def model_tensors(model) -> list[tuple[str, "object"]]:
    """``(name, float32 numpy array)`` for every tensor the forward pass reads, in the model's own
    order and with gptlib's names; the tied head (``lm_head.weight``) is left out. Linear weights
    keep torch's ``(out, in)`` layout."""
    import torch

    tensors = []
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # the same matrix as transformer.wte.weight
        tensors.append((name, tensor.detach().to("cpu", torch.float32).contiguous().numpy()))
    return tensors


def export(model, tokenizer, record: dict | None = None) -> tuple[bytes, dict]:
    """The weights file's bytes and the manifest that describes them.

    Returns:
        ``(binary, manifest)``: every tensor of :func:`model_tensors`, little-endian float32, one
        after another; the manifest names each with its shape and byte offset, and holds the
        binary's SHA-256, the configuration, the muP multipliers, the attention scale and the
        tokenizer's alphabet.
    """
    import numpy as np

    check_supported(model)
    c = model.config
    chunks, entries, offset = [], [], 0
    for name, array in model_tensors(model):
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        entries.append({"name": name, "shape": list(array.shape), "offset": offset})
        chunks.append(data)
        offset += len(data)
    binary = b"".join(chunks)
    if len(binary) > MAX_BYTES:
        raise LiveModelError(f"the weights of {MODEL_NAME!r} take {len(binary):,} bytes, more than "
                             f"the {MAX_BYTES:,} the book allows a page to download")
    alphabet = "".join(tokenizer.chars)
    if len(alphabet) != c.vocab_size:
        raise LiveModelError(f"the tokenizer has {len(alphabet)} characters but the model's "
                             f"vocabulary has {c.vocab_size}")
    attention_scale = model.transformer.h[0].attn.scale
    manifest = {
        "format": "building-cerebras-gpt live model",
        "format_version": FORMAT_VERSION,
        "model": MODEL_NAME,
        "config": {
            "vocab_size": c.vocab_size, "context_length": c.context_length,
            "n_layer": c.n_layer, "n_head": c.n_head, "d_model": c.d_model,
            "d_head": c.d_model // c.n_head, "d_ffn": c.d_ffn,
            "layer_norm_eps": c.layer_norm_eps, "activation": c.activation, "mup": c.mup,
            # what the forward pass multiplies by (chapter 8): 1, 1/sqrt(D), 1 without muP
            "embedding_multiplier": float(model.embedding_multiplier),
            "attention_scale": float(attention_scale),
            "logit_multiplier": float(model.logit_multiplier),
            "tied_head": True,
        },
        "alphabet": alphabet,
        "weights": {"file": weights_file_name(binary), "dtype": "float32", "byte_order": "little",
                    "bytes": len(binary), "sha256": hashlib.sha256(binary).hexdigest(),
                    "layout": "row-major; a linear layer's weight is (out, in): y = W x + b"},
        "tensors": entries,
        "source": {"val_loss_nats_per_char": (record or {}).get("val_loss"),
                   **{k: v for k, v in (record or {}).items() if k != "val_loss"}},
    }
    return binary, manifest


def weights_file_name(binary: bytes) -> str:
    """The weights file's name: the model's name and the first 16 hex digits of its SHA-256."""
    return f"{MODEL_NAME}.{hashlib.sha256(binary).hexdigest()[:16]}.f32.bin"


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a web server must be able to read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_weights(folder: Path) -> dict:
    """Write the weights file and its manifest into ``folder``; return the manifest."""
    model, tokenizer, record = load_book_model()
    binary, manifest = export(model, tokenizer, record)
    folder = Path(folder)
    name = manifest["weights"]["file"]
    _write_if_changed(folder / name, binary)
    for old in folder.glob(WEIGHTS_PATTERN):  # the weights of an earlier build
        if old.name != name:
            old.unlink()
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    _write_if_changed(folder / MANIFEST_FILE, text.encode("utf-8"))
    return manifest


# -------------------------------------------------------------------------------- Sphinx
def write_static_weights(app) -> None:
    if app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError
    from sphinx.util import logging

    try:
        manifest = write_weights(Path(app.outdir) / "_static" / STATIC_FOLDER)
    except LiveModelError as error:
        raise ExtensionError(f"live model: {error}") from None
    logging.getLogger(__name__).info(
        f"live model: {MODEL_NAME} weights ({manifest['weights']['bytes']:,} bytes) in "
        f"_static/{STATIC_FOLDER}/")


def page_widgets(doctree) -> list[str]:
    """The ``data-widget`` of every live-model placeholder on a page ("" where it has none)."""
    from docutils import nodes

    found = []
    for node in doctree.findall(nodes.raw):
        if "html" not in node.get("format", ""):
            continue
        for match in PLACEHOLDER.finditer(node.astext()):
            widget = WIDGET_ATTRIBUTE.search(match.group(0))
            found.append(widget.group(1) if widget else "")
    return found


def check_placeholders(app, doctree) -> None:
    """A placeholder must name a widget the script knows."""
    from sphinx.util import logging

    for widget in page_widgets(doctree):
        if widget not in WIDGETS:
            logging.getLogger(__name__).warning(
                f"a live-model placeholder asks for data-widget={widget!r}; the widgets are "
                f"{', '.join(WIDGETS)}", location=app.env.docname)


def load_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Pages with a placeholder load the widgets, their style sheet and plotly.js."""
    if doctree is None or not page_widgets(doctree):
        return
    import plotly_static  # the book's extension that serves plotly.js (same folder)

    has_figures, _ = plotly_static.page_has_figures(doctree)
    if not has_figures:  # otherwise plotly_static already loads it in <head>
        app.add_js_file(None, body=plotly_static.PLOTLY_CONFIG_JS, priority=400)
        app.add_js_file(plotly_static.STATIC_NAME, priority=401)
    app.add_css_file(STYLE)
    app.add_js_file(SCRIPT, type="module", priority=800)


def setup(app) -> dict:
    app.connect("builder-inited", write_static_weights)
    app.connect("doctree-read", check_placeholders)
    app.connect("html-page-context", load_scripts)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "export":
        sys.exit(f"usage: python {Path(__file__).name} export DIR")
    try:
        written = write_weights(Path(sys.argv[2]))
    except LiveModelError as error:
        sys.exit(f"error: {error}")
    print(f"wrote {written['weights']['bytes']:,} bytes of weights and {MANIFEST_FILE} "
          f"into {sys.argv[2]}")
