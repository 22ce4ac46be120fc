"""Tiles against TenCrop: the cost of scoring a large pair, and how far the two coverages agree.

    python -m benchmarks.coverage                                   # from the repository root: 3840x2160 on the CPU
    python -m benchmarks.coverage --checkpoint demo.ckpt --pipal datasets/PIPAL_synthetic

* **Large pair.** One distorted image against its reference, ``--width`` × ``--height`` (3840x2160),
  scored by the package's scorer (:class:`nnet.engine.scoring.scorer.Scorer`) with each coverage, each
  in a fresh process, timed on its second run (the first prepares oneDNN's kernels and took up to 3x
  longer): wall time, the resident memory before scoring
  (the model and the two images) and the process's peak resident memory (loading included). The
  baseline, in the same run, is tiles all in one chunk (``WINDOWS_PER_CHUNK`` unbounded), which is
  what bounding the chunks saves.
* **Agreement** (with ``--checkpoint`` and ``--pipal``, a PIPAL-layout tree of 288x288 images such as
  the demo's synthetic one): every labelled pair scored with both coverages; the SRCC between the two
  coverages' scores, and each one's SRCC with the labels.

Timings on a shared machine vary; compare numbers within one run only.
"""

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from nnet.checkpoint import build_checkpoint, load_model, save_checkpoint
from nnet.data.datasets.pipal import scan_pipal_train
from nnet.data.score_scale import ScoreScale
from nnet.engine.distributed import Runtime
from nnet.engine.scoring import scorer as scoring
from nnet.models import build_model

# (label, coverage, windows per chunk or None for the scorer's own)
LARGE_PAIR_RUNS = (("tencrop", "tencrop", None), ("tiles", "tiles", None), ("tiles, one chunk", "tiles", 10**9))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def score_large_pair(checkpoint: Path, coverage: str, chunk: int | None, height: int, width: int, queue) -> None:
    """In a fresh process: (seconds, MiB resident before scoring, peak MiB, windows, score) of one pair."""
    if chunk is not None:
        scoring.WINDOWS_PER_CHUNK = chunk
    model = load_model(checkpoint, torch.device("cpu"))
    scorer = scoring.Scorer(model, torch.device("cpu"), coverage=coverage)
    generator = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
    distorted = (reference.int() + torch.randint(-20, 21, reference.shape, generator=generator)).clamp(0, 255)
    distorted = distorted.to(torch.uint8)[None]
    before = rss_mib()
    scorer.score_group(reference, distorted)  # warm-up (oneDNN prepares its kernels on the first calls): not timed
    started = time.perf_counter()
    score = float(scorer.score_group(reference, distorted)[0])
    queue.put((time.perf_counter() - started, before, peak_rss_mib(), len(scorer.boxes(height, width)), score))


def large_pair(checkpoint: Path, height: int, width: int) -> None:
    context = multiprocessing.get_context("spawn")
    print(f"one {width}x{height} pair on the CPU ({torch.get_num_threads()} threads), crop "
          f"{load_model(checkpoint, torch.device('cpu')).crop_size}:")
    print(f"{'coverage':<18} {'windows':>7} {'seconds':>8} {'MiB before scoring':>18} {'peak MiB':>9} {'score':>8}")
    for label, coverage, chunk in LARGE_PAIR_RUNS:
        queue = context.Queue()
        process = context.Process(target=score_large_pair, args=(checkpoint, coverage, chunk, height, width, queue))
        process.start()
        seconds, before, peak, windows, score = queue.get()
        process.join()
        print(f"{label:<18} {windows:>7} {seconds:>8.1f} {before:>18.0f} {peak:>9.0f} {score:>8.4f}")


def agreement(checkpoint: Path, root: Path) -> None:
    records = scan_pipal_train(root)
    model = load_model(checkpoint, torch.device("cpu"))
    runtime = Runtime(device=torch.device("cpu"))
    scores = {}
    for coverage in ("tencrop", "tiles"):
        started = time.perf_counter()
        scores[coverage] = scoring.Scorer(model, torch.device("cpu"), coverage=coverage).score_records(
            records, model.score_scale, runtime)
        print(f"{coverage}: {len(records)} pairs in {time.perf_counter() - started:.1f} s, SRCC with the labels "
              f"{spearmanr(scores[coverage], [record.mos for record in records]).statistic:.4f}")
    print(f"SRCC between tencrop and tiles: {spearmanr(scores['tencrop'], scores['tiles']).statistic:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint (default: a random IQA Conformer, crop 192; "
                        "the cost does not depend on the weights)")
    parser.add_argument("--pipal", type=Path, help="a PIPAL-layout tree for the agreement (needs --checkpoint)")
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--width", type=int, default=3840)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = save_checkpoint(Path(folder) / "random.ckpt",
                                         build_checkpoint(build_model("IQA_Conformer"), ScoreScale()))
        large_pair(checkpoint, args.height, args.width)
        if args.pipal is not None and args.checkpoint is not None:
            agreement(args.checkpoint, args.pipal)


if __name__ == "__main__":
    main()
