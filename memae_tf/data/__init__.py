"""Dataset loaders for memae-tf: numpy in, numpy out, found locally before any download.

Every loader searches, in order: an explicit `path`; the local data folders
(`MEMAE_DATA_DIR`, `~/.keras/datasets`, `~/.cache/memae_tf`); offline copies that
installed packages ship; and, only when `download=True`, a download. When all fail it
raises `DatasetNotFoundError` naming each place tried (see `memae_tf.data.sources`).

The names below are imported on first use, so that e.g. `load_mnist` does not
import TensorFlow (only `array_dataset` and `clip_dataset` need it).
"""

from memae_tf._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    ".animal_mnist": ["load_animal_mnist"],
    ".cifar10": ["load_cifar10"],
    ".clips": ["Videos", "clip_index", "make_clips"],
    ".fashion_mnist": ["load_fashion_mnist"],
    ".idx": ["read_idx"],
    ".inputs": ["prepare_inputs"],
    ".kdd": ["load_kddcup99"],
    ".mnist": ["load_mnist"],
    ".moving_mnist": ["make_moving_mnist"],
    ".pipeline": ["array_dataset", "clip_dataset", "reconstruction_dataset"],
    ".preprocessing": ["MinMaxScaler", "global_contrast_normalize"],
    ".sources": ["DatasetNotFoundError"],
    ".tabular": ["TabularData", "fetch_mlbench", "load_mlbench", "load_table"],
    ".tfds": ["dataset_array", "from_tfds", "load_tfds"],
    ".video": ["load_avenue", "load_shanghaitech", "load_ucsd_ped", "read_frames"],
    ".vtest": ["fetch_opencv_doc", "load_opencv_sample", "load_vtest", "make_vtest_benchmark",
               "read_vtest", "vtest_object"],
})
