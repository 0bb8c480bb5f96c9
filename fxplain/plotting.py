"""Figures of explanations (matplotlib, imported only when a figure is drawn)."""

from __future__ import annotations

import numpy as np

from ._util.errors import InvalidInputError


def _gray(image: np.ndarray) -> np.ndarray:
    return (image @ np.array([0.299, 0.587, 0.114]) / 255.0).clip(0, 1)


_MAPS = {"similarity": "Greens", "dissimilarity": "Reds"}


def _verdict(result) -> str:
    """Score, threshold and decision; for dlib also the distance and its 0.6 rule."""
    verdict = "MATCH" if result.match else "NO MATCH"
    text = f"score {result.score:.3f} vs threshold {result.threshold:.3f} -> {verdict}"
    distance = getattr(result, "distance", None)
    if distance is not None:
        rule = "<" if result.match else ">="
        text += f"  (distance {distance:.3f} {rule} {result.distance_threshold:.2f})"
    return text


def _tick_text(value: float, vmax: float) -> str:
    """A colour-bar tick: ``0``, compact scientific (``4.0e-05``) on tiny or huge scales, else 3 digits."""
    if value == 0:
        return "0"
    if vmax < 1e-2 or vmax >= 1e4:
        return f"{value:.1e}"
    return f"{value:.3g}"


def _colorbar(fig, mappable, ax, label: str, location: str = "bottom"):
    """A colour bar with three readable ticks (no offset text to collide with the label)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    shrink = 0.6 if location == "bottom" else 0.9
    bar = fig.colorbar(mappable, ax=ax, shrink=shrink, location=location, label=label)
    vmax = float(max(abs(mappable.norm.vmin or 0.0), abs(mappable.norm.vmax or 0.0)))
    bar.locator = MaxNLocator(3)
    bar.formatter = FuncFormatter(lambda value, _: _tick_text(value, vmax))
    bar.update_ticks()
    return bar


def map_units(result) -> str:
    """What a result's map values measure, for colour bars."""
    if result.normalize == "pair":
        return "fraction of the pair's largest value"
    if result.normalize == "image":
        return "fraction of the image's largest value"
    return result.extras.get("units", "evidence")


def _panel(fig, ax, result, images: np.ndarray, row: int, kind: str, vmax: float, alpha: float,
           colorbar: bool):
    """One panel: face ``row`` of ``images`` (clipped pixels), alone or under one of its maps."""
    label = "AB"[row]
    if kind == "image":
        ax.imshow(images[row].astype(np.uint8))
        ax.set_title(f"image {label}")
    else:
        ax.imshow(_gray(images[row]), cmap="gray", vmin=0, vmax=1)
        shown = ax.imshow(getattr(result, kind)[row], cmap=_MAPS[kind], vmin=0, vmax=vmax, alpha=alpha)
        ax.set_title(f"{kind} {label}")
        if colorbar:
            _colorbar(fig, shown, ax, map_units(result))
        return shown
    return None


def plot_pair(result, *, ax=None, side: str = "A", kind: str = "dissimilarity", alpha: float = 0.6,
              figsize=(9.0, 6.4)):
    """Both faces, and each face's similarity and dissimilarity maps over it.

    Rows are image A and image B; columns the face, the similarity overlay
    (green) and the dissimilarity overlay (red). All four maps share one
    colour scale, from 0 to the largest value among them; the colour bars
    name the maps' unit, and the title gives score, threshold and decision
    (for dlib also the distance against its 0.6 rule).

    ``ax``: None (a new figure), a 2x3 array of axes to draw the grid into,
    or one axes for a single panel (``side`` "A"/"B", ``kind``
    "similarity"/"dissimilarity"/"image"). Returns the figure drawn on.
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    images = np.clip(result.images, 0, 255)
    vmax = float(max(result.similarity.max(), result.dissimilarity.max(), 1e-12))
    if isinstance(ax, Axes):
        if side not in ("A", "B") or kind not in ("image", *_MAPS):
            raise InvalidInputError(f"side must be 'A' or 'B' and kind 'image', 'similarity' or 'dissimilarity'; "
                                    f"got {side!r}, {kind!r}")
        fig = ax.figure
        _panel(fig, ax, result, images, "AB".index(side), kind, vmax, alpha, colorbar=True)
        ax.set_axis_off()
        return fig
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(2, 3)
    else:
        axes = np.asarray(ax, dtype=object)
        if axes.shape != (2, 3) or not all(isinstance(a, Axes) for a in axes.ravel()):
            raise InvalidInputError(f"ax must be one matplotlib Axes or a 2x3 array of them, got shape {axes.shape}")
        fig = axes[0, 0].figure
    for row in (0, 1):
        _panel(fig, axes[row, 0], result, images, row, "image", vmax, alpha, colorbar=False)
        for col, kind_name in enumerate(_MAPS, start=1):
            shown = _panel(fig, axes[row, col], result, images, row, kind_name, vmax, alpha, colorbar=False)
            if row == 1:
                _colorbar(fig, shown, axes[:, col], map_units(result))
    for a in axes.ravel():
        a.set_axis_off()
    fig.suptitle(f"{result.method}: {_verdict(result)}  (model {result.model_name})")
    return fig


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, *, labels=None, figsize=None):
    """Faces (top row) and what the decoder rebuilds from their embeddings (bottom row)."""
    from matplotlib.figure import Figure

    n = len(originals)
    fig = Figure(figsize=figsize or (2.0 * n, 4.4), layout="constrained")
    axes = np.asarray(fig.subplots(2, n)).reshape(2, n)
    for i in range(n):
        axes[0, i].imshow(np.clip(originals[i], 0, 255).astype(np.uint8))
        axes[1, i].imshow(reconstructions[i])
        if labels is not None:
            axes[0, i].set_title(str(labels[i]), fontsize=9)
    axes[0, 0].set_ylabel("face")
    axes[1, 0].set_ylabel("rebuilt from its feature")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_dimension_grid(image: np.ndarray, region_maps: np.ndarray, contributions: np.ndarray, *, k: int = 4,
                        alpha: float = 0.6, figsize=None):
    """The ``k`` dimensions arguing most for a match (top row) and most against it (bottom row).

    Each panel overlays the dimension's region map ``R_k`` on ``image`` and
    names the dimension and its contribution ``c_k`` to the margin
    (:func:`fxplain.methods.decomposition.margin_contributions`: the ``c_k``
    sum to score − threshold; positive argues for a match, negative
    against). All panels share one colour scale, from 0 to the largest value
    shown; the colour bar of each row gives it (with normalised maps, the
    share of the dimension's map on each pixel).
    """
    from matplotlib.figure import Figure

    c = np.asarray(contributions, np.float64)
    order = np.argsort(c)
    rows = (("for", order[::-1][:k], "Greens"), ("against", order[:k], "Reds"))
    vmax = float(max(max(float(np.max(region_maps[dim])) for dim in dims) for _, dims, _ in rows))
    vmax = max(vmax, 1e-12)
    fig = Figure(figsize=figsize or (2.2 * k + 1.2, 5.2), layout="constrained")
    axes = np.asarray(fig.subplots(2, k)).reshape(2, k)
    gray = _gray(np.clip(image, 0, 255))
    for row, (label, dims, cmap) in enumerate(rows):
        shown = None
        for col, dim in enumerate(dims):
            ax = axes[row, col]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            shown = ax.imshow(region_maps[dim], cmap=cmap, vmin=0, vmax=vmax, alpha=alpha)
            ax.set_title(f"{label}: dim {dim}, c={c[dim]:+.4f}", fontsize=8)
            ax.set_axis_off()
        if shown is not None:
            _colorbar(fig, shown, axes[row, :], "R_k: share per pixel", location="right")
    fig.suptitle("dimensions arguing for (top) and against (bottom) the match, with the regions they encode\n"
                 "c = the dimension's contribution c_k to the margin (the c_k sum to score − threshold): "
                 "positive argues for a match, negative against", fontsize=10)
    return fig


def plot_faces(photo: np.ndarray, faces, *, ax=None, figsize=None):
    """A photo with each face's box (dlib's inclusive rectangle), its 5 landmarks and its index and confidence.

    ``faces``: what :func:`fxplain.detect_faces` returned for ``photo`` (uint8
    ``(H, W, 3)``). ``ax``: None (a new figure) or a matplotlib axes to draw
    into. Returns the figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    h, w = photo.shape[:2]
    if ax is None:
        scale = 8.0 / max(h, w)
        fig = Figure(figsize=figsize or (max(w * scale, 2.0), max(h * scale, 2.0)), layout="constrained")
        ax = fig.subplots()
    fig = ax.figure
    ax.imshow(photo)
    for k, face in enumerate(faces):
        left, top, right, bottom = face.box
        # an inclusive pixel rectangle covers pixel centres left..right: edges half a pixel out
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                               edgecolor="lime", linewidth=1.5))
        ax.plot(face.landmarks[:, 0], face.landmarks[:, 1], "o", color="red", markersize=2.5)
        ax.text(left, top - 3, f"{k}: {face.confidence:.2f}", color="lime", fontsize=8, va="bottom")
    ax.set_title(f"{len(faces)} face(s)")
    ax.set_axis_off()
    return fig


def warp_to_photo(chip_map: np.ndarray, chip_to_photo: np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
    """A map over a chip carried onto its photo: float ``(H, W)``, NaN outside the chip's footprint.

    ``chip_to_photo`` is the ``(2, 3)`` affine map from chip ``(col, row, 1)``
    to photo ``(x, y)`` (``Face.chip_and_transform``); each photo pixel takes
    the value of the chip pixel nearest to where it maps in the chip.
    """
    h, w = photo_size
    a, t = np.asarray(chip_to_photo, np.float64)[:, :2], np.asarray(chip_to_photo, np.float64)[:, 2]
    ys, xs = np.mgrid[0:h, 0:w]
    col_row = np.linalg.solve(a, np.stack([xs.ravel() - t[0], ys.ravel() - t[1]]))
    cols, rows = np.rint(col_row).astype(np.int64)
    inside = (rows >= 0) & (rows < chip_map.shape[0]) & (cols >= 0) & (cols < chip_map.shape[1])
    out = np.full(h * w, np.nan)
    out[inside] = chip_map[rows[inside], cols[inside]]
    return out.reshape(h, w)


def _view_around(transform: np.ndarray, chip_shape: tuple[int, int], photo_shape: tuple[int, int],
                 context: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y limits of a window ``context`` times the chip's footprint on the photo, centred on it, in the photo."""
    rows, cols = chip_shape
    corners = np.array([[0, 0, 1], [cols - 1, 0, 1], [0, rows - 1, 1], [cols - 1, rows - 1, 1]], np.float64)
    points = corners @ np.asarray(transform, np.float64).T
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    half = context * float((points.max(axis=0) - points.min(axis=0)).max()) / 2
    limits = []
    for axis, extent in ((0, photo_shape[1]), (1, photo_shape[0])):
        low, high = centre[axis] - half, centre[axis] + half
        if high - low >= extent:
            low, high = 0.0, float(extent)
        elif low < 0:
            low, high = 0.0, high - low
        elif high > extent:
            low, high = low - (high - extent), float(extent)
        limits.append((low - 0.5, high - 0.5))
    return limits[0], limits[1]


def plot_on_photos(result, *, alpha: float = 0.6, figsize=None, context: float | None = 4.0):
    """Each side's similarity and dissimilarity maps warped back onto its photo, with the face's box.

    Rows are sides A and B, columns similarity (green) and dissimilarity
    (red), one colour scale for all four maps as :func:`plot_pair`. A side
    given as a chip is drawn on its chip. Needs ``result.faces`` (explanations
    of photos made in this session). ``context``: show a window this many
    times the face's chip footprint around it (a small face in a large photo
    stays visible); ``None`` shows the whole photo. Returns the figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if result.faces is None:
        raise InvalidInputError("this explanation has no photos to draw on: explain photos (or Face objects) "
                                "rather than chips; a saved explanation of photos gets them back with "
                                "PairExplanation.load(path, photos=(photo_a, photo_b)) or photos=True")
    vmax = float(max(result.similarity.max(), result.dissimilarity.max(), 1e-12))
    fig = Figure(figsize=figsize or (9.0, 8.0), layout="constrained")
    axes = fig.subplots(2, 2)
    for row, face in enumerate(result.faces):
        for col, (kind_name, cmap) in enumerate((("similarity", "Greens"), ("dissimilarity", "Reds"))):
            ax = axes[row, col]
            chip_map = getattr(result, kind_name)[row]
            if face is None:
                background, shown_map = np.clip(result.images[row], 0, 255).astype(np.uint8), chip_map
            else:
                transform = np.asarray(result.extras["faces"][row]["chip_to_photo"])
                background = face.photo
                shown_map = warp_to_photo(chip_map, transform, face.photo.shape[:2])
                left, top, right, bottom = face.box
                ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                                       edgecolor="yellow", linewidth=1.0))
            ax.imshow(_gray(background), cmap="gray", vmin=0, vmax=1)
            shown = ax.imshow(shown_map, cmap=cmap, vmin=0, vmax=vmax, alpha=alpha)
            if face is not None and context is not None:
                x_limits, y_limits = _view_around(transform, chip_map.shape, face.photo.shape[:2], float(context))
                ax.set_xlim(*x_limits)
                ax.set_ylim(y_limits[1], y_limits[0])  # image rows grow downward
            ax.set_title(f"{kind_name} {'AB'[row]}")
            ax.set_axis_off()
            if row == 1:
                _colorbar(fig, shown, axes[:, col], map_units(result))
    fig.suptitle(f"{result.method}: {_verdict(result)}  (model {result.model_name})")
    return fig


def plot_result_grid(results, *, kind: str = "dissimilarity", alpha: float = 0.6, columns: int = 4, titles=None):
    """Many pairs at a glance: each pair's faces A and B side by side with its ``kind`` map over them.

    ``kind`` is "similarity", "dissimilarity" or "evidence" (similarity minus
    dissimilarity, green for the match, red against it). One colour scale
    spans the whole grid, so pairs compare directly (maps of one method share
    units). Returns the :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    results = list(results)
    if not results:
        raise InvalidInputError("plot_result_grid needs at least one explanation")
    maps = [r.evidence if kind == "evidence" else getattr(r, kind) for r in results]
    vmax = float(max(max(np.abs(m).max() for m in maps), 1e-12))
    cols = max(1, min(int(columns), len(results)))
    rows = -(-len(results) // cols)
    fig = Figure(figsize=(3.4 * cols, 2.0 * rows + 0.8), layout="constrained")
    axes = np.asarray(fig.subplots(rows, 2 * cols, squeeze=False))
    cmap, vmin = ("RdYlGn", -vmax) if kind == "evidence" else (_MAPS[kind], 0.0)
    shown = None
    for k, (result, values) in enumerate(zip(results, maps)):
        r, c = divmod(k, cols)
        images = np.clip(result.images, 0, 255)
        for side in (0, 1):
            ax = axes[r, 2 * c + side]
            ax.imshow(_gray(images[side]), cmap="gray", vmin=0, vmax=1)
            shown = ax.imshow(values[side], cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha)
        axes[r, 2 * c].set_title((titles[k] if titles is not None else _verdict(result))[:60], fontsize=8, loc="left")
    for ax in axes.ravel():
        ax.set_axis_off()
    _colorbar(fig, shown, axes, f"{kind} ({map_units(results[0])})")
    return fig


def _region_groups(table, kind: str):
    """The region table's rows of ``kind``, and its group columns (those before "kind")."""
    if kind not in ("similarity", "dissimilarity"):
        raise InvalidInputError(f"kind must be 'similarity' or 'dissimilarity', got {kind!r}")
    needed = {"kind", "region", "share", "low", "high", "n"}
    if not needed <= set(getattr(table, "columns", ())):
        raise InvalidInputError("pass a region table (ResultSet.region_table())")
    group_columns = list(table.columns[:list(table.columns).index("kind")])
    rows = table[table["kind"] == kind]
    if rows.empty:
        raise InvalidInputError(f"the region table has no {kind} rows")
    return rows, group_columns


def _group_label(key, columns) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(str(k) for k in key) if columns else "all pairs"


def plot_region_shares(table, *, ax=None, kind: str = "dissimilarity"):
    """Bar chart of a region table: the mean share per facial region, one bar per group, with intervals.

    ``table`` is :meth:`fxplain.ResultSet.region_table`'s output. Returns
    the :class:`matplotlib.figure.Figure` drawn on.
    """
    from matplotlib.figure import Figure

    from .faces.regions import REGION_NAMES

    rows, group_columns = _region_groups(table, kind)
    groups = list(rows.groupby(group_columns, sort=True, dropna=False)) if group_columns else [((), rows)]
    if ax is None:
        fig = Figure(figsize=(9.0, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(REGION_NAMES))
    for g, (key, group) in enumerate(groups):
        group = group.set_index("region").reindex(list(REGION_NAMES))
        share = group["share"].to_numpy(np.float64)
        errors = np.abs(np.stack([share - group["low"].to_numpy(np.float64),
                                  group["high"].to_numpy(np.float64) - share]))
        n = int(np.nanmax(group["n"].to_numpy(np.float64))) if len(group) else 0
        ax.bar(x + (g - (len(groups) - 1) / 2) * width, np.nan_to_num(share), width,
               yerr=np.nan_to_num(errors), capsize=2, label=f"{_group_label(key, group_columns)} (n={n})")
    ax.set_xticks(x, [name.replace("_", " ") for name in REGION_NAMES], rotation=30, ha="right")
    ax.set_ylabel(f"share of {kind}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, title=", ".join(group_columns) or None, title_fontsize=8)
    return fig


def plot_region_overlay(table, image=None, *, ax=None, kind: str = "dissimilarity", group=None):
    """One group's region shares drawn over a face: each region coloured by its share, labelled in percent.

    ``image`` is an aligned chip (a result set's mean face, say) of the
    size the regions are drawn for (the template's mean face regions);
    without it, dlib's 150x150 template. ``group`` picks a group of the
    table (its value, or a tuple for several group columns; default the
    first). Returns the :class:`matplotlib.figure.Figure` drawn on.
    """
    from matplotlib.figure import Figure

    from .faces.regions import REGION_NAMES, region_labels

    rows, group_columns = _region_groups(table, kind)
    if group_columns:
        groups = dict(list(rows.groupby(group_columns, sort=True, dropna=False)))
        if group is None:
            group = next(iter(groups))
        key = group if group in groups else (group,) if (group,) in groups else None
        if key is None:
            raise InvalidInputError(f"no group {group!r} in the table; groups: {list(groups)}")
        rows = groups[key]
    size = (150, 150) if image is None else np.asarray(image).shape[:2]
    labels = region_labels(size)
    shares = rows.set_index("region").reindex(list(REGION_NAMES))["share"].to_numpy(np.float64)
    painted = np.where(np.isfinite(shares[labels]), shares[labels], 0.0)
    if ax is None:
        fig = Figure(figsize=(3.6, 3.9), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if image is not None:
        ax.imshow(_gray(np.clip(np.asarray(image, np.float64), 0, 255)), cmap="gray", vmin=0, vmax=1)
    shown = ax.imshow(painted, cmap=_MAPS[kind], vmin=0, vmax=max(float(np.nanmax(shares)), 1e-9), alpha=0.6)
    ax.contour(labels, levels=np.arange(len(REGION_NAMES)) + 0.5, colors="white", linewidths=0.5)
    for k, name in enumerate(REGION_NAMES):
        ys, xs = np.nonzero(labels == k)
        if name in ("eyes", "brows", "cheeks"):  # two parts: label the image-left one, not the gap between
            ys, xs = ys[xs < labels.shape[1] / 2], xs[xs < labels.shape[1] / 2]
        if len(ys) and name != "outside" and np.isfinite(shares[k]):
            ax.text(xs.mean(), ys.mean(), f"{100 * shares[k]:.0f}%", ha="center", va="center", fontsize=7,
                    color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0})
    ax.set_title(f"{kind}: {_group_label(group, group_columns) if group_columns else 'all pairs'}", fontsize=9)
    ax.set_axis_off()
    _colorbar(fig, shown, ax, f"share of {kind}")
    return fig


def plot_region_summary(table, image=None, *, kind: str = "dissimilarity"):
    """:func:`plot_region_shares` beside :func:`plot_region_overlay` of each group, in one Figure."""
    from matplotlib.figure import Figure

    rows, group_columns = _region_groups(table, kind)
    keys = [k for k, _ in rows.groupby(group_columns, sort=True, dropna=False)] if group_columns else [None]
    fig = Figure(figsize=(9.0 + 2.6 * len(keys), 3.9), layout="constrained")
    grid = fig.add_gridspec(1, 1 + len(keys), width_ratios=[3.4] + [1.0] * len(keys))
    plot_region_shares(table, ax=fig.add_subplot(grid[0, 0]), kind=kind)
    for k, key in enumerate(keys):
        plot_region_overlay(table, image, ax=fig.add_subplot(grid[0, 1 + k]), kind=kind, group=key)
    return fig
