"""Dataset loaders for memae-tf: numpy in, numpy out, found locally before any download.

Every loader searches, in order: an explicit `path`; the local data folders
(`MEMAE_DATA_DIR`, `~/.keras/datasets`, `~/.cache/memae_tf`); offline copies that
installed packages ship; and, only when `download=True`, a download. When all fail it
raises `DatasetNotFoundError` naming each place tried (see `memae_tf.data.sources`).
"""

from memae_tf.data.cifar10 import load_cifar10
from memae_tf.data.clips import Videos, clip_index, make_clips
from memae_tf.data.fashion_mnist import load_fashion_mnist
from memae_tf.data.idx import read_idx
from memae_tf.data.kdd import load_kddcup99
from memae_tf.data.mnist import load_mnist
from memae_tf.data.moving_mnist import make_moving_mnist
from memae_tf.data.pipeline import array_dataset, clip_dataset
from memae_tf.data.preprocessing import MinMaxScaler, global_contrast_normalize
from memae_tf.data.sources import DatasetNotFoundError
from memae_tf.data.tabular import TabularData, fetch_mlbench, load_mlbench, load_table
from memae_tf.data.video import load_avenue, load_shanghaitech, load_ucsd_ped, read_frames

__all__ = [
    "DatasetNotFoundError",
    "MinMaxScaler",
    "TabularData",
    "Videos",
    "array_dataset",
    "clip_dataset",
    "clip_index",
    "fetch_mlbench",
    "global_contrast_normalize",
    "load_avenue",
    "load_cifar10",
    "load_fashion_mnist",
    "load_kddcup99",
    "load_mlbench",
    "load_mnist",
    "load_shanghaitech",
    "load_table",
    "load_ucsd_ped",
    "make_clips",
    "make_moving_mnist",
    "read_frames",
    "read_idx",
]
