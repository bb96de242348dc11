"""Datasets in every format the app opens, written by the real writers in several shapes,
each with the reference its own library reads back (an AnnData the checks compare with).

- AnnData Zarr: anndata 0.12 (Zarr format 2 and 3; folder, zipped at the root or in a
  sub-folder, without consolidated metadata, sharded, dense/CSC/no X), plus the stores
  written by anndata 0.8 and 0.10 committed in tests/fixtures (make_legacy_fixtures.py);
- MuData: mudata writes `.h5mu` (and MuData Zarr): CITE-seq-like rna + prot with
  partly shared cells, container obs/obsm, and a three-modality file;
- loom: loompy writes files with velocyto-like ``_X``/``_Y``, Seurat-like
  ``UMAP_1/2/3``, unicode text, layers; anndata's ``write_loom`` writes obsm as 2-D
  column attributes.

``build_all(folder)`` returns ``{case: Case}``. The reference of a MuData modality is
the modality with the container's columns and embeddings added under the names the app
lists them by (data/mudata.py), restricted to the modality's cells; the reference of a
loom file is built from what loompy reads (genes x cells transposed).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import zarr
from scipy import sparse

from tests.data_api.files import make_anndata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class Case:
    path: Path
    reference: ad.AnnData
    kind: str  # format id: zarr, h5mu, mudata-zarr, loom
    modality: str | None = None
    extra: dict = field(default_factory=dict)


def zarr_safe(adata: ad.AnnData) -> ad.AnnData:
    """Zarr keys cannot hold '/': the one such obs column of make_anndata is renamed."""
    adata.obs = adata.obs.rename(columns={"sample/group": "sample_group"})
    return adata


def write_zarr(adata: ad.AnnData, path: Path, fmt: int, *, shard: bool = False) -> Path:
    with ad.settings.override(zarr_write_format=fmt, allow_write_nullable_strings=True), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if shard:
            with ad.settings.override(auto_shard_zarr_v3=True):
                adata.write_zarr(path, convert_strings_to_categoricals=False)
        else:
            adata.write_zarr(path, convert_strings_to_categoricals=False)
    return path


def zip_folder(folder: Path, path: Path, inside: str = "") -> Path:
    """Zip a store folder; ``inside`` puts it in a sub-folder of the archive (as ``zip -r
    x.zarr.zip x.zarr`` does)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, _, files in sorted(os.walk(folder)):
            for name in sorted(files):
                full = Path(directory, name)
                member = full.relative_to(folder).as_posix()
                archive.write(full, f"{inside}/{member}" if inside else member)
    return path


def unconsolidate(folder: Path) -> Path:
    """Remove consolidated metadata (a store written with zarr directly, or copied
    without it): the reader and the server then work from the per-node documents."""
    (folder / ".zmetadata").unlink(missing_ok=True)
    root = folder / "zarr.json"
    if root.exists():
        document = json.loads(root.read_text())
        document.pop("consolidated_metadata", None)
        root.write_text(json.dumps(document))
    for group in folder.rglob(".zgroup"):
        document = json.loads(group.read_text())
        if document.pop("consolidated_metadata", None) is not None:
            group.write_text(json.dumps(document))
    return folder


def read_zarr_reference(path: Path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".zip":
            store = zarr.storage.ZipStore(path, mode="r")
            try:
                root = zarr.open_group(store, mode="r")
                if "obs" not in root:  # the store sits in a sub-folder of the archive
                    inner = next(k for k in root.keys())
                    root = zarr.open_group(store, mode="r", path=inner)
                return ad.io.read_elem(root)
            finally:
                store.close()
        return ad.read_zarr(path)


# --- AnnData Zarr ---------------------------------------------------------------------

def _dense_x() -> ad.AnnData:
    rng = np.random.default_rng(11)
    adata = ad.AnnData(X=rng.random((300, 40)).astype(np.float32),
                       obs=pd.DataFrame({"batch": pd.Categorical(rng.choice(["a", "b"], 300))},
                                        index=[f"c{i}" for i in range(300)]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(40)]))
    adata.obsm["X_umap"] = rng.normal(size=(300, 2)).astype(np.float32)
    return adata


def _csc_x() -> ad.AnnData:
    adata = _dense_x()
    adata.X = sparse.csc_matrix(np.where(adata.X > 0.7, adata.X, 0))
    return adata


def _no_x() -> ad.AnnData:
    adata = _dense_x()
    return ad.AnnData(obs=adata.obs, var=adata.var, obsm=dict(adata.obsm))


def zarr_cases(folder: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    rich = zarr_safe(make_anndata())
    for fmt in (2, 3):
        store = write_zarr(rich, folder / f"rich-v{fmt}.zarr", fmt)
        cases[f"zarr-v{fmt}-folder"] = Case(store, read_zarr_reference(store), "zarr")
        flat = zip_folder(store, folder / f"rich-v{fmt}.zarr.zip")
        cases[f"zarr-v{fmt}-zip"] = Case(flat, read_zarr_reference(store), "zarr")
        loose = unconsolidate(shutil.copytree(store, folder / f"loose-v{fmt}.zarr"))
        cases[f"zarr-v{fmt}-unconsolidated"] = Case(loose, read_zarr_reference(store), "zarr")
    nested = zip_folder(folder / "rich-v3.zarr", folder / "nested.zarr.zip", "rich-v3.zarr")
    cases["zarr-v3-zip-in-a-folder"] = Case(nested, read_zarr_reference(folder / "rich-v3.zarr"),
                                            "zarr")
    sharded = write_zarr(rich, folder / "sharded.zarr", 3, shard=True)
    cases["zarr-v3-sharded"] = Case(sharded, read_zarr_reference(sharded), "zarr")
    for name, make in (("dense", _dense_x), ("csc", _csc_x), ("no-x", _no_x)):
        for fmt in (2, 3):
            store = write_zarr(make(), folder / f"{name}-v{fmt}.zarr", fmt)
            cases[f"zarr-v{fmt}-{name}"] = Case(store, read_zarr_reference(store), "zarr")
    for archive in sorted(FIXTURES.glob("anndata-*.zarr.zip")):
        copy = Path(shutil.copy(archive, folder / archive.name))
        unzipped = folder / archive.name.removesuffix(".zip")
        with zipfile.ZipFile(copy) as z:
            z.extractall(unzipped)
        label = archive.name.removesuffix(".zarr.zip")
        cases[f"{label}-zip"] = Case(copy, read_zarr_reference(unzipped), "zarr")
        cases[f"{label}-folder"] = Case(unzipped, read_zarr_reference(unzipped), "zarr")
    return cases


# --- MuData ---------------------------------------------------------------------------

def _citeseq():
    import mudata as md

    rng = np.random.default_rng(21)
    n = 220
    cells = [f"cell{i}" for i in range(n)]
    rna_x = sparse.random(n, 35, density=0.25, format="csr", dtype=np.float32, random_state=3)
    rna = ad.AnnData(X=rna_x, var=pd.DataFrame(index=[f"GENE{i}" for i in range(35)]),
                     obs=pd.DataFrame({
                         "leiden": pd.Categorical(rng.choice(["0", "1", "2"], n)),
                         "n_counts": rng.integers(100, 900, n),
                         "label": pd.Categorical(rng.choice(["B", "T"], n)),
                     }, index=cells))
    rna.obsm["X_umap"] = rng.normal(size=(n, 2)).astype(np.float32)
    rna.layers["counts"] = sparse.csr_matrix(rna_x * 3)
    kept = np.sort(rng.choice(n, 170, replace=False))  # protein measured in fewer cells
    prot = ad.AnnData(X=rng.random((170, 8)).astype(np.float32),
                      var=pd.DataFrame(index=[f"CD{i}" for i in range(8)]),
                      obs=pd.DataFrame({"isotype_ok": rng.random(170) < 0.8,
                                        "label": rng.choice(["x", "y"], 170).astype(object)},
                                       index=[cells[i] for i in kept]))
    prot.obsm["X_pca"] = rng.normal(size=(170, 4)).astype(np.float32)
    mdata = md.MuData({"rna": rna, "prot": prot})
    mdata.obs["joint_cluster"] = pd.Categorical(rng.choice(["j1", "j2"], mdata.n_obs))
    mdata.obs["label"] = rng.choice(["shared-a", "shared-b"], mdata.n_obs).astype(object)
    mdata.obsm["X_wnn_umap"] = rng.normal(size=(mdata.n_obs, 2)).astype(np.float32)
    mdata.uns["cellucid"] = {"id": "citeseq", "name": "CITE-seq"}
    return mdata


def _three():
    import mudata as md

    rng = np.random.default_rng(22)
    shuffled = [f"c{i}" for i in rng.permutation(90)]  # modalities in different cell orders
    mods = {}
    for name, genes, fmt in (("gex", 20, "csr"), ("atac", 30, "csc"), ("hto", 3, "dense")):
        x = sparse.random(90, genes, density=0.3, format=fmt if fmt != "dense" else "csr",
                          dtype=np.float32, random_state=genes)
        x = x.toarray() if fmt == "dense" else x
        order = sorted(shuffled) if name == "gex" else shuffled
        mods[name] = ad.AnnData(X=x, obs=pd.DataFrame({"q": rng.random(90)}, index=order),
                                var=pd.DataFrame(index=[f"{name}{i}" for i in range(genes)]))
    mdata = md.MuData(mods)
    mdata.obsm["X_mofa_umap"] = rng.normal(size=(mdata.n_obs, 3)).astype(np.float32)
    return mdata


def mudata_reference(mdata, name: str, stored: list[str]) -> ad.AnnData:
    """The modality with the container's columns and embeddings, as the app lists them.

    ``stored`` are the container's obs columns in the file (mudata adds the modalities'
    columns as ``<mod>:<column>`` when it reads; the file holds only the shared ones).
    """
    mod = mdata.mod[name]
    own = set(mod.obs.columns)
    obs = mod.obs.copy()
    shared = mdata.obs.loc[mod.obs_names]
    for column in stored:
        if column.startswith(f"{name}:") and column.split(":", 1)[1] in own:
            continue
        obs[f"mdata:{column}" if column in own else column] = shared[column].array
    reference = ad.AnnData(X=mod.X, obs=obs, var=mod.var, layers=dict(mod.layers))
    rows = mdata.obs_names.get_indexer(mod.obs_names)
    for key, value in mod.obsm.items():
        reference.obsm[key] = np.asarray(value)
    for key, value in mdata.obsm.items():
        if isinstance(value, np.ndarray) and value.ndim == 2:
            reference.obsm[f"mdata:{key}" if key in mod.obsm else key] = value[rows]
    if mod.raw is not None:
        reference.raw = mod.raw.to_adata()
    return reference


def mudata_cases(folder: Path) -> dict[str, Case]:
    import mudata as md

    cases: dict[str, Case] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        citeseq = _citeseq()
        path = folder / "citeseq.h5mu"
        citeseq.write(path)
        written = md.read_h5mu(path)
        stored = ["joint_cluster", "label"]
        for name in ("rna", "prot"):
            cases[f"h5mu-citeseq-{name}"] = Case(path, mudata_reference(written, name, stored),
                                                "h5mu", name)
        three = _three()
        path = folder / "three.h5mu"
        three.write(path)
        written = md.read_h5mu(path)
        for name in ("gex", "atac", "hto"):
            cases[f"h5mu-three-{name}"] = Case(path, mudata_reference(written, name, []),
                                               "h5mu", name)
        store = folder / "citeseq.h5mu.zarr"
        md.write_zarr(store, citeseq)
        written = md.read_zarr(store)
        cases["mudata-zarr-prot"] = Case(store, mudata_reference(written, "prot", stored),
                                         "mudata-zarr", "prot")
    return cases


# --- loom -----------------------------------------------------------------------------

def _loompy_file(path: Path) -> dict[str, np.ndarray]:
    """A velocyto/Seurat-like loom: returns the embeddings the app should find."""
    import loompy

    rng = np.random.default_rng(31)
    n_genes, n_cells = 45, 260
    matrix = np.where(rng.random((n_genes, n_cells)) < 0.3,
                      rng.gamma(2, 1, (n_genes, n_cells)), 0).astype(np.float32)
    xy = rng.normal(size=(n_cells, 2))
    umap = rng.normal(size=(n_cells, 3))
    col_attrs = {
        "CellID": np.array([f"AAAC{i:04d}-1" for i in range(n_cells)]),
        "ClusterName": np.array([rng.choice(["Neurons", "Glia", "Épendyme"]) for _ in
                                 range(n_cells)]),
        "Clusters": rng.integers(0, 5, n_cells),
        "TotalUMI": rng.gamma(5, 200, n_cells).astype(np.float32),
        "_X": xy[:, 0], "_Y": xy[:, 1],
        "UMAP_1": umap[:, 0], "UMAP_2": umap[:, 1], "UMAP_3": umap[:, 2],
    }
    row_attrs = {"Gene": np.array([f"Gene{i}" for i in range(n_genes)]),
                 "Accession": np.array([f"ENSG{i:05d}" for i in range(n_genes)])}
    layers = {"": matrix, "spliced": (matrix * 0.7).astype(np.float32),
              "unspliced": (matrix * 0.3).astype(np.float32)}
    loompy.create(str(path), layers, row_attrs, col_attrs)
    return {"XY": xy, "UMAP": umap}


def _spec_text(values: np.ndarray) -> np.ndarray:
    """Text attributes per the loom spec: UTF-8 (loompy's own reader drops non-ASCII
    characters, so it is no reference for them), XML character references undone."""
    if values.dtype.kind not in "OS":
        return values
    return np.array([html.unescape(v.decode() if isinstance(v, bytes) else str(v))
                     for v in values], dtype=object)


def loom_reference(path: Path, embeddings: dict[str, np.ndarray]) -> ad.AnnData:
    """What loompy reads (matrix, layers, numeric attributes; text per the spec, read
    with h5py), as an AnnData: cells x genes, col attrs as obs."""
    import h5py
    import loompy

    with loompy.connect(str(path), "r") as ds, h5py.File(path, "r") as h5:
        x = ds[:, :].T
        cell_id = next(n for n in ("CellID", "obs_names") if n in ds.ca.keys())
        gene = next(n for n in ("Gene", "var_names") if n in ds.ra.keys())
        obs = pd.DataFrame({k: _spec_text(h5[f"col_attrs/{k}"][()]) for k in ds.ca.keys()
                            if k != cell_id and ds.ca[k].ndim == 1},
                           index=[str(v) for v in ds.ca[cell_id]])
        obs = obs[sorted(obs.columns)]
        reference = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[str(v) for v in ds.ra[gene]]))
        for name in ds.layers.keys():
            if name:
                reference.layers[name] = ds.layers[name][:, :].T
        for key in ds.ca.keys():
            if ds.ca[key].ndim == 2:
                reference.obsm[key] = ds.ca[key]
    for key, value in embeddings.items():
        reference.obsm[key] = value
    return reference


def loom_cases(folder: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    path = folder / "velocyto-like.loom"
    embeddings = _loompy_file(path)
    cases["loom-loompy"] = Case(path, loom_reference(path, embeddings), "loom")
    adata = _dense_x()
    adata.obs["score"] = np.linspace(0, 1, adata.n_obs)
    adata.obsm["X_tsne"] = np.random.default_rng(5).normal(size=(adata.n_obs, 2))
    adata.layers["counts"] = adata.X * 2
    path = folder / "from-anndata.loom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_loom(path, write_obsm_varm=True)
    cases["loom-anndata"] = Case(path, loom_reference(path, {}), "loom")
    return cases


BUILDERS: dict[str, Callable[[Path], dict[str, Case]]] = {
    "zarr": zarr_cases, "mudata": mudata_cases, "loom": loom_cases}


def build_all(folder: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name, build in BUILDERS.items():
        sub = folder / name
        sub.mkdir()
        cases.update(build(sub))
    return cases
