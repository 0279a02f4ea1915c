"""The synthetic regulatory-code benchmark (Koo & Ploenzke 2021), regenerated.

The paper's quantitative study uses the synthetic dataset of Koo & Ploenzke (Nature Machine
Intelligence 2021). That file cannot be downloaded here, so this module makes an equivalent one
from the JASPAR 2016 CORE vertebrate motifs that ship, offline, with the ``pyjaspar`` package
(``pip install 'acme_fast[synth]'``):

* positives (label 1) hold 3 to 7 motifs drawn from the 5 core motifs (SP1, Gabpa, CEBPB, MAX,
  YY1) on either strand (10 PWMs);
* negatives (label 0) hold 3 to 7 motifs drawn from those 10 PWMs plus 50 background motifs on
  either strand (110 PWMs); background motifs are chosen at random among the JASPAR motifs that
  do not resemble a core motif (see :func:`resembles_core`);
* each sequence is sampled base by base from its sequence model ``M`` (uniform 0.25 in the gaps,
  the PWM columns where a motif sits), which is kept as the ground truth for attribution maps.

Arrays are NLC: one-hot ``X`` and sequence models ``model`` are ``(N, L, 4)`` float32 (channels
A, C, G, T), labels ``Y`` are ``(N, 1)``.

Examples
--------
>>> from acme_fast.synthetic import make_dataset, SyntheticDataset      # doctest: +SKIP
>>> data = make_dataset(n=20000, seed=0)                                  # doctest: +SKIP
>>> data.save("synthetic.h5")                                             # doctest: +SKIP
>>> x, x_model = SyntheticDataset.load("synthetic.h5").positives("test") # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import need
from ._files import atomic_output, check_new_file

__all__ = [
    "CORE_MOTIFS",
    "MOTIF_COUNT_PROBS",
    "SIMILARITY_THRESHOLD",
    "SyntheticDataset",
    "jaspar_releases",
    "load_jaspar_pwms",
    "make_dataset",
    "motif_similarity",
    "resembles_core",
    "reverse_complement",
]

#: JASPAR names of the positive-class motifs of the published dataset.
CORE_MOTIFS: tuple[str, ...] = ("SP1", "Gabpa", "CEBPB", "MAX", "YY1")

#: Number of motifs per sequence and its probability.
MOTIF_COUNT_PROBS: dict[int, float] = {3: 0.50, 4: 0.25, 5: 0.17, 6: 0.05, 7: 0.03}

#: A motif resembles a core motif when :func:`motif_similarity` reaches this value.
SIMILARITY_THRESHOLD: float = 0.5

#: Fewest aligned columns for :func:`motif_similarity` (or the shorter width, if smaller).
MIN_OVERLAP: int = 5

_SPLITS = ("train", "valid", "test")
_BASES = "ACGT"
_STRAND_CHARS = ("+", "-")


# ---------------------------------------------------------------- JASPAR --------------------


def _need_pyjaspar() -> Path:
    """The folder of the JASPAR SQLite files shipped in pyjaspar, or a clear ImportError."""
    pyjaspar = need("pyjaspar", "the synthetic benchmark (JASPAR databases)", "synth")
    return Path(pyjaspar.__file__).resolve().parent / "data"


def jaspar_releases() -> list[str]:
    """Names of the JASPAR releases shipped in pyjaspar (e.g. ``['JASPAR2014', ..., 'JASPAR2026']``)."""
    return sorted(p.stem for p in _need_pyjaspar().glob("JASPAR*.sqlite"))


def _jaspar_path(release: str) -> Path:
    path = _need_pyjaspar() / f"{release}.sqlite"
    if not path.is_file():
        raise ValueError(f"release: unknown JASPAR release '{release}'; pyjaspar ships {jaspar_releases()}")
    return path


def _jaspar_records(release: str, collection: str, tax_group: str | None) -> list[tuple[str, str, np.ndarray]]:
    """(accession 'MA0079.3', name, (4, width) counts) of the latest version of each matrix, by accession."""
    path = _jaspar_path(release)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT ID, BASE_ID, VERSION, NAME FROM MATRIX WHERE COLLECTION = ?", (collection,)
        ).fetchall()
        if not rows:
            have = [r[0] for r in con.execute("SELECT DISTINCT COLLECTION FROM MATRIX ORDER BY COLLECTION")]
            raise ValueError(f"collection: no matrices in collection '{collection}' of {release}; it has {have}")
        latest: dict[str, tuple[int, int, str]] = {}
        for mid, base, version, name in rows:
            if base not in latest or version > latest[base][1]:
                latest[base] = (mid, version, name)
        ids = [v[0] for v in latest.values()]
        marks = ",".join("?" * len(ids))
        if tax_group is not None:
            tagged = {
                r[0]
                for r in con.execute(
                    f"SELECT ID FROM MATRIX_ANNOTATION WHERE TAG = 'tax_group' AND VAL = ? AND ID IN ({marks})",
                    (tax_group, *ids),
                )
            }
            if not tagged:
                have = [r[0] for r in con.execute(
                    "SELECT DISTINCT VAL FROM MATRIX_ANNOTATION WHERE TAG = 'tax_group' ORDER BY VAL")]
                raise ValueError(f"tax_group: no {collection} matrices of tax group '{tax_group}' in {release}; "
                                 f"tax groups: {have}")
            latest = {b: v for b, v in latest.items() if v[0] in tagged}
            ids = [v[0] for v in latest.values()]
            marks = ",".join("?" * len(ids))
        cells: dict[int, list[tuple[str, int, float]]] = {i: [] for i in ids}
        for mid, row, col, val in con.execute(
            f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN ({marks})", ids
        ):
            cells[mid].append((row.upper(), int(col), float(val)))
    finally:
        con.close()
    out = []
    for base in sorted(latest):
        mid, version, name = latest[base]
        width = max(c for _, c, _ in cells[mid]) if cells[mid] else 0
        counts = np.zeros((4, width), dtype=np.float64)
        for row, col, val in cells[mid]:
            counts[_BASES.index(row), col - 1] = val
        out.append((f"{base}.{version}", name, counts))
    return out


def load_jaspar_pwms(
    release: str = "JASPAR2016", collection: str = "CORE", tax_group: str | None = "vertebrates"
) -> dict[str, np.ndarray]:
    """Position weight matrices of a JASPAR release, read from the SQLite file shipped in pyjaspar.

    The latest version of each matrix (``BASE_ID``) of ``collection`` whose ``tax_group``
    annotation is ``tax_group``; counts normalised per column to probabilities. JASPAR 2016 CORE
    vertebrates holds 519 matrices.

    Parameters
    ----------
    release : str
        Database name, e.g. ``"JASPAR2016"`` (see :func:`jaspar_releases`).
    collection : str
        JASPAR collection (``"CORE"``, ``"CNE"``, ...).
    tax_group : str or None
        Taxonomic group (``"vertebrates"``, ``"plants"``, ...); None keeps all.

    Returns
    -------
    dict of str to numpy.ndarray
        Motif name to its PWM, shape ``(4, width)`` float64 (rows A, C, G, T, columns summing
        to 1), in order of matrix accession (``MA0001``, ``MA0002``, ...).

    Raises
    ------
    ImportError
        pyjaspar is not installed.
    ValueError
        Unknown release, collection or tax group.
    """
    pwms: dict[str, np.ndarray] = {}
    for acc, name, counts in _jaspar_records(release, collection, tax_group):
        tot = counts.sum(axis=0, keepdims=True)
        if counts.shape[1] == 0 or np.any(tot <= 0):
            raise ValueError(f"{release} matrix {acc} ({name}) has an empty column")
        if name in pwms:  # not the case in JASPAR CORE, but keep every matrix if it were
            name = f"{name} ({acc})"
        pwms[name] = counts / tot
    return pwms


def reverse_complement(pwm: np.ndarray) -> np.ndarray:
    """The PWM of the opposite strand: positions reversed, A<->T and C<->G.

    Parameters
    ----------
    pwm : numpy.ndarray
        Shape ``(4, width)``, rows A, C, G, T.

    Returns
    -------
    numpy.ndarray
        Shape ``(4, width)``: ``out[b, j] = pwm[3 - b, width - 1 - j]`` (a copy).
    """
    pwm = np.asarray(pwm)
    if pwm.ndim != 2 or pwm.shape[0] != 4:
        raise ValueError(f"pwm: expected shape (4, width), got {pwm.shape}")
    return np.ascontiguousarray(pwm[::-1, ::-1])


# ---------------------------------------------------------------- similarity ----------------


def _centred_columns(pwm: np.ndarray) -> np.ndarray:
    """Columns minus their mean, scaled to unit norm (uniform columns stay zero): (width, 4)."""
    c = pwm.T - pwm.T.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    return np.divide(c, norm, out=np.zeros_like(c), where=norm > 1e-12)


def motif_similarity(a: np.ndarray, b: np.ndarray, min_overlap: int = MIN_OVERLAP) -> float:
    """Similarity of two PWMs: column Pearson correlation of their best ungapped alignment.

    Every shift of ``b`` against ``a`` with at least ``min(min_overlap, width_a, width_b)``
    overlapping columns, and the same for the reverse complement of ``b``, is scored by the sum
    of the Pearson correlations of the aligned columns (a uniform column correlates 0) divided
    by the width of the shorter motif; the best score is returned. It is 1 when the shorter
    motif's columns, up to scale, appear in the longer one, and an overhang or a mismatching
    column lowers it.

    Parameters
    ----------
    a, b : numpy.ndarray
        PWMs, shape ``(4, width)``.
    min_overlap : int
        Fewest overlapping columns considered.

    Returns
    -------
    float
        In [-1, 1].
    """
    for nm, p in (("a", a), ("b", b)):
        if np.ndim(p) != 2 or np.shape(p)[0] != 4 or np.shape(p)[1] < 1:
            raise ValueError(f"{nm}: expected a PWM of shape (4, width), got {np.shape(p)}")
    ca = _centred_columns(np.asarray(a, dtype=np.float64))
    wa, wb = ca.shape[0], np.shape(b)[1]
    short = min(wa, wb)
    ov = max(1, min(min_overlap, short))
    best = -np.inf
    for bb in (np.asarray(b, dtype=np.float64), reverse_complement(np.asarray(b, dtype=np.float64))):
        corr = ca @ _centred_columns(bb).T  # (wa, wb): Pearson correlation of column i of a, j of b
        for d in range(-(wb - ov), wa - ov + 1):  # column j of b sits on column j + d of a
            best = max(best, float(np.trace(corr, offset=-d)) / short)
    return best


def _name_family(name: str) -> str:
    """The family root of a gene name: trailing digits removed (SP1 -> SP, YY1 -> YY), else one
    trailing letter of a name of 5 or more characters (CEBPB -> CEBP, GABPA -> GABP), else the name (MAX)."""
    n = name.upper()
    m = re.fullmatch(r"([A-Z][A-Z0-9]*?)(\d+)", n)
    if m:
        return m.group(1)
    return n[:-1] if len(n) >= 5 else n


def _same_family(name: str, core: str) -> bool:
    """Whether one component of ``name`` ('MAX::MYC' has two) is ``core`` or a paralog by name.

    A paralog keeps the core name's family root and ends in digits or a single letter instead:
    SP1 ~ SP2, SP3, SP4, SP8 (not SPI1); CEBPB ~ CEBPA, CEBPD, ...; Gabpa ~ GABPB; YY1 ~ YY2;
    MAX ~ MAX::MYC.
    """
    root = _name_family(core)
    for part in re.split(r"::|\s+|\(", name.upper()):
        part = part.strip(" )")
        if part == core.upper() or re.fullmatch(re.escape(root) + r"(\d+|[A-Z])?", part):
            return True
    return False


def resembles_core(
    name: str,
    pwm: np.ndarray,
    core: dict[str, np.ndarray],
    threshold: float = SIMILARITY_THRESHOLD,
) -> bool:
    """Whether a motif resembles one of the core motifs (then it is no background motif).

    A motif resembles a core motif when (a) it is one, or its name is a paralog's by the name
    family rule of ``_same_family`` (SP1 ~ SP2, SP3, ...; CEBPB ~ CEBPA, ...; MAX ~ MAX::MYC;
    YY1 ~ YY2), or (b) the PWMs are similar: :func:`motif_similarity` (best ungapped alignment,
    either strand, mean column Pearson correlation over the shorter width) of at least
    ``threshold`` (default 0.5). Rule (b) catches the motifs that bind like a core motif without
    sharing its name: the KLF/EGR GC-boxes (SP1), the ETS GGAA cores (Gabpa, SPI1), the PAR-bZIP
    and ATF sites (CEBPB) and the E-box CACGTG of MYC, USF, TFE3, ARNT (MAX). The threshold is
    deliberately low (random JASPAR pairs score 0.32 at the median, 0.52 at the 90th percentile):
    it errs on the side of excluding: of the 514 other JASPAR 2016 CORE vertebrate motifs, 185
    resemble a core motif by (a) or (b) and 329 remain as candidates for the background.

    Parameters
    ----------
    name : str
        JASPAR name of the motif.
    pwm : numpy.ndarray
        Its PWM, shape ``(4, width)``.
    core : dict of str to numpy.ndarray
        Core motif names to PWMs (forward strand: both strands are compared).
    threshold : float
        Similarity at or above which a motif resembles a core motif.
    """
    for cname, cpwm in core.items():
        if _same_family(name, cname) or motif_similarity(cpwm, pwm) >= threshold:
            return True
    return False


# ---------------------------------------------------------------- the dataset ---------------


@dataclass
class SyntheticDataset:
    """The synthetic benchmark: sequences, labels, sequence models and motif annotations.

    For each split ``s`` in ``train``, ``valid``, ``test`` (N_s sequences of length L):

    * ``X_s``: one-hot sequences, ``(N_s, L, 4)`` float32 (A, C, G, T);
    * ``Y_s``: labels, ``(N_s, 1)`` int64 (1: core motifs only, 0: background pool);
    * ``model_s``: sequence models ``M`` the bases were sampled from, ``(N_s, L, 4)`` float32
      (0.25 in gaps, the PWM columns at motifs; the attribution ground truth);
    * ``motif_names_s``: ``(N_s, 7)`` str, the motifs in the order they sit ('' pads);
    * ``motif_strands_s``: ``(N_s, 7)`` str, '+' (JASPAR orientation) or '-' (reverse complement);
    * ``motif_starts_s``: ``(N_s, 7)`` int32, first position of each motif (-1 pads);
    * ``motif_widths_s``: ``(N_s, 7)`` int32, width of each motif (0 pads).

    ``params`` holds the generation parameters (n, length, seed, jaspar_release, core_motifs,
    n_background, background_motifs, motif_count_probs, similarity_threshold, ...).
    """

    X_train: np.ndarray
    X_valid: np.ndarray
    X_test: np.ndarray
    Y_train: np.ndarray
    Y_valid: np.ndarray
    Y_test: np.ndarray
    model_train: np.ndarray
    model_valid: np.ndarray
    model_test: np.ndarray
    motif_names_train: np.ndarray
    motif_names_valid: np.ndarray
    motif_names_test: np.ndarray
    motif_strands_train: np.ndarray
    motif_strands_valid: np.ndarray
    motif_strands_test: np.ndarray
    motif_starts_train: np.ndarray
    motif_starts_valid: np.ndarray
    motif_starts_test: np.ndarray
    motif_widths_train: np.ndarray
    motif_widths_valid: np.ndarray
    motif_widths_test: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("X", "Y", "model", "motif_names", "motif_strands", "motif_starts", "motif_widths")

    def split(self, split: str = "test") -> dict[str, np.ndarray]:
        """The arrays of one split by short name (``X``, ``Y``, ``model``, ``motif_names``, ...)."""
        _check_split(split)
        return {k: getattr(self, f"{k}_{split}") for k in self._ARRAYS}

    def positives(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """One-hot sequences and sequence models of the positive (label 1) sequences of a split.

        Attribution quality is evaluated on these.

        Returns
        -------
        x, x_model : numpy.ndarray
            Each ``(N_pos, L, 4)`` float32.
        """
        _check_split(split)
        pos = getattr(self, f"Y_{split}")[:, 0] == 1
        return getattr(self, f"X_{split}")[pos], getattr(self, f"model_{split}")[pos]

    def motifs(self, split: str, i: int) -> list[tuple[str, str, int]]:
        """The motifs of sequence ``i`` of a split: ``[(name, strand, start), ...]`` in order."""
        s = self.split(split)
        k = int(np.sum(s["motif_starts"][i] >= 0))
        return [(str(s["motif_names"][i, j]), str(s["motif_strands"][i, j]), int(s["motif_starts"][i, j]))
                for j in range(k)]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={getattr(self, f'X_{s}').shape[0]}" for s in _SPLITS)
        return (f"SyntheticDataset({sizes}, length={self.X_train.shape[1]}, seed={self.params.get('seed')}, "
                f"jaspar_release={self.params.get('jaspar_release')!r})")

    # ------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the dataset to one HDF5 file, atomically (a temporary file, then ``os.replace``).

        Datasets ``X_s``, ``Y_s``, ``model_s`` (NLC, gzip-compressed), ``motif_names_s``,
        ``motif_strands_s`` (ASCII byte strings), ``motif_starts_s``, ``motif_widths_s`` for each
        split ``s``; the file attributes hold the parameters (``params`` as JSON, and each scalar
        parameter on its own) and ``layout = "NLC"``.

        Parameters
        ----------
        path : str or os.PathLike
            Output file (``.h5`` / ``.hdf5``).
        overwrite : bool
            Replace an existing file; without it an existing file is an error.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        h5py = _need_h5py()
        out = check_new_file(path, name="path", overwrite=overwrite,
                             overwrite_hint="pass overwrite=True (--force) to replace it")
        with atomic_output(out, suffix=".h5.tmp") as tmp, h5py.File(tmp, "w") as f:
            for s in _SPLITS:
                for k in self._ARRAYS:
                    a = np.asarray(getattr(self, f"{k}_{s}"))
                    if a.dtype.kind == "U":
                        a = a.astype("S")
                    kw: dict[str, Any] = {}
                    if a.ndim == 3 and a.size:
                        kw = {"compression": "gzip", "compression_opts": 4, "shuffle": True,
                              "chunks": (min(256, a.shape[0]),) + a.shape[1:]}
                    f.create_dataset(f"{k}_{s}", data=a, **kw)
            f.attrs["layout"] = "NLC"
            f.attrs["params"] = json.dumps(self.params)
            for key, v in self.params.items():
                if isinstance(v, (int, float, str)):
                    f.attrs[key] = v
                elif isinstance(v, (list, tuple)) and all(isinstance(e, str) for e in v):
                    f.attrs[key] = np.array(v, dtype="S")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticDataset:
        """Read a dataset written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            HDF5 file.

        Returns
        -------
        SyntheticDataset
        """
        h5py = _need_h5py()
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"path: no such file: '{p}'")
        try:
            f = h5py.File(p, "r")
        except OSError as exc:
            raise ValueError(f"{p}: not a readable HDF5 file ({exc})") from None
        with f:
            need = [f"{k}_{s}" for s in _SPLITS for k in cls._ARRAYS]
            missing = [k for k in need if k not in f]
            if missing:
                raise ValueError(f"{p}: not a synthetic dataset written by acme_fast (missing {missing})")
            arrays = {}
            for k in need:
                a = f[k][()]
                if a.dtype.kind == "S":
                    a = a.astype("U")
                arrays[k] = a
            params = json.loads(f.attrs["params"]) if "params" in f.attrs else {}
        return cls(**arrays, params=params)


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {list(_SPLITS)}, got {split!r}")


def _need_h5py() -> Any:
    return need("h5py", "saving/loading the synthetic dataset", "io")


# ---------------------------------------------------------------- generation ----------------


def _draw_class(
    rng: np.random.Generator, pool_widths: np.ndarray, n: int, length: int, probs: dict[int, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Motif choices and positions of ``n`` sequences of one class.

    Returns (pool index (n, kmax) int64, start (n, kmax) int64, count (n,)); pads are -1.
    """
    counts_vals = np.array(sorted(probs), dtype=np.int64)
    p = np.array([probs[k] for k in counts_vals], dtype=np.float64)
    kmax = int(counts_vals.max())
    count = rng.choice(counts_vals, size=n, p=p / p.sum())
    slot = np.arange(kmax)
    used = slot[None, :] < count[:, None]  # (n, kmax)
    if n and int(count.max()) * int(pool_widths.min()) >= length:
        raise ValueError(f"length: {length} is too short: {int(count.max())} motifs of width "
                         f">= {int(pool_widths.min())} cannot fit (use length > {int(kmax * pool_widths.max())})")

    # 2. PWMs uniformly with replacement from the pool; redraw while the total width is not below L
    idx = np.full((n, kmax), -1, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(10_000):
        if todo.size == 0:
            break
        draw = rng.integers(0, pool_widths.size, size=(todo.size, kmax))
        draw[~used[todo]] = -1
        width = np.where(draw >= 0, pool_widths[np.maximum(draw, 0)], 0).sum(axis=1)
        ok = width < length
        idx[todo[ok]] = draw[ok]
        todo = todo[~ok]
    else:  # pragma: no cover - feasible rows are drawn with a fair probability
        raise ValueError(f"length: {length} is too short for the motifs of the pool (total width never below it)")
    widths = np.where(idx >= 0, pool_widths[np.maximum(idx, 0)], 0)
    free = length - widths.sum(axis=1)

    # 3. gaps: sep ~ U(0, 2) for each of the count + 1 gaps, scaled to the free length and rounded;
    #    retried until the rounded gaps sum to the free length exactly
    gused = np.arange(kmax + 1)[None, :] <= count[:, None]  # (n, kmax + 1)
    gaps = np.zeros((n, kmax + 1), dtype=np.int64)
    todo = np.arange(n)
    for _ in range(10_000):
        if todo.size == 0:
            break
        sep = rng.uniform(0.0, 2.0, size=(todo.size, kmax + 1)) * gused[todo]
        g = np.round(sep / sep.sum(axis=1, keepdims=True) * free[todo, None]).astype(np.int64)
        ok = g.sum(axis=1) == free[todo]
        gaps[todo[ok]] = g[ok]
        todo = todo[~ok]
    else:  # pragma: no cover - each try succeeds with a probability well above 1 %
        raise RuntimeError("gap sampling did not converge")

    # 4. starts: gap 0, motif 0, gap 1, motif 1, ...
    start = np.cumsum(gaps[:, :kmax], axis=1) + np.cumsum(widths, axis=1) - widths
    start = np.where(used, start, -1)
    return idx, start, count


def _sequence_models(
    bank: np.ndarray, offsets: np.ndarray, pool_widths: np.ndarray, idx: np.ndarray, start: np.ndarray,
    length: int,
) -> np.ndarray:
    """``M`` (n, L, 4) float64: rows of ``bank`` (row 0 = uniform) placed at the motif positions."""
    n, kmax = idx.shape
    rows = np.zeros((n, length), dtype=np.int64)  # bank row of every position; 0 = uniform 0.25
    wmax = int(pool_widths.max())
    col = np.arange(wmax)
    for k in range(kmax):
        seq = np.nonzero(idx[:, k] >= 0)[0]
        if seq.size == 0:
            continue
        m = idx[seq, k]
        valid = col[None, :] < pool_widths[m][:, None]
        pos = start[seq, k][:, None] + col[None, :]
        bank_row = offsets[m][:, None] + col[None, :]
        rows[np.broadcast_to(seq[:, None], valid.shape)[valid], pos[valid]] = bank_row[valid]
    return bank[rows]


def _sample_bases(rng: np.random.Generator, model: np.ndarray) -> np.ndarray:
    """One-hot (n, L, 4) float32 with each base drawn from its column of ``model``.

    A base of probability 0 is never drawn: ``u * total`` stays below the cumulative sum of the
    bases before it.
    """
    cdf = np.cumsum(model, axis=-1)
    u = rng.random(model.shape[:-1]) * cdf[..., 3]
    base = (u[..., None] >= cdf[..., :3]).sum(axis=-1)
    return np.eye(4, dtype=np.float32)[base]


def _check_int_arg(name: str, v: Any, lo: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v}")
    return int(v)


def make_dataset(
    n: int = 20000,
    length: int = 200,
    seed: int = 0,
    jaspar_release: str = "JASPAR2016",
    core_motifs: Sequence[str] = CORE_MOTIFS,
    n_background: int = 50,
    progress: bool = True,
) -> SyntheticDataset:
    """Generate the synthetic regulatory-code benchmark (Koo & Ploenzke 2021).

    1. Motifs: the JASPAR CORE vertebrate PWMs of ``jaspar_release`` (:func:`load_jaspar_pwms`).
       Core pool: ``core_motifs`` on both strands (10 PWMs). Background pool: the core pool plus
       ``n_background`` motifs drawn at random (without replacement) among those that do not
       resemble a core motif (:func:`resembles_core`), on both strands (10 + 100 = 110 PWMs).
    2. Each sequence: 3, 4, 5, 6 or 7 motifs with probabilities 0.50, 0.25, 0.17, 0.05, 0.03,
       drawn uniformly with replacement from its class's pool (redrawn while their total width is
       not below ``length``); gaps ``sep ~ U(0, 2)`` for each of the count + 1 gaps, scaled to the
       free length and rounded (retried until they sum to it exactly); the sequence model ``M``
       is 0.25 in the gaps and the PWM columns at the motifs (in the drawn order); each base is
       sampled from its column of ``M``.
    3. ``n // 2`` positives (core pool, label 1) then ``n - n // 2`` negatives (background pool,
       label 0), one random permutation split 70 / 10 / 20 % into train / valid / test.

    Everything comes from one ``numpy.random.default_rng(seed)``: a seed gives the same
    dataset every time. 20,000 sequences take a few seconds.

    Parameters
    ----------
    n : int
        Number of sequences (default 20,000: 14,000 / 2,000 / 4,000).
    length : int
        Sequence length L (default 200).
    seed : int
        Random seed.
    jaspar_release : str
        JASPAR database shipped in pyjaspar (default ``"JASPAR2016"``, as in the paper).
    core_motifs : sequence of str
        JASPAR names of the positive-class motifs (matched case-insensitively).
    n_background : int
        Number of background motifs (default 50).
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    SyntheticDataset
        Arrays in NLC layout; see :class:`SyntheticDataset`.

    Raises
    ------
    ImportError
        pyjaspar is not installed.
    ValueError
        Bad arguments, an unknown core motif, or too few motifs that do not resemble a core motif.
    """
    from tqdm.auto import tqdm

    n = _check_int_arg("n", n, 2)
    length = _check_int_arg("length", length, 1)
    seed = _check_int_arg("seed", seed, 0)
    n_background = _check_int_arg("n_background", n_background, 0)
    if isinstance(core_motifs, str) or len(core_motifs) == 0:
        raise ValueError(f"core_motifs: expected a non-empty sequence of JASPAR names, got {core_motifs!r}")

    with tqdm(total=5, desc="synthetic data", unit="step", disable=not progress, leave=False) as bar:
        pwms = load_jaspar_pwms(jaspar_release, "CORE", "vertebrates")
        by_lower = {k.lower(): k for k in pwms}
        core_names = []
        for c in core_motifs:
            if c.lower() not in by_lower:
                close = [k for k in pwms if k.lower().startswith(c.lower()[:3])][:10]
                raise ValueError(f"core_motifs: '{c}' is not a {jaspar_release} CORE vertebrate motif"
                                 + (f" (similar names: {close})" if close else ""))
            core_names.append(by_lower[c.lower()])
        if len(set(core_names)) != len(core_names):
            raise ValueError(f"core_motifs: a motif is given twice: {list(core_motifs)}")
        core = {c: pwms[c] for c in core_names}
        rng = np.random.default_rng(seed)

        candidates = [k for k in pwms if k not in core and not resembles_core(k, pwms[k], core)]
        if n_background > len(candidates):
            raise ValueError(f"n_background: only {len(candidates)} {jaspar_release} motifs do not resemble "
                             f"the core motifs, {n_background} asked for")
        order = {k: i for i, k in enumerate(pwms)}
        chosen = rng.choice(len(candidates), size=n_background, replace=False)
        background = sorted((candidates[i] for i in chosen), key=order.__getitem__)
        bar.update()

        # pools: core (both strands), then background (both strands)
        pool: list[tuple[str, str, np.ndarray]] = []
        for name in core_names + background:
            pool.append((name, "+", pwms[name]))
            pool.append((name, "-", reverse_complement(pwms[name])))
        n_core_pool = 2 * len(core_names)
        pool_widths = np.array([p.shape[1] for _, _, p in pool], dtype=np.int64)
        bank = np.concatenate([np.full((1, 4), 0.25)] + [p.T for _, _, p in pool], axis=0)
        offsets = 1 + np.concatenate([[0], np.cumsum(pool_widths)[:-1]])
        pool_names = np.array([nm for nm, _, _ in pool])
        pool_strands = np.array([st for _, st, _ in pool])

        n_pos = n // 2
        parts = []
        for n_cls, n_pool in ((n_pos, n_core_pool), (n - n_pos, len(pool))):
            idx, start, _ = _draw_class(rng, pool_widths[:n_pool], n_cls, length, MOTIF_COUNT_PROBS)
            parts.append((idx, start))
            bar.update()
        idx = np.concatenate([p[0] for p in parts])
        start = np.concatenate([p[1] for p in parts])
        y = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n - n_pos, np.int64)])[:, None]

        model = np.empty((n, length, 4), dtype=np.float32)
        x = np.empty((n, length, 4), dtype=np.float32)
        for lo in range(0, n, 4096):  # chunks keep the float64 temporaries small
            hi = min(n, lo + 4096)
            m = _sequence_models(bank, offsets, pool_widths, idx[lo:hi], start[lo:hi], length)
            model[lo:hi] = m
            x[lo:hi] = _sample_bases(rng, m)
        bar.update()

        pad = idx < 0
        names = np.where(pad, "", pool_names[np.maximum(idx, 0)])
        strands = np.where(pad, "", pool_strands[np.maximum(idx, 0)])
        widths = np.where(pad, 0, pool_widths[np.maximum(idx, 0)]).astype(np.int32)
        starts = start.astype(np.int32)

        perm = rng.permutation(n)
        n_train, n_valid = n * 7 // 10, n // 10
        cuts = {"train": perm[:n_train], "valid": perm[n_train:n_train + n_valid], "test": perm[n_train + n_valid:]}
        arrays: dict[str, np.ndarray] = {}
        for s, ii in cuts.items():
            arrays[f"X_{s}"] = x[ii]
            arrays[f"Y_{s}"] = y[ii]
            arrays[f"model_{s}"] = model[ii]
            arrays[f"motif_names_{s}"] = names[ii]
            arrays[f"motif_strands_{s}"] = strands[ii]
            arrays[f"motif_starts_{s}"] = starts[ii]
            arrays[f"motif_widths_{s}"] = widths[ii]
        bar.update()

    from . import __version__

    params: dict[str, Any] = {
        "n": n, "length": length, "seed": seed, "jaspar_release": jaspar_release,
        "core_motifs": list(core_names), "n_background": n_background, "background_motifs": background,
        "motif_count_probs": {str(k): v for k, v in MOTIF_COUNT_PROBS.items()},
        "similarity_threshold": SIMILARITY_THRESHOLD, "min_overlap": MIN_OVERLAP,
        "split": [0.7, 0.1, 0.2], "layout": "NLC", "acme_fast_version": __version__,
    }
    return SyntheticDataset(**arrays, params=params)
