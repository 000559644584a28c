"""Closed forms, trainers and checks for two-layer ReLU denoising autoencoders.

The model is ``f(y) = W2 relu(W1^T y)`` with weights of shape ``(d, p)``, trained at one noise
level ``sigma`` with the penalty ``lam (||W1||_F^2 + ||W2||_F^2)``. Samples are rows: a data set
``X`` has shape ``(n, d)``. The modules follow the companion book's chapters:

- ``data``: point sets with pairwise negative cosines, Gaussian mixtures, duplicates, digits;
- ``denoisers``: the empirical and Gaussian-mixture posterior-mean denoisers;
- ``model`` and ``training``: the ReLU denoising autoencoder in float64 torch and its trainers;
- ``theory``: closed-form stationary points and their loss values;
- ``metrics``: separability, representation statistics, invariants of learned weights;
- ``claims``: the registry behind ``python -m reludae verify``.
"""

__version__ = "0.1.0"
