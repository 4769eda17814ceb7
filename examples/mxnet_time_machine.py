"""Seeds 000/001: "RNNs for language modeling" from scratch (MXNet, the straight dope).

The seed's model: one-hot characters -> tanh RNN with 256 hidden units -> softmax, weights
N(0, 0.01); the text cut into 64-character sequences dealt into 32 batch rows (row b holds
sequences b*S .. b*S+S-1, so rows continue from batch to batch and the state is carried;
it restarts at each epoch); the loss averaged over the 64 steps; plain SGD at lr 0.5 with no
gradient clipping, halved every 100 epochs; 2,000 epochs; after each epoch, a 1,024-character
sample at temperature 0.1 from "The Time Ma".

The seed prints no loss figures: it reports a vocabulary of 77 characters in 179,533
(its Gutenberg copy minus 38,083 characters of licence), 2,805 sequences, 87 per batch row,
and describes its samples: after 1 epoch "e  e ee e", then "the the the ...", and by
epoch 175 "the little people had been as I store of the sungher had leartered along ...".
Our timemachine.txt is d2l's copy, which has no licence text, so nothing is cut.

    python examples/mxnet_time_machine.py --epochs 200      # as far as time allows
    python examples/mxnet_time_machine.py --quick
"""

import argparse
import time

from scanrnn.data import Vocab, batch_rows, load_corpus
from scanrnn.lm import CharLM, TrainConfig, Trainer

SEED = {"vocab": 77, "chars": 179_533, "sequences": 2_805, "per_row": 87}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--sample-every", type=int, default=10, help="epochs between samples")
    ap.add_argument("--sample-length", type=int, default=1024)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true", help="2 epochs on 20,000 characters")
    args = ap.parse_args(argv)

    text = load_corpus("timemachine")
    vocab = Vocab(text, unk=None)                  # every character of the book, no <unk>
    ids = vocab.encode(text)
    hidden, epochs = 256, args.epochs
    if args.quick:
        ids, hidden, epochs, args.sample_every, args.sample_length = ids[:20_000], 64, 2, 1, 80
    layout = batch_rows(ids, 32, 64)
    n_seq = (len(ids) - 1) // 64
    print(f"characters: ours {len(ids):,} | seed {SEED['chars']:,}")
    print(f"vocabulary: ours {len(vocab)} | seed {SEED['vocab']}")
    print(f"64-char sequences: ours {n_seq:,}, {len(layout)} per batch row | seed "
          f"{SEED['sequences']:,}, {SEED['per_row']} per batch row")

    model = CharLM(vocab_size=len(vocab), cell="tanh", layers=1, hidden=hidden, embed=0,
                   dropout=0.0, init="normal", init_scale=0.01)
    cfg = TrainConfig(seq_len=64, batch_size=32, sampling="rows", epochs=epochs, minutes=None,
                      optimizer="sgd", lr=0.5, clip=0, schedule="halve", halve_every=100,
                      patience=None, restore_best=False, backend=args.backend,
                      sample_every=args.sample_every, sample_prefixes=("The Time Ma",),
                      sample_length=args.sample_length, sample_temperature=0.1,
                      print_every=args.sample_every, progress=False)
    trainer = Trainer(model, cfg, ids, None, vocab)
    start = time.perf_counter()
    history = trainer.fit()
    last = history[-1]
    print(f"after {last['epoch']} epochs: mean training loss {last['train_loss']:.4f} "
          f"(perplexity {last['train_perplexity']:.3f}); {trainer.tokens_per_second:,.0f} "
          f"tokens/s on this CPU, {time.perf_counter() - start:.1f} s wall "
          f"(the seed gives no loss or speed figures; it ran on a K80 GPU)")


if __name__ == "__main__":
    main()
