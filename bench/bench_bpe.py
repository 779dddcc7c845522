"""Time to train the book's byte-level BPE tokenizer on the whole Shakespeare corpus."""
import argparse

from common import Timer, machine
from gptlib.data import load_shakespeare
from gptlib.tokenizer import gpt2, train_bpe

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab-size", type=int, default=1024)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    text = load_shakespeare()
    with Timer() as t:
        enc = train_bpe(text, args.vocab_size)
    n_bytes = len(text.encode("utf-8"))
    print(f"trained a {enc.n_vocab}-token BPE on {len(text):,} characters in {t.seconds:.1f} s")
    with Timer() as t2:
        ids = enc.encode_ordinary(text)
    print(f"encoding the corpus with it: {t2.seconds:.2f} s, {n_bytes / len(ids):.2f} bytes/token "
          f"(GPT-2's 50257-token BPE: {n_bytes / len(gpt2().encode_ordinary(text)):.2f} bytes/token)")
