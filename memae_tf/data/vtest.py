"""A video anomaly benchmark on real footage: OpenCV's `vtest.avi` walkway, with injected anomalies.

`vtest.avi` (Debian's `opencv-doc`, `examples/data/`) is a fixed camera high
over an outdoor campus walkway with pedestrians: 768×576, 795 frames at 10
frames/s, the kind of scene UCSD Ped and CUHK Avenue are. `load_vtest` reads
it (grayscale, resized); `make_vtest_benchmark` turns it into `(train, test)`
`Videos` with frame labels and kinds. The protocol and the choice rules that
use it are in `benchmarks/VIDEO_PROTOCOL.md`.

Generation, exactly (frame indices are those of the source footage):

- **Training**: frames `0 .. 399`, as they are, one normal video.
- **Splits**: `"dev"` (development: choose settings here) draws from frames
  `400 .. 579`; `"test"` (run once) from frames `580 .. 794`. The three ranges
  are disjoint.
- **Evaluation videos**: `n_videos` videos of `length` frames. Video `i` has
  the kind `kinds[i % len(kinds)]` and draws everything from
  `numpy.random.default_rng((seed, split, i))` (split 0 for `"dev"`, 1 for
  `"test"`), in this order: the segment length `L`, uniform in
  `segment_length` (inclusive; for `"object"`, `L = crossing_frames - 1`
  instead, nothing drawn); the segment start `s`, uniform in `1 .. length - L`;
  the first source frame, uniform among those that keep the video inside its
  split; then the kind's own draws. Video frame `t` shows source frame
  `first + t` plus the extra steps of a `"fast"` segment.
- Kinds, each labelled 1 (and named in `Videos.kinds`) only on the frames
  where it is visible:
  - `"object"`: a real object (`object_image` under `object_mask`, e.g. the
    apple of OpenCV's `apple.jpg`: `vtest_object`) scaled to a fifth of the
    frame height (a person's height on this camera) crosses the frame
    horizontally at a uniform row (draw 1) and direction (draw 2) in
    `crossing_frames` frame steps: at segment frame `k = 1 .. L` its left
    column is `round(-w + k (W + w) / crossing_frames)` going right (mirrored
    going left), `w` its width. It is pasted where its mask is set; a frame is
    labelled when at least one mask pixel lies inside the frame.
  - `"fast"`: the footage plays `fast_factor` times faster over the segment
    (the step into each segment frame skips `fast_factor - 1` source frames);
    every segment frame is labelled.
  - `"freeze"`: a person-sized box, a fifth of the frame height by a tenth of
    its width, stops updating from segment frame `s` to `s + L - 1`: it keeps
    the content of frame `s`. The box is centred on the maximum of the
    box-averaged absolute difference between frame `s` and the median of the
    training frames (a pedestrian), moved inside the frame. Frame `t` of the
    segment is labelled when the mean absolute difference between the frozen
    box and the live footage there is at least `freeze_visible` grey levels.

Video names are `test_000_object`, ... (`dev_000_object` for the dev split).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from memae_tf.data.clips import Videos
from memae_tf.data.sources import Download, cache_dir, fetch_debian_files, resolve
from memae_tf.data.video import Size, read_frames

OPENCV_DOC_PACKAGE = "opencv-doc"
OPENCV_DOC_DATA = Path("usr/share/doc/opencv-doc/examples/data")
# The files of opencv-doc's examples/data this module reads.
OPENCV_SAMPLES = ("vtest.avi", "apple.jpg")
VTEST_FRAMES = 795
TRAIN_FRAMES = (0, 400)
SPLITS = {"dev": (400, 580), "test": (580, 795)}
KINDS = ("object", "fast", "freeze")
DEFAULT_SIZE = (48, 64)


def fetch_opencv_doc(destination: str | os.PathLike | None = None) -> Path:
    """Downloads Debian's `opencv-doc` and copies `vtest.avi` and `apple.jpg` to a folder.

    Runs `apt-get download opencv-doc` and `dpkg -x` in a temporary folder (no
    root needed, nothing installed; the package is about 96 MB).

    Args:
        destination: Target folder; defaults to `~/.cache/memae_tf/opencv-doc`,
            where `load_opencv_sample` looks.

    Returns:
        The folder holding the files.

    Example:

    ```python
    folder = fetch_opencv_doc()  # then load_vtest() finds vtest.avi offline
    ```
    """
    destination = Path(destination) if destination else cache_dir() / "opencv-doc"
    return fetch_debian_files(OPENCV_DOC_PACKAGE, OPENCV_DOC_DATA, OPENCV_SAMPLES, destination)


def load_opencv_sample(
    filename: str, path: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """Finds one of the sample files of OpenCV's `examples/data` (`vtest.avi`, `apple.jpg`).

    Searched as described in `memae_tf.data.sources`: the explicit `path`;
    `FILENAME` or `opencv-doc/FILENAME` in the local data folders
    (`fetch_opencv_doc` fills `~/.cache/memae_tf/opencv-doc`); the installed
    Debian package's `/usr/share/doc/opencv-doc/examples/data`; then, when
    allowed, `fetch_opencv_doc()`.

    Args:
        filename: One of `OPENCV_SAMPLES`.
        path: Explicit file.
        download: Whether `fetch_opencv_doc()` may run when no copy is found.

    Returns:
        The file's path.

    Raises:
        DatasetNotFoundError: If the file is found nowhere.
    """
    if filename not in OPENCV_SAMPLES:
        raise ValueError(f"Expected `filename` in {OPENCV_SAMPLES}. Received: {filename!r}")
    return resolve(
        f"OpenCV sample {filename}",
        Path,
        path=path,
        filenames=(filename, f"opencv-doc/{filename}"),
        offline={f"Debian package {OPENCV_DOC_PACKAGE}": Path("/") / OPENCV_DOC_DATA / filename},
        download=Download(f"apt-get download {OPENCV_DOC_PACKAGE}",
                          lambda: fetch_opencv_doc() / filename),
        allow_download=download,
    )


def read_vtest(path: str | os.PathLike, size: Size = DEFAULT_SIZE) -> np.ndarray:
    """Reads `vtest.avi` as grayscale uint8 frames (OpenCV decodes it; `video` extra).

    Args:
        path: The video file.
        size: `(height, width)` to resize to (bilinear), or `None` for 576×768.

    Returns:
        uint8 array `(795, height, width)`.

    Raises:
        ValueError: If the file does not hold the 795 frames of `vtest.avi`.
    """
    frames = read_frames(path, size)
    if len(frames) != VTEST_FRAMES:
        raise ValueError(f"Expected the {VTEST_FRAMES} frames of vtest.avi in {path}. "
                         f"Received: {len(frames)} frames")
    return frames


def load_vtest(
    path: str | os.PathLike | None = None, download: bool = True, *, size: Size = DEFAULT_SIZE
) -> np.ndarray:
    """Loads `vtest.avi`, the walkway footage, found offline first.

    Args:
        path: Explicit `vtest.avi` (otherwise searched as in `load_opencv_sample`).
        download: Whether `fetch_opencv_doc()` may run when no copy is found.
        size: `(height, width)` of the frames, or `None` for the original 576×768.

    Returns:
        uint8 array `(795, height, width)`.

    Raises:
        DatasetNotFoundError: If the file is found nowhere.

    Example:

    ```python
    footage = load_vtest(size=(48, 64))
    train, test = make_vtest_benchmark(footage, *vtest_object(), split="dev")
    ```
    """
    return read_vtest(load_opencv_sample("vtest.avi", path, download), size)


def vtest_object(
    path: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The apple of OpenCV's `apple.jpg`, cut out by colour, for the `"object"` anomaly.

    Mask: red minus green above 20 grey levels, opened with a 9×9 square, its
    largest connected component, holes filled; the image is cropped to it.

    Args:
        path: Explicit `apple.jpg` (otherwise searched as in `load_opencv_sample`).
        download: Whether `fetch_opencv_doc()` may run when no copy is found.

    Returns:
        `(image, mask)`: grayscale uint8 `(h, w)` and bool `(h, w)`.
    """
    from scipy import ndimage

    with Image.open(load_opencv_sample("apple.jpg", path, download)) as image:
        rgb = np.asarray(image.convert("RGB"), np.int16)
        gray = np.asarray(image.convert("L"), np.uint8)
    mask = ndimage.binary_opening(rgb[..., 0] - rgb[..., 1] > 20, np.ones((9, 9), bool))
    components, count = ndimage.label(mask)
    if count == 0:
        raise ValueError("Found no red object in apple.jpg.")
    largest = 1 + np.argmax(np.bincount(components.ravel())[1:])
    mask = ndimage.binary_fill_holes(components == largest)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return gray[crop], mask[crop]


def make_vtest_benchmark(
    footage: np.ndarray,
    object_image: np.ndarray,
    object_mask: np.ndarray,
    *,
    split: str = "test",
    n_videos: int = 9,
    length: int = 96,
    kinds: Sequence[str] = KINDS,
    segment_length: tuple[int, int] = (12, 24),
    fast_factor: int = 4,
    crossing_frames: int = 10,
    freeze_visible: float = 8.0,
    seed: int = 0,
) -> tuple[Videos, Videos]:
    """Builds the walkway benchmark: normal training footage and videos with injected anomalies.

    See the module docstring for the exact generation.

    Args:
        footage: The 795 frames of `vtest.avi`, uint8 `(795, H, W)` (`load_vtest`).
        object_image: Grayscale uint8 `(h, w)` of the `"object"` anomaly (`vtest_object`).
        object_mask: bool `(h, w)`: where the object is.
        split: `"dev"` (development) or `"test"`.
        n_videos: Evaluation videos.
        length: Frames per evaluation video.
        kinds: Anomaly kinds, cycled over the videos; a subset of `KINDS`.
        segment_length: `(min, max)` frames of a `"fast"` or `"freeze"` segment.
        fast_factor: Speed-up of `"fast"`, an integer above 1.
        crossing_frames: Frame steps the object takes to cross the frame (it is
            visible on `crossing_frames - 1` frames).
        freeze_visible: Mean absolute grey-level difference from which a frozen
            box counts as visible.
        seed: Random seed.

    Returns:
        `(train, test)` `Videos`: one training video of frames `0 .. 399`, and
        `n_videos` labelled videos of `length` frames with their kinds.

    Example:

    ```python
    train, test = make_vtest_benchmark(load_vtest(), *vtest_object(), split="dev", seed=100)
    clips, index = make_clips(test, clip_length=16)
    ```
    """
    if footage.ndim != 3 or footage.dtype != np.uint8 or len(footage) != VTEST_FRAMES:
        raise ValueError(f"Expected uint8 footage of shape ({VTEST_FRAMES}, H, W). Received: "
                         f"{footage.dtype} {footage.shape}")
    if split not in SPLITS:
        raise ValueError(f"Expected `split` in {tuple(SPLITS)}. Received: split={split!r}")
    if not kinds or not set(kinds) <= set(KINDS):
        raise ValueError(f"Expected `kinds` to be a non-empty subset of {KINDS}. "
                         f"Received: kinds={kinds!r}")
    low, high = segment_length
    if not 1 <= low <= high < length or crossing_frames - 1 >= length or crossing_frames < 2:
        raise ValueError(
            f"Expected 1 <= segment_length[0] <= segment_length[1] < length={length} and "
            f"2 <= crossing_frames <= length. Received: segment_length={segment_length}, "
            f"crossing_frames={crossing_frames}")
    if not isinstance(fast_factor, int | np.integer) or fast_factor < 2:
        raise ValueError(f"Expected an integer `fast_factor` >= 2. Received: {fast_factor!r}")
    if object_image.shape != object_mask.shape or not object_mask.any():
        raise ValueError(f"Expected an object image and a non-empty mask of one shape. "
                         f"Received: {object_image.shape} and {object_mask.shape}")
    split_first, split_stop = SPLITS[split]
    if (length - 1) + (fast_factor - 1) * high >= split_stop - split_first:
        raise ValueError(f"Videos of {length} frames with a fast segment do not fit in the "
                         f"{split_stop - split_first} frames of split {split!r}.")

    height, width = footage.shape[1:]
    training = footage[slice(*TRAIN_FRAMES)]
    background = np.median(training, axis=0)
    scaled_object = _scale_object(object_image, object_mask, max(1, round(height / 5)))
    box = (max(1, round(height / 5)), max(1, round(width / 10)))

    frames, labels, names, kind_arrays = [], [], [], []
    for i in range(n_videos):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng((seed, list(SPLITS).index(split), i))
        segment = crossing_frames - 1 if kind == "object" else int(rng.integers(low, high + 1))
        start = int(rng.integers(1, length - segment + 1))
        steps = np.ones(length, np.int64)
        steps[0] = 0
        if kind == "fast":
            steps[start : start + segment] = fast_factor
        offsets = np.cumsum(steps)
        first = int(rng.integers(split_first, split_stop - offsets[-1]))
        video = footage[first + offsets].copy()
        video_labels = np.zeros(length, np.int64)
        if kind == "fast":
            video_labels[start : start + segment] = 1
        elif kind == "object":
            video_labels = _cross(video, start, segment, scaled_object, crossing_frames, rng)
        else:
            video_labels = _freeze(video, start, segment, box, background, freeze_visible)
        frames.append(video)
        labels.append(video_labels)
        names.append(f"{split}_{i:03d}_{kind}")
        kind_arrays.append(np.where(video_labels == 1, kind, ""))
    train = Videos((training.copy(),), (np.zeros(len(training), np.int64),), ("train_000",))
    return train, Videos(tuple(frames), tuple(labels), tuple(names), tuple(kind_arrays))


def _scale_object(image: np.ndarray, mask: np.ndarray, height: int) -> tuple[np.ndarray, ...]:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    scaled = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    scaled_mask = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.BILINEAR)
    return np.asarray(scaled, np.uint8), np.asarray(scaled_mask) >= 128


def _cross(video: np.ndarray, start: int, segment: int, scaled: tuple[np.ndarray, ...],
           crossing_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Pastes the object crossing the frames `start .. start + segment - 1`; returns labels."""
    image, mask = scaled
    height, width = video.shape[1:]
    rows, cols = mask.shape
    row = int(rng.integers(0, height - rows + 1))
    rightwards = bool(rng.integers(0, 2))
    labels = np.zeros(len(video), np.int64)
    for k in range(1, segment + 1):
        left = round(-cols + k * (width + cols) / crossing_frames)
        if not rightwards:
            left = width - cols - left
        inside = np.s_[max(0, -left) : min(cols, width - left)]
        if inside.start >= inside.stop:
            continue
        window = video[start + k - 1, row : row + rows, max(0, left) : left + cols]
        visible = mask[:, inside]
        window[visible] = image[:, inside][visible]
        labels[start + k - 1] = int(visible.any())
    return labels


def _freeze(video: np.ndarray, start: int, segment: int, box: tuple[int, int],
            background: np.ndarray, visible: float) -> np.ndarray:
    """Freezes a box over a pedestrian of frame `start` for `segment` frames; returns labels."""
    from scipy import ndimage

    foreground = ndimage.uniform_filter(np.abs(video[start] - background), box, mode="nearest")
    centre = np.unravel_index(np.argmax(foreground), foreground.shape)
    top = int(np.clip(centre[0] - box[0] // 2, 0, video.shape[1] - box[0]))
    left = int(np.clip(centre[1] - box[1] // 2, 0, video.shape[2] - box[1]))
    region = np.s_[top : top + box[0], left : left + box[1]]
    frozen = video[start][region].copy()
    labels = np.zeros(len(video), np.int64)
    for t in range(start + 1, start + segment):
        difference = np.abs(video[t][region].astype(np.float64) - frozen).mean()
        video[t][region] = frozen
        labels[t] = int(difference >= visible)
    return labels
