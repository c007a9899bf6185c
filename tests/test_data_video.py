"""Video benchmarks in their published layouts, written small here, read with their labels.

Every frame is one uniform gray value, chosen per video and frame, so reading order,
grayscale conversion and resizing can all be checked against the value written.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from memae_tf.data import DatasetNotFoundError, load_avenue, load_shanghaitech, load_ucsd_ped
from memae_tf.data.video import parse_ucsd_ranges, read_frames, video_entries

HEIGHT, WIDTH = 24, 32


def value(video: int, frame: int) -> int:
    return 20 * video + 7 * frame + 3


def write_frames(folder: Path, video: int, n: int, suffix: str, name=lambda i: f"{i + 1:03d}"):
    folder.mkdir(parents=True)
    for i in range(n):
        pixels = np.full((HEIGHT, WIDTH), value(video, i), np.uint8)
        Image.fromarray(pixels).save(folder / f"{name(i)}{suffix}")


def write_masks(folder: Path, labels: list[int]):
    folder.mkdir(parents=True)
    for i, label in enumerate(labels):
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[5:7, 9:12] = 255 * label
        Image.fromarray(mask).save(folder / f"{i + 1:03d}.bmp")


def write_avi(path: Path, video: int, n: int):
    cv2 = pytest.importorskip("cv2")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (WIDTH, HEIGHT))
    for i in range(n):
        writer.write(np.full((HEIGHT, WIDTH, 3), value(video, i), np.uint8))
    writer.release()


def assert_frames(frames: np.ndarray, video: int, shape=(HEIGHT, WIDTH), atol=0):
    assert frames.dtype == np.uint8 and frames.shape[1:] == shape
    expected = [value(video, i) for i in range(len(frames))]
    np.testing.assert_allclose(frames.reshape(len(frames), -1).mean(axis=1), expected, atol=atol)
    assert frames.min(axis=(1, 2)).tolist() == frames.max(axis=(1, 2)).tolist()


# --- UCSD ----------------------------------------------------------------------------------

UCSD_M = """
TestVideoFile = {};
% first test video
TestVideoFile{end+1}.gt_frame = [2:3];
TestVideoFile{end+1}.gt_frame = [1:1, 4:4];
"""


@pytest.fixture
def ucsd(tmp_path):
    root = tmp_path / "UCSDped2"
    write_frames(root / "Train" / "Train001", 0, 5, ".tif")
    write_frames(root / "Train" / "Train002", 1, 3, ".tif")
    (root / "Train" / "Train001" / "._001.tif").write_bytes(b"macOS resource fork")
    write_frames(root / "Test" / "Test001", 2, 6, ".tif")
    write_frames(root / "Test" / "Test002", 3, 4, ".tif")
    return root


def test_ucsd_frames_come_from_train_and_test_folders_in_order(ucsd):
    (ucsd / "Test" / "UCSDped2.m").write_text(UCSD_M)
    train, test = load_ucsd_ped(ucsd, size=None)
    assert train.names == ("Train001", "Train002") and test.names == ("Test001", "Test002")
    assert_frames(train.frames[0], 0)
    assert_frames(train.frames[1], 1)
    assert_frames(test.frames[1], 3)
    assert all(not labels.any() for labels in train.labels)


def test_ucsd_labels_from_matlab_ranges(ucsd):
    (ucsd / "Test" / "UCSDped2.m").write_text(UCSD_M)
    _, test = load_ucsd_ped(ucsd, size=None)
    np.testing.assert_array_equal(test.labels[0], [0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(test.labels[1], [1, 0, 0, 1])


def test_ucsd_labels_from_masks_when_no_matlab_file(ucsd):
    write_masks(ucsd / "Test" / "Test001_gt", [0, 0, 1, 1, 1, 0])
    write_masks(ucsd / "Test" / "Test002_gt", [1, 0, 0, 0])
    _, test = load_ucsd_ped(ucsd, size=None)
    assert test.names == ("Test001", "Test002")
    np.testing.assert_array_equal(test.labels[0], [0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(test.labels[1], [1, 0, 0, 0])


def test_ucsd_without_ground_truth_is_an_error(ucsd):
    with pytest.raises(FileNotFoundError, match="Test001_gt"):
        load_ucsd_ped(ucsd)


def test_ucsd_range_beyond_video_is_an_error(ucsd):
    (ucsd / "UCSDped2.m").write_text(UCSD_M.replace("[2:3]", "[2:9]"))
    with pytest.raises(ValueError, match=r"within 1\.\.6"):
        load_ucsd_ped(ucsd)


def test_ucsd_frames_are_resized(ucsd):
    (ucsd / "UCSDped2.m").write_text(UCSD_M)
    train, test = load_ucsd_ped(ucsd, size=(8, 10))
    assert_frames(train.frames[0], 0, shape=(8, 10))
    assert_frames(test.frames[0], 2, shape=(8, 10))


def test_ucsd_found_in_data_dir_under_archive_folder(tmp_path, ucsd, monkeypatch):
    (ucsd / "UCSDped2.m").write_text(UCSD_M)
    archive = tmp_path / "data" / "UCSD_Anomaly_Dataset.v1p2"
    archive.mkdir(parents=True)
    ucsd.rename(archive / "UCSDped2")
    monkeypatch.setenv("MEMAE_DATA_DIR", str(tmp_path / "data"))
    _, test = load_ucsd_ped(size=None)
    assert len(test.frames) == 2


def test_ucsd_missing_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MEMAE_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="UCSDped1"):
        load_ucsd_ped(variant="ped1")


def test_parse_ucsd_ranges_reads_several_ranges_per_video():
    text = (
        "TestVideoFile{end+1}.gt_frame = [60:152];\n"
        "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];"
    )
    assert parse_ucsd_ranges(text) == [[(60, 152)], [(5, 90), (140, 200)]]


# --- Avenue ----------------------------------------------------------------------------------


def volume_labels(labels: list[int]) -> np.ndarray:
    cells = np.empty((1, len(labels)), dtype=object)
    for i, label in enumerate(labels):
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[3, 4] = label
        cells[0, i] = mask
    return cells


def test_avenue_videos_and_volume_labels(tmp_path):
    root = tmp_path / "Avenue Dataset"
    write_avi(root / "training_videos" / "01.avi", 0, 4)
    write_avi(root / "training_videos" / "02.avi", 1, 3)
    write_avi(root / "testing_videos" / "01.avi", 2, 5)
    (root / "testing_label_mask").mkdir()
    savemat(
        root / "testing_label_mask" / "1_label.mat", {"volLabel": volume_labels([0, 1, 1, 0, 0])}
    )
    train, test = load_avenue(root, size=None)
    assert train.names == ("01", "02")
    assert_frames(train.frames[0], 0)
    assert_frames(train.frames[1], 1)
    assert_frames(test.frames[0], 2)
    np.testing.assert_array_equal(test.labels[0], [0, 1, 1, 0, 0])


def test_avenue_frame_folders_and_ground_truth_demo_labels(tmp_path):
    root = tmp_path / "avenue"
    write_frames(root / "training_videos" / "01", 0, 3, ".jpg", name=str)
    write_frames(root / "testing_videos" / "01", 1, 4, ".jpg", name=str)
    labels_folder = root / "ground_truth_demo" / "testing_label_mask"
    labels_folder.mkdir(parents=True)
    savemat(labels_folder / "1_label.mat", {"volLabel": volume_labels([1, 0, 0, 1])})
    train, test = load_avenue(root, size=(12, 16))
    assert_frames(train.frames[0], 0, shape=(12, 16), atol=1)
    np.testing.assert_array_equal(test.labels[0], [1, 0, 0, 1])


def test_avenue_label_count_must_match_frames(tmp_path):
    root = tmp_path / "avenue"
    write_frames(root / "training_videos" / "01", 0, 3, ".png")
    write_frames(root / "testing_videos" / "01", 1, 4, ".png")
    (root / "testing_label_mask").mkdir()
    savemat(root / "testing_label_mask" / "1_label.mat", {"volLabel": volume_labels([1, 0])})
    with pytest.raises(ValueError, match=r"one label per frame \(4\)"):
        load_avenue(root)


# --- ShanghaiTech ------------------------------------------------------------------------------


@pytest.fixture
def shanghaitech(tmp_path):
    root = tmp_path / "shanghaitech"
    # Frame names 0.jpg .. 10.jpg: "10" must come after "9", not after "1".
    write_frames(root / "training" / "frames" / "01_001", 0, 11, ".jpg", name=str)
    write_frames(root / "training" / "frames" / "02_001", 1, 3, ".jpg", name=str)
    write_frames(root / "testing" / "frames" / "01_0014", 2, 4, ".jpg", name=str)
    write_frames(root / "testing" / "frames" / "02_0128", 3, 3, ".jpg", name=str)
    (root / "testing" / "test_frame_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", np.array([0, 0, 1, 1]))
    np.save(root / "testing" / "test_frame_mask" / "02_0128.npy", np.array([1, 0, 0]))
    return root


def test_shanghaitech_frames_in_numeric_order_with_npy_labels(shanghaitech):
    train, test = load_shanghaitech(shanghaitech, size=None)
    assert train.names == ("01_001", "02_001")
    assert_frames(train.frames[0], 0, atol=1)
    np.testing.assert_array_equal(test.labels[0], [0, 0, 1, 1])
    np.testing.assert_array_equal(test.labels[1], [1, 0, 0])


def test_shanghaitech_scene_filter(shanghaitech):
    train, test = load_shanghaitech(shanghaitech, size=None, scenes=["02"])
    assert train.names == ("02_001",) and test.names == ("02_0128",)


def test_shanghaitech_training_videos_when_no_frame_folders(tmp_path):
    root = tmp_path / "shanghaitech"
    write_avi(root / "training" / "videos" / "01_001.avi", 0, 4)
    write_frames(root / "testing" / "frames" / "01_0014", 2, 2, ".png")
    (root / "testing" / "test_frame_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", np.array([0, 1]))
    train, _ = load_shanghaitech(root, size=None)
    assert_frames(train.frames[0], 0)


def test_shanghaitech_missing_mask_is_an_error(shanghaitech):
    (shanghaitech / "testing" / "test_frame_mask" / "02_0128.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"02_0128\.npy"):
        load_shanghaitech(shanghaitech)


# --- shared readers ----------------------------------------------------------------------------


def test_color_frames_become_luma(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    Image.fromarray(np.full((4, 4, 3), (200, 100, 50), np.uint8)).save(folder / "1.png")
    # ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B.
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert abs(int(read_frames(folder, None)[0, 0, 0]) - expected) <= 1


def test_invalid_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"\(height, width\)"):
        read_frames(tmp_path, size=(0, 5))


def test_empty_split_folder_is_an_error(tmp_path):
    (tmp_path / "Train").mkdir()
    with pytest.raises(FileNotFoundError, match="Found none"):
        video_entries(tmp_path / "Train")
