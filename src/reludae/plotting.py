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


def histogram_panels(panels, bins=30, columns=4, cell=(2.6, 2.2)):
    """Draw one histogram panel per ``(xlabel, {label: values})`` pair in ``panels``.

    Every panel shares its bin edges across its series (NaN values are dropped) and shows the
    fraction of samples per bin, so series of different sizes compare directly.
    """
    count = len(panels)
    if count == 0:
        raise ValueError("panels is empty; pass at least one (xlabel, {label: values}) pair")
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(cell[0] * columns, cell[1] * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_axis_off()
    for ax, (xlabel, series) in zip(axes.flat, panels):
        cleaned = {label: np.asarray(values, dtype=np.float64) for label, values in series.items()}
        cleaned = {label: values[np.isfinite(values)] for label, values in cleaned.items()}
        pooled = np.concatenate([np.zeros(0)] + list(cleaned.values()))
        if pooled.size == 0:
            plt.close(fig)
            raise ValueError(f"panel {xlabel!r} has no finite values to draw")
        low, high = pooled.min(), pooled.max()
        edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
        for label, values in cleaned.items():
            weights = np.full(values.size, 1.0 / max(values.size, 1))
            ax.hist(values, bins=edges, weights=weights, histtype="stepfilled", alpha=0.45, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of inputs")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
