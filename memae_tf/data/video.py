"""Video anomaly detection benchmarks read from their published folder layouts.

Each loader returns `(train, test)` `Videos` (see `memae_tf.data.clips`): frames
converted to grayscale, resized to `size` (bilinear) and kept as uint8, with
per-frame labels (all 0 in training). Cut them into MemAE's 16-frame clips in
`[-1, 1]` with `make_clips`, or stream them with `pipeline.clip_dataset`.

Layouts (a video is a folder of frame images, or a video file):

- UCSD Ped1 / Ped2 (`UCSDped1/`, `UCSDped2/`): `Train/Train001/001.tif ...`,
  `Test/Test001/001.tif ...`. Frame labels come from the dataset's MATLAB file
  `UCSDped2.m` (in `Test/` or the root), whose lines
  `TestVideoFile{end+1}.gt_frame = [61:180];` give 1-based inclusive anomalous
  frame ranges per test video, in order (several ranges are comma-separated);
  without it, from the pixel masks `Test/Test001_gt/001.bmp ...` (a frame is
  anomalous when its mask has any non-zero pixel).
- CUHK Avenue: `training_videos/01.avi ...`, `testing_videos/01.avi ...` (or a
  frame folder per video in their place), and labels in
  `testing_label_mask/1_label.mat ...` (also looked for under
  `ground_truth_demo/`), whose `volLabel` cell array holds one pixel mask per frame.
- ShanghaiTech Campus: training `training/frames/01_001/*.jpg` or
  `training/videos/01_001.avi`; testing `testing/frames/01_0014/*.jpg` with
  per-frame 0/1 labels in `testing/test_frame_mask/01_0014.npy`.

Frame images are read with Pillow; video files need OpenCV
(`opencv-python-headless`). None of these datasets can be downloaded by a
library call, so the loaders search only `path` and the local data folders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from memae_tf.data.clips import Videos
from memae_tf.data.sources import resolve

IMAGE_SUFFIXES = (".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv")

Size = tuple[int, int] | None


def natural_key(path: Path) -> list:
    """Sort key that orders numbers by value: `2.jpg` before `10.jpg`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _listing(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    # Hidden files (e.g. macOS "._001.tif" forks shipped in some archives) are not frames.
    return sorted(
        (
            entry
            for entry in folder.iterdir()
            if entry.is_file()
            and entry.suffix.lower() in suffixes
            and not entry.name.startswith(".")
        ),
        key=natural_key,
    )


def read_frames(source: str | os.PathLike, size: Size = (256, 256)) -> np.ndarray:
    """Reads one video, from a folder of frame images or a video file, as grayscale uint8.

    Args:
        source: A folder of images (`.tif`, `.bmp`, `.jpg`, `.png`; ordered by
            name, numbers by value) or a video file (`.avi`, `.mp4`, ...).
        size: `(height, width)` to resize every frame to (bilinear), or `None`
            to keep the original size.

    Returns:
        uint8 array `(t, height, width)`.

    Raises:
        ValueError: If the source holds no frame.
        ImportError: If a video file is read without OpenCV installed.

    Example:

    ```python
    frames = read_frames("UCSDped2/Test/Test001", size=(256, 256))
    ```
    """
    _check_size(size)
    source = Path(source)
    if source.is_dir():
        frames = [
            _to_gray_array(Image.open(file), size) for file in _listing(source, IMAGE_SUFFIXES)
        ]
    else:
        frames = [_to_gray_array(image, size) for image in _decode_video(source)]
    if not frames:
        raise ValueError(f"Expected frames in {source}. Received none.")
    return np.stack(frames)


def _check_size(size: Size) -> None:
    if size is not None and (
        len(size) != 2 or not all(isinstance(n, int | np.integer) and n > 0 for n in size)
    ):
        raise ValueError(
            f"Expected `size` to be None or (height, width) positive integers. Received: {size}"
        )


def _to_gray_array(image: Image.Image, size: Size) -> np.ndarray:
    with image:
        gray = image.convert("L")
        if size is not None and gray.size != (size[1], size[0]):
            gray = gray.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(gray, np.uint8)


def _decode_video(path: Path):
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            f"Reading the video file {path} needs OpenCV: pip install opencv-python-headless"
        ) from error
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"OpenCV could not open the video file {path}.")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()


def video_entries(folder: str | os.PathLike) -> list[Path]:
    """Lists the videos of a split folder: its video files and frame sub-folders.

    Sub-folders ending in `_gt` (UCSD ground truth) and hidden entries are skipped.

    Args:
        folder: The split folder, e.g. `UCSDped2/Test`.

    Returns:
        The entries, ordered by name (numbers by value).

    Raises:
        FileNotFoundError: If the folder does not exist or holds no video.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected a folder of videos at {folder}. It does not exist.")
    entries = [
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".")
        and (
            (entry.is_dir() and not entry.name.endswith("_gt"))
            or entry.suffix.lower() in VIDEO_SUFFIXES
        )
    ]
    if not entries:
        raise FileNotFoundError(f"Expected video files or frame folders in {folder}. Found none.")
    return sorted(entries, key=natural_key)


def _read_split(
    entries: Sequence[Path],
    size: Size,
    labels_for: Callable[[int, Path, int], np.ndarray] | None = None,
) -> Videos:
    """Reads videos; `labels_for(position, entry, n_frames)` gives each one's frame labels."""
    frames = tuple(read_frames(entry, size) for entry in entries)
    labels = []
    for position, (entry, video) in enumerate(zip(entries, frames, strict=True)):
        if labels_for is None:
            labels.append(np.zeros(len(video), np.int64))
            continue
        video_labels = np.asarray(labels_for(position, entry, len(video)), np.int64).reshape(-1)
        if len(video_labels) != len(video):
            raise ValueError(
                f"Video {entry}: expected one label per frame ({len(video)}). "
                f"Received: {len(video_labels)} labels"
            )
        labels.append(video_labels)
    return Videos(frames, tuple(labels), tuple(entry.stem for entry in entries))


# --- UCSD Ped1 / Ped2 ---------------------------------------------------------------------------


def parse_ucsd_ranges(text: str) -> list[list[tuple[int, int]]]:
    """Parses the `gt_frame` ranges of a UCSD `UCSDped1.m` / `UCSDped2.m` ground-truth file.

    Args:
        text: The file's content.

    Returns:
        One list per test video, in file order, of 1-based inclusive `(first, last)`
        frame ranges.

    Example:

    ```python
    parse_ucsd_ranges("TestVideoFile{end+1}.gt_frame = [5:90, 140:200];")
    # [[(5, 90), (140, 200)]]
    ```
    """
    videos = []
    for match in re.finditer(r"gt_frame\s*=\s*\[([^\]]*)\]", text):
        ranges = []
        for part in match.group(1).replace(";", ",").split(","):
            if part.strip():
                bounds = [int(b) for b in part.split(":")]
                ranges.append((bounds[0], bounds[-1]))
        videos.append(ranges)
    return videos


def ranges_to_labels(ranges: Sequence[tuple[int, int]], n_frames: int) -> np.ndarray:
    """Turns 1-based inclusive frame ranges into a 0/1 int64 label per frame.

    Raises:
        ValueError: If a range is empty or falls outside `1..n_frames`.
    """
    labels = np.zeros(n_frames, np.int64)
    for first, last in ranges:
        if not 1 <= first <= last <= n_frames:
            raise ValueError(
                f"Expected frame ranges within 1..{n_frames}. Received: {first}:{last}"
            )
        labels[first - 1 : last] = 1
    return labels


def _mask_labels(masks: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([np.any(mask) for mask in masks], np.int64)


def read_ucsd_ped(root: str | os.PathLike, size: Size = (256, 256)) -> tuple[Videos, Videos]:
    """Reads a UCSD Ped1 or Ped2 folder (`Train/`, `Test/`, ground truth) into videos.

    Args:
        root: The `UCSDped1` or `UCSDped2` folder.
        size: `(height, width)` of the returned frames, or `None` for the original.

    Returns:
        `(train, test)` `Videos`; see the module docstring for the labels.

    Raises:
        FileNotFoundError: If a split folder, or a test video's ground truth, is missing.
        ValueError: If the ground truth disagrees with the videos in count or length.
    """
    root = Path(root)
    train = _read_split(video_entries(root / "Train"), size)
    test_entries = video_entries(root / "Test")
    matlab_files = sorted((root / "Test").glob("UCSDped*.m")) + sorted(root.glob("UCSDped*.m"))
    if matlab_files:
        ranges = parse_ucsd_ranges(matlab_files[0].read_text(errors="replace"))
        if len(ranges) != len(test_entries):
            raise ValueError(
                f"{matlab_files[0]}: expected ranges for the {len(test_entries)} test videos. "
                f"Received: {len(ranges)}"
            )
        test = _read_split(test_entries, size, lambda i, _, n: ranges_to_labels(ranges[i], n))
    else:
        test = _read_split(test_entries, size, lambda _, entry, __: _ucsd_mask_labels(entry))
    return train, test


def _ucsd_mask_labels(entry: Path) -> np.ndarray:
    masks = entry.parent / f"{entry.name}_gt"
    if not masks.is_dir():
        raise FileNotFoundError(
            f"No ground truth for {entry}: expected a UCSDped*.m file in {entry.parent} or "
            f"{entry.parent.parent}, or the mask folder {masks}."
        )
    return _mask_labels(read_frames(masks, None))


def load_ucsd_ped(
    path: str | os.PathLike | None = None, *, variant: str = "ped2", size: Size = (256, 256)
) -> tuple[Videos, Videos]:
    """Loads UCSD Ped1 or Ped2 from an explicit folder or the local data folders.

    Args:
        path: The `UCSDped1` / `UCSDped2` folder. Otherwise searched as
            `UCSD_Anomaly_Dataset.v1p2/UCSDped2` or `UCSDped2` in the local data folders.
        variant: `"ped1"` or `"ped2"`.
        size: `(height, width)` of the returned frames, or `None` for the original.

    Returns:
        `(train, test)` `Videos`.

    Raises:
        DatasetNotFoundError: If the folder is found nowhere.

    Example:

    ```python
    train, test = load_ucsd_ped("data/UCSD_Anomaly_Dataset.v1p2/UCSDped2")
    clips, index = make_clips(test, clip_length=16, stride=1)
    ```
    """
    if variant not in ("ped1", "ped2"):
        raise ValueError(f"Expected `variant` 'ped1' or 'ped2'. Received: variant={variant!r}")
    folder = f"UCSD{variant}"
    return resolve(
        f"UCSD {variant.capitalize()}",
        lambda root: read_ucsd_ped(root, size),
        path=path,
        filenames=(f"UCSD_Anomaly_Dataset.v1p2/{folder}", folder),
    )


# --- CUHK Avenue --------------------------------------------------------------------------------


def read_avenue(root: str | os.PathLike, size: Size = (256, 256)) -> tuple[Videos, Videos]:
    """Reads a CUHK Avenue folder (`training_videos/`, `testing_videos/`, label masks).

    Args:
        root: The dataset folder.
        size: `(height, width)` of the returned frames, or `None` for the original.

    Returns:
        `(train, test)` `Videos`; a test frame is anomalous when its `volLabel`
        mask has a non-zero pixel.

    Raises:
        FileNotFoundError: If a split folder or a test video's label file is missing.
    """
    from scipy.io import loadmat

    root = Path(root)
    train = _read_split(video_entries(root / "training_videos"), size)
    label_folders = [root / "testing_label_mask", root / "ground_truth_demo" / "testing_label_mask"]

    def labels_for(_: int, entry: Path, __: int) -> np.ndarray:
        names = [f"{entry.stem}_label.mat"]
        if entry.stem.isdigit():
            names.insert(0, f"{int(entry.stem)}_label.mat")
        candidates = [folder / name for folder in label_folders for name in names]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise FileNotFoundError(
                f"No labels for {entry}: expected one of {[str(c) for c in candidates]}."
            )
        return _mask_labels(np.asarray(loadmat(found)["volLabel"], dtype=object).reshape(-1))

    return train, _read_split(video_entries(root / "testing_videos"), size, labels_for)


def load_avenue(
    path: str | os.PathLike | None = None, *, size: Size = (256, 256)
) -> tuple[Videos, Videos]:
    """Loads CUHK Avenue from an explicit folder or the local data folders.

    Args:
        path: The dataset folder. Otherwise searched as `Avenue Dataset`,
            `avenue` or `Avenue` in the local data folders.
        size: `(height, width)` of the returned frames, or `None` for the original.

    Returns:
        `(train, test)` `Videos`.

    Raises:
        DatasetNotFoundError: If the folder is found nowhere.

    Example:

    ```python
    train, test = load_avenue("data/Avenue Dataset", size=(256, 256))
    ```
    """
    return resolve(
        "CUHK Avenue",
        lambda root: read_avenue(root, size),
        path=path,
        filenames=("Avenue Dataset", "avenue", "Avenue"),
    )


# --- ShanghaiTech Campus ------------------------------------------------------------------------


def read_shanghaitech(
    root: str | os.PathLike, size: Size = (256, 256), scenes: Sequence[str] | None = None
) -> tuple[Videos, Videos]:
    """Reads a ShanghaiTech Campus folder (`training/`, `testing/frames`, frame masks).

    Args:
        root: The dataset folder.
        size: `(height, width)` of the returned frames, or `None` for the original.
        scenes: Scene ids to keep (the part of a video name before `_`, e.g.
            `["01"]`); `None` keeps all 13 scenes. The full training set is about
            275 000 frames (18 GB at 256×256), so a scene subset is often needed.

    Returns:
        `(train, test)` `Videos`, test labels from `testing/test_frame_mask/<video>.npy`.

    Raises:
        FileNotFoundError: If a split folder or a test video's mask is missing.
    """
    root = Path(root)
    frames_folder = root / "training" / "frames"
    train_folder = frames_folder if frames_folder.is_dir() else root / "training" / "videos"

    def selected(entries: list[Path]) -> list[Path]:
        return [e for e in entries if scenes is None or e.stem.split("_")[0] in scenes]

    train = _read_split(selected(video_entries(train_folder)), size)

    def labels_for(_: int, entry: Path, __: int) -> np.ndarray:
        mask = root / "testing" / "test_frame_mask" / f"{entry.stem}.npy"
        if not mask.exists():
            raise FileNotFoundError(f"No labels for {entry}: expected {mask}.")
        return np.load(mask)

    return train, _read_split(
        selected(video_entries(root / "testing" / "frames")), size, labels_for
    )


def load_shanghaitech(
    path: str | os.PathLike | None = None,
    *,
    size: Size = (256, 256),
    scenes: Sequence[str] | None = None,
) -> tuple[Videos, Videos]:
    """Loads ShanghaiTech Campus from an explicit folder or the local data folders.

    Args:
        path: The dataset folder. Otherwise searched as `shanghaitech` or
            `ShanghaiTech` in the local data folders.
        size: `(height, width)` of the returned frames, or `None` for the original.
        scenes: Scene ids to keep, e.g. `["01", "02"]`; `None` keeps all.

    Returns:
        `(train, test)` `Videos`.

    Raises:
        DatasetNotFoundError: If the folder is found nowhere.

    Example:

    ```python
    train, test = load_shanghaitech("data/shanghaitech", scenes=["01"])
    ```
    """
    return resolve(
        "ShanghaiTech Campus",
        lambda root: read_shanghaitech(root, size, scenes),
        path=path,
        filenames=("shanghaitech", "ShanghaiTech"),
    )
