"""Frames a second of live video streams scored over gRPC (`memae_tf.client.stream`).

Exports the walkway benchmark's video network (16-frame 48×64 clips, Conv3D
16-32-64-64, 2,000 items; untrained weights: the speed does not depend on
them), serves it with the development server (`memae serve`, in-process, one
machine), and pushes the frames of `vtest.avi` (synthetic noise frames when it
is absent) to `StreamScorer` for 1, 4 and 8 concurrent streams, all streams'
new frames in one request a step. Prints frames a second per stream and in
total, after a warm-up of the first window. With `--inputs uint8,float32`
the clips go as uint8 (to `frame_score_uint8` / `serving_default_uint8`, as
`StreamScorer` sends them) and as the float32 the client made of them before
those signatures, in interleaved rounds (`--rounds`), with the median of the
rounds' ratios.

    python benchmarks/stream_speed.py --streams 1,4,8 --frames 64
    python benchmarks/stream_speed.py --streams 1,4 --frames 32 --inputs uint8,float32 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CLIP, SIZE = 16, (48, 64)


def frames_to_stream(n: int) -> tuple[np.ndarray, str]:
    from memae_tf.data import DatasetNotFoundError, load_vtest

    try:
        return load_vtest(download=False, size=SIZE)[:n], "vtest.avi"
    except (DatasetNotFoundError, ImportError):
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, *SIZE), dtype=np.uint8), "synthetic noise"


class _Float32Client:
    """A client that scales uint8 clips to float32 before sending, as the client did for
    exports without uint8 signatures."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        from memae_tf.common.scaling import scale_uint8

        return scale_uint8(x, self.client.model_info().input_range)

    def score(self, x: np.ndarray, **options: Any) -> np.ndarray:
        return self.client.score(self._scaled(x), **options)

    def run_signature(self, x: np.ndarray, **options: Any) -> dict[str, np.ndarray]:
        return self.client.run_signature(self._scaled(x), **options)

    def metadata(self) -> Any:
        return self.client.metadata()

    def model_info(self) -> Any:
        return self.client.model_info()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1,4,8", help="stream counts, comma-separated")
    parser.add_argument("--frames", type=int, default=64, help="frames pushed per stream")
    parser.add_argument("--frame-score", default="clip",
                        help="StreamScorer's frame score: clip (the figures in RESULTS), last, "
                             "patch, relative or last_plus_temporal (StreamScorer's default)")
    parser.add_argument("--inputs", default="uint8",
                        help="what the clips go as, comma-separated: uint8 (StreamScorer's "
                             "requests), float32 (scaled by the client)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    args = parser.parse_args(argv)
    kinds = args.inputs.split(",")
    if set(kinds) - {"uint8", "float32"}:
        parser.error(f"--inputs takes uint8 and float32. Received: {args.inputs}")

    from _common import machine

    from memae_tf import MemAE
    from memae_tf.client import MemAEClient
    from memae_tf.client.stream import StreamScorer
    from memae_tf.serving import serve

    frames, source = frames_to_stream(args.frames)
    detector = MemAE.from_preset("video", input_shape=(CLIP, *SIZE, 1), filters=(16, 32, 64, 64))
    clips = np.lib.stride_tricks.sliding_window_view(frames[:32], CLIP, axis=0)
    detector.infer_threshold(np.moveaxis(clips, -1, 1)[..., None].copy())
    results = {"machine": machine(), "frames": source, "frames_per_stream": args.frames,
               "frame_score": args.frame_score, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as folder:
        detector.export(Path(folder) / "walkway")
        handle = serve(Path(folder) / "walkway", "walkway", port=0, host="127.0.0.1")
        try:
            with MemAEClient(f"127.0.0.1:{handle.port}", "walkway", timeout=120) as client:
                clients = {"uint8": client, "float32": _Float32Client(client)}
                for count in (int(c) for c in args.streams.split(",")):
                    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
                    for _ in range(args.rounds):
                        for kind in kinds:
                            scorer = StreamScorer(clients[kind], CLIP,
                                                  frame_score=args.frame_score)
                            for t in range(CLIP):  # fill the windows; the last step warms up
                                scorer.push({s: frames[t] for s in range(count)})
                            start = time.perf_counter()
                            for t in range(CLIP, args.frames):
                                scorer.push({s: frames[t] for s in range(count)})
                            seconds[kind].append(time.perf_counter() - start)
                    steps = args.frames - CLIP
                    result = {kind: {
                        "frames/s per stream": round(steps / statistics.median(values), 2),
                        "frames/s in total": round(count * steps / statistics.median(values), 2),
                    } for kind, values in seconds.items()}
                    if len(kinds) == 2:
                        result["uint8 / float32 (median of the rounds' ratios)"] = round(
                            statistics.median(f / u for f, u in zip(
                                seconds["float32"], seconds["uint8"], strict=True)), 3)
                    results[f"{count} streams"] = result
                    print(count, result, flush=True)
        finally:
            handle.stop(grace=0)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
