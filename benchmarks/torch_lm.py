"""The PyTorch reference for `scanrnn train`: the same model, data split and time budget.

A plain PyTorch script of the kind a user would write: embedding 64 -> 2 x LSTM 256 (``--hidden
N`` for another width; dropout 0.3 between the layers) -> dropout 0.3 -> linear, Adam with
global-norm clipping at 1.0, sequential batches (d2l's sequential partitioning, a random offset
each epoch) with the state carried across batches and detached (truncated BPTT), validation
every ``--eval-minutes`` on the held-out text read as parallel streams with the state carried
(the same streams and burn-in as scanrnn's Evaluator). The text, its preprocessing, the
train/validation split and the vocabulary are scanrnn's (``scanrnn.lm.prepare_data``), so both
score the same held-out characters.

Recipes (``--recipe``): ``quoted`` (Adam 2e-3, no schedule: the script of the issue),
``cosine`` (Adam 3e-3, 2% warm-up then cosine to 0 over the budget).

    python benchmarks/torch_lm.py --corpus nietzsche --preprocess none --minutes 15

Prints one line per validation and, last, ``best held-out loss X nats/char at Ys``.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch
from torch import nn

from scanrnn.data import sequential_batches
from scanrnn.lm import TrainConfig, prepare_data
from scanrnn.lm.evaluate import stream_layout

RECIPES = {"quoted": dict(lr=2e-3, schedule="constant"),
           "cosine": dict(lr=3e-3, schedule="cosine")}


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int = 64, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.3, weight_drop: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, dropout=dropout)   # time-major
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)
        self.weight_drop = weight_drop
        self.recurrent = [f"weight_hh_l{i}" for i in range(layers)]

    def forward(self, x, state=None):
        if self.training and self.weight_drop:   # DropConnect: one mask per batch on W_hh
            dropped = {name: nn.functional.dropout(getattr(self.lstm, name), self.weight_drop)
                       for name in self.recurrent}
            h, state = torch.func.functional_call(self.lstm, dropped, (self.embed(x), state))
        else:
            h, state = self.lstm(self.embed(x), state)
        return self.out(self.drop(h)), state


def evaluate(model, ids: np.ndarray, streams: int = 64, seq_len: int = 256) -> float:
    """Mean cross-entropy over ``ids`` read as scanrnn's Evaluator reads them."""
    B, L, W = stream_layout(len(ids) - 1, streams, burn_in=seq_len)
    rows = np.arange(B)[None, :] * L + np.arange(L + W)[:, None]
    X, Y = torch.from_numpy(ids[rows]).long(), torch.from_numpy(ids[rows + 1]).long()
    mask = torch.ones(L + W, B)
    mask[:W, 1:] = 0.0
    model.eval()
    total, state = 0.0, None
    with torch.no_grad():
        for start in range(0, L + W, seq_len):
            sl = slice(start, start + seq_len)
            logits, state = model(X[sl], state)
            nll = nn.functional.cross_entropy(logits.flatten(0, 1), Y[sl].flatten(),
                                              reduction="none")
            total += float((nll * mask[sl].flatten()).sum())
    model.train()
    return total / float(mask.sum())


class WeightAverages:
    """Moving averages of a model's weights in a copy of it, as ``scanrnn.optim.ema``: each
    step ``a <- d a + (1 - d) w`` with ``d = min(decay, (1 + t) / (10 + t))``."""

    def __init__(self, model: nn.Module, decay: float):
        self.source, self.model, self.decay, self.t = model, copy.deepcopy(model), decay, 0

    @torch.no_grad()
    def update(self) -> None:
        self.t += 1
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        for average, weight in zip(self.model.parameters(), self.source.parameters()):
            average.mul_(d).add_(weight, alpha=1 - d)


def learning_rate(recipe: dict, frac: float, warmup: float = 0.02) -> float:
    if recipe["schedule"] == "constant":
        return recipe["lr"]
    if frac < warmup:
        return recipe["lr"] * max(frac / warmup, 0.01)
    frac = (frac - warmup) / (1 - warmup)
    return recipe["lr"] * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="nietzsche")
    p.add_argument("--preprocess", default="auto", choices=("auto", "none", "d2l"))
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--max-tokens", type=int, default=0,
                   help="stop after N training tokens, the schedule following the tokens "
                        "instead of the clock, as `scanrnn train --max-tokens` (default: by time)")
    p.add_argument("--recipe", default="quoted", choices=tuple(RECIPES))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--eval-minutes", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=256, help="LSTM units per layer (default 256)")
    p.add_argument("--dropout", type=float, default=0.3,
                   help="between the layers and before the output (default: 0.3, as quoted)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="AdamW's decoupled weight decay instead of Adam (default: 0, Adam)")
    p.add_argument("--weight-drop", type=float, default=0.0,
                   help="DropConnect on the recurrent weights, one mask per batch, as "
                        "`scanrnn train --weight-drop` (default: 0)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="validate moving averages of the weights with this decay per step, "
                        "as `scanrnn train --ema` (default: 0, the weights themselves)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = prepare_data(TrainConfig(corpus=args.corpus, preprocess=args.preprocess,
                                    minutes=None))
    recipe = RECIPES[args.recipe]
    model = CharLSTM(len(data.vocab), hidden=args.hidden, dropout=args.dropout,
                     weight_drop=args.weight_drop)
    opt = (torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=args.weight_decay)
           if args.weight_decay else torch.optim.Adam(model.parameters(), lr=recipe["lr"]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; corpus "
          f"{args.corpus}: {len(data.train_ids):,} train / {len(data.val_ids):,} held-out "
          f"tokens, vocabulary {len(data.vocab)}; recipe {args.recipe} {recipe}, hidden "
          f"{args.hidden}, dropout "
          f"{args.dropout}, weight drop {args.weight_drop}, weight decay {args.weight_decay}, "
          f"ema {args.ema}", flush=True)
    averages = WeightAverages(model, args.ema) if args.ema else None
    scored = model if averages is None else averages.model   # what validation scores
    budget, start = 60.0 * args.minutes, time.perf_counter()
    best, best_at, last_eval, tokens, epoch = math.inf, 0.0, 0.0, 0, 0
    rng = np.random.default_rng(args.seed)

    def progress(now: float) -> float:
        """The schedule's fraction spent: tokens with --max-tokens, else the clock."""
        return tokens / args.max_tokens if args.max_tokens else now / budget

    def done(now: float) -> bool:
        return now >= budget or progress(now) >= 1

    while not done(time.perf_counter() - start):
        batches = sequential_batches(data.train_ids, args.batch_size, args.seq_len, rng)
        state = None                                      # reset at each epoch, as scanrnn
        for X, Y in zip(batches.X, batches.Y):
            now = time.perf_counter() - start
            if done(now):
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(recipe, progress(now))
            x = torch.from_numpy(np.ascontiguousarray(X.T)).long()
            y = torch.from_numpy(np.ascontiguousarray(Y.T)).long()
            if state is not None:
                state = tuple(s.detach() for s in state)
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if averages is not None:
                averages.update()
            tokens += x.numel()
            if time.perf_counter() - start - last_eval >= 60.0 * args.eval_minutes:
                last_eval = time.perf_counter() - start
                val = evaluate(scored, data.val_ids)
                if val < best:
                    best, best_at = val, last_eval
                print(f"{last_eval:7.1f}s epoch {epoch + 1} tokens {tokens:,} train "
                      f"{loss.item():.4f} val {val:.4f} (best {best:.4f})", flush=True)
        epoch += 1
    elapsed = time.perf_counter() - start
    val = evaluate(scored, data.val_ids)
    if val < best:
        best, best_at = val, elapsed
    print(f"final val {val:.4f} after {tokens:,} tokens; {tokens / elapsed:,.0f} tokens/s "
          f"over {elapsed:.0f}s (validation included)")
    print(f"best held-out loss {best:.4f} nats/char at {best_at:.0f}s")


if __name__ == "__main__":
    main()
