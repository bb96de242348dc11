"""Reading AnnData stores without loading them: metadata, columns, embeddings, genes.

This layer imports only h5py and numpy (never Flask, anndata, pandas or a GUI toolkit),
so the server stays small and every part is testable without a display.
"""
