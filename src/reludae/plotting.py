"""Figure helpers shared by the chapters, so every figure has the same look.

Each helper draws into matplotlib axes and returns the figure; the chapters add captions through
MyST-NB cell metadata, not titles.
"""

import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def use_style():
    """Apply the book's matplotlib settings."""
    plt.rcParams.update(STYLE)


def image_grid(images, shape, columns=8, titles=None, cmap="gray", symmetric=True, cell=1.1):
    """Show the rows of ``images`` (``(k, h * w)``) as ``h x w`` images in a grid.

    With ``symmetric`` the color scale of each image is centered at zero, which suits centered
    data and learned weights whose sign matters.
    """
    images = np.asarray(images, dtype=np.float64)
    count = images.shape[0]
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * rows + 0.2), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        image = images[index].reshape(shape)
        if symmetric:
            limit = np.abs(image).max() or 1.0
            ax.imshow(image, cmap=cmap, vmin=-limit, vmax=limit)
        else:
            ax.imshow(image, cmap=cmap)
        if titles is not None:
            ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    return fig
