"""Seeds 002 and 003: d2l's character RNN from scratch, each with its own configuration.

Seed 002 (d2l 6.5, MXNet "gluonbook"): the first 10,000 characters of timemachine.txt
(newlines -> spaces, lowercased; 43 distinct), a one-hot tanh RNN with 512 hidden units,
weights N(0, 0.01), batch 32 x 64 steps, SGD lr 100 with the gradient clipped to norm 0.01,
500 epochs, random sampling vs. sequential partitioning. The seed reports the training
perplexity exp(mean batch loss of the epoch): 1.34 (random), 1.14 (sequential).

Seed 003 (d2l in PyTorch): the first 10,000 tokens of the d2l-preprocessed text (letters and
spaces; vocabulary 28), the same RNN, batch 32 x 35 steps, SGD lr 0.5, clipping at 1, 2,000
epochs, sequential partitioning: perplexity 1.02 at 110,834 tokens/s on the seed's GPU.

    python examples/d2l_rnn.py --seed-config 002            # both samplings, 500 epochs
    python examples/d2l_rnn.py --seed-config 003 --epochs 300
    python examples/d2l_rnn.py --quick                       # a few seconds
"""

import argparse
import time

from scanrnn.data import Vocab, d2l_corpus, gluonbook_preprocess, load_corpus
from scanrnn.lm import CharLM, TrainConfig, Trainer

SEEDS = {
    "002": dict(hidden=512, batch_size=32, seq_len=64, lr=100.0, clip=0.01, epochs=500,
                samplings=("random", "sequential"), pred_period=50,
                prefixes=("traveller", "time traveller"), pred_len=50, flavor="gluonbook",
                figures={"random": 1.34, "sequential": 1.14}, seed_tps=None,
                seed_epoch_s=0.21),
    "003": dict(hidden=512, batch_size=32, seq_len=35, lr=0.5, clip=1.0, epochs=2000,
                samplings=("sequential",), pred_period=25, prefixes=("time traveller",),
                pred_len=50, flavor="d2l", figures={"sequential": 1.0247},
                seed_tps=110_834, seed_epoch_s=None),
}


def load(seed: str):
    if seed == "002":
        text = gluonbook_preprocess(load_corpus("timemachine"), 10_000)
        vocab = Vocab(text, unk=None)              # the seed's 43 characters, no <unk>
        return vocab.encode(text), vocab
    ids, vocab = d2l_corpus("timemachine", max_tokens=10_000)   # vocabulary of the whole book
    return ids, vocab


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-config", choices=sorted(SEEDS), default="002")
    ap.add_argument("--sampling", choices=("random", "sequential"), default=None,
                    help="only this sampling (default: the seed's)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the seed's")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true", help="a few epochs of a small model")
    args = ap.parse_args(argv)
    s = dict(SEEDS[args.seed_config])
    ids, vocab = load(args.seed_config)
    samplings = (args.sampling,) if args.sampling else s["samplings"]
    epochs = args.epochs or s["epochs"]
    hidden = s["hidden"]
    if args.quick:
        epochs, hidden, samplings = 4, 64, samplings[:1]
    print(f"seed {args.seed_config}: {len(ids):,} tokens, vocabulary {len(vocab)}, "
          f"hidden {hidden}, batch {s['batch_size']} x {s['seq_len']}, SGD lr {s['lr']:g}, "
          f"clip {s['clip']:g}, {epochs} epochs")
    for sampling in samplings:
        model = CharLM(vocab_size=len(vocab), cell="tanh", layers=1, hidden=hidden, embed=0,
                       dropout=0.0, init="normal", init_scale=0.01)
        cfg = TrainConfig(seq_len=s["seq_len"], batch_size=s["batch_size"], sampling=sampling,
                          batch_flavor=s["flavor"], epochs=epochs, minutes=None,
                          optimizer="sgd", lr=s["lr"], clip=s["clip"], schedule="constant",
                          patience=None, restore_best=False, backend=args.backend,
                          sample_every=min(s["pred_period"], epochs),
                          sample_prefixes=s["prefixes"], sample_length=s["pred_len"],
                          sample_greedy=True, print_every=min(s["pred_period"], epochs),
                          progress=False)
        trainer = Trainer(model, cfg, ids, None, vocab)
        print(f"\n--- {sampling} sampling ({trainer.steps_per_epoch()} batches per epoch)")
        start = time.perf_counter()
        history = trainer.fit()
        wall = time.perf_counter() - start
        last = history[-1]
        tps = trainer.tokens_per_second
        seed_ppl = s["figures"].get(sampling)
        print(f"final training perplexity: ours {last['train_perplexity']:.4f} after "
              f"{last['epoch']} epochs | seed {seed_ppl} after {s['epochs']} epochs")
        seed_speed = (f"{s['seed_tps']:,} tokens/s (GPU)" if s["seed_tps"] else
                      f"{s['seed_epoch_s']} s/epoch (GPU)")
        print(f"speed: ours {tps:,.0f} tokens/s, {trainer.train_time / last['epoch']:.3f} "
              f"s/epoch on this CPU ({wall:.1f} s wall, compilation included) | seed "
              f"{seed_speed}")


if __name__ == "__main__":
    main()
