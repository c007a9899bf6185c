"""The demo's serving step: export, development server, gRPC query."""

import numpy as np

from memae_tf.demo import serve_and_query
from memae_tf.detector import MemAE


def test_served_scores_equal_in_process_scores(tmp_path, capsys):
    detector = MemAE.from_preset("mnist", filters=(4, 8), kernel_sizes=3, num_items=10)
    digits = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    detector.infer_threshold(digits, fpr=0.5)
    served = serve_and_query(detector, digits, np.arange(6), tmp_path / "models" / "memae")
    np.testing.assert_allclose(served, detector.score(digits), rtol=1e-5, atol=1e-7)
    assert (tmp_path / "models" / "memae" / "1" / "saved_model.pb").is_file()
    assert "max |gRPC - in-process|" in capsys.readouterr().out
