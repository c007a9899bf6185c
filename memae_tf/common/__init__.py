"""The dependency-free bottom of the package, shipped by both distributions.

`contract` holds what the exporter, the development server and the client agree
on (signature and tensor names, the model repository's layout); `checks` the
argument checks that every layer uses. Nothing here imports TensorFlow, numpy
or another `memae_tf` module, so the TensorFlow-free client (`pip install
./client`) ships this package beside `memae_tf.client`.
"""
