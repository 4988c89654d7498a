"""Training throughput of a recurrent language model, in tokens per second (prints, never asserts).

    python -m experiments.bench_text                       # the book's GRU: batch 1024, 32 steps, 32 hidden
    python -m experiments.bench_text --device cuda --network lstm_lm --implementation scratch

One step = forward, cross-entropy over every position, backward, global-norm clipping to 1, SGD.
The first ``--warmup`` steps are not timed.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lit_models import build_network


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", default="gru_lm")
    parser.add_argument("--implementation", default="library", choices=["library", "scratch"])
    parser.add_argument("--vocab_size", type=int, default=28)
    parser.add_argument("--hidden_size", type=int, default=32)
    parser.add_argument("--num_layers", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=1024)
    parser.add_argument("--num_steps", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    network = build_network(args.network, vocab_size=args.vocab_size, hidden_size=args.hidden_size,
                            num_layers=args.num_layers, implementation=args.implementation).to(device)
    optimizer = torch.optim.SGD(network.parameters(), lr=1.0)
    tokens = torch.randint(args.vocab_size, (args.batch_size, args.num_steps + 1), device=device)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step() -> None:
        logits, _ = network(inputs)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, args.vocab_size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    tokens_per_step = args.batch_size * args.num_steps
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"{args.network} ({args.implementation}, hidden {args.hidden_size}, layers {args.num_layers}) on {name}: "
          f"batch {args.batch_size} x {args.num_steps} steps, {args.steps} timed steps, "
          f"{elapsed / args.steps * 1000:.1f} ms/step, {tokens_per_step * args.steps / elapsed:,.0f} tokens/s")


if __name__ == "__main__":
    main()
