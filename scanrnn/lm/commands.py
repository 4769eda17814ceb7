"""``scanrnn sample`` and ``scanrnn eval``: a trained run's text and score."""

from __future__ import annotations

import sys

from ..cli_support import EXIT_OK, UsageError, check_backend, load_text
from ..data import Vocab, text_tokens
from .data import split_tokens
from .evaluate import evaluate_text, evaluate_tokens
from .interrupt import raise_if_interrupted
from .run import load_run
from .sample import encode_prefix, generate

__all__ = ["cmd_eval", "cmd_sample"]


def _load(args):
    if args.checkpoint not in ("best", "latest"):
        raise UsageError(f"--checkpoint must be 'best' or 'latest', got {args.checkpoint!r}")
    return load_run(args.run_dir, checkpoint=args.checkpoint)


def cmd_sample(args) -> int:
    backend = check_backend(args.backend)
    run = _load(args)
    vocab = run.vocab
    prefix = args.prefix
    if prefix is None:
        prefix = (run.train_config.sample_prefixes or ("",))[0]
    if prefix == "":
        raise UsageError("--prefix must not be empty (the model warms up on it)")
    try:
        encode_prefix(vocab, prefix)
    except ValueError as exc:
        raise UsageError(f"--prefix: {exc}") from None
    if args.top_k is not None and args.top_k > len(vocab):
        raise UsageError(f"--top-k {args.top_k} is larger than the vocabulary ({len(vocab)})")
    texts = generate(run.model, vocab, prefix, length=args.length,
                     temperature=args.temperature, top_k=args.top_k, greedy=args.greedy,
                     seed=args.seed, num=args.num, backend=backend)
    raise_if_interrupted()   # a Ctrl-C Python dropped (while compiling, say)
    print("\n----\n".join(texts), flush=True)
    return EXIT_OK


def _validation_tokens(run) -> tuple[list, str]:
    """The held-out tokens of the run's corpus as it reads today, and its path; warns on
    stderr when the text is not the one the run trained on (another vocabulary, or other
    token counts than config.json records)."""
    tc = run.train_config
    data = run.run_config.get("data", {})
    text, path = load_text(tc.corpus, data.get("max_chars"))
    train_tokens, val_tokens = split_tokens(text_tokens(text, tc.preprocess, tc.tokens),
                                            tc.val_fraction)
    if len(val_tokens) < 2:
        raise UsageError(f"the run {run.path} has no validation text "
                         f"(val_fraction {tc.val_fraction}); pass --corpus")
    now = (len(train_tokens), len(val_tokens))
    then = (data.get("train_tokens"), data.get("val_tokens"))
    if Vocab(train_tokens, mode=tc.tokens).idx_to_token != run.vocab.idx_to_token:
        print(f"scanrnn eval: warning: {path} has changed since training (its training "
              f"part no longer gives the run's vocabulary); scoring its last "
              f"{tc.val_fraction:g} with the run's vocab.json", file=sys.stderr)
    elif all(isinstance(n, int) for n in then) and now != then:
        print(f"scanrnn eval: warning: {path} is not the text the run was trained on: it "
              f"now gives {now[0]:,} training / {now[1]:,} validation tokens, config.json "
              f"records {then[0]:,} / {then[1]:,}; scoring its last {tc.val_fraction:g}",
              file=sys.stderr)
    return val_tokens, path


def cmd_eval(args) -> int:
    """``scanrnn eval``: the run's model scored on text encoded with the run's vocabulary."""
    backend = check_backend(args.backend)
    run = _load(args)
    tc = run.train_config
    # the streams and chunks training validated with, unless asked otherwise: the same score
    layout = dict(batch_size=args.batch_size or tc.eval_batch_size,
                  seq_len=args.seq_len or tc.eval_seq_len, backend=backend)
    if args.corpus is None:
        if args.max_chars:
            raise UsageError("--max-chars needs --corpus")
        val_tokens, path = _validation_tokens(run)
        result = evaluate_tokens(run.model, run.vocab, val_tokens, **layout)
        what = f"validation text of {path} (last {tc.val_fraction:g})"
    else:
        text, path = load_text(args.corpus, args.max_chars)
        result = evaluate_text(run.model, run.vocab, text, preprocess=tc.preprocess, **layout)
        what = path
    raise_if_interrupted()   # a Ctrl-C Python dropped: no result printed as if whole
    print(f"run: {run.path} ({run.checkpoint} checkpoint, step {run.meta.get('global_step')})")
    print(f"text: {what}, preprocess {tc.preprocess}: {result['tokens']:,} tokens scored")
    unit = "word" if tc.tokens == "word" else "char"
    print(f"loss {result['loss']:.4f} nats/{unit}   perplexity {result['perplexity']:.3f}   "
          f"bits/{unit} {result['bits_per_char']:.3f}")
    unknown = result.get("unknown_tokens") or []
    if unknown:
        shown = ", ".join(repr(t) for t in unknown[:20])
        print(f"<unk>: {result.get('unknown', 0):,} scored tokens outside the vocabulary "
              f"({shown}{', ...' if len(unknown) > 20 else ''})")
    return EXIT_OK
