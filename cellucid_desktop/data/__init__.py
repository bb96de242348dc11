"""Reading single-cell datasets without loading them: metadata, columns, embeddings, genes.

Every dataset is a DatasetSource (source.py) whose Layout reads it as AnnData, whatever
the format (.h5ad, AnnData Zarr, a MuData modality, loom). This layer imports only
h5py, zarr and numpy (never Flask, anndata, pandas or a GUI toolkit), so the server
stays small and every part is testable without a display.
"""
